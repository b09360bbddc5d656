//! The retention rule flags of `forget` (the same keys as the config's `[retention]`).

use crate::retention::{parse_ages, Policy, RetentionError};
use clap::Args;

/// The retention rules; every rule applies to each host and part on its own, a snapshot kept by
/// any rule is kept, and the newest of each part always is.
#[derive(Args, Debug, Clone, Default)]
pub struct PolicyArgs {
    /// Keep the N newest complete snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep every snapshot of the last N days (N × 24 h back from now).
    #[arg(long, value_name = "N")]
    pub keep_days: Option<u32>,
    /// Keep, for each age in days, the complete snapshot closest to that age (BlueMind's advice:
    /// D-7, D-15, D-30 → `--keep-ages 7,15,30`).
    #[arg(long, value_name = "DAYS,...")]
    pub keep_ages: Option<String>,
    /// Keep the newest complete snapshot of each of the last N days that have one (UTC).
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// The same for the last N ISO weeks (Monday to Sunday, UTC).
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// The same for the last N calendar months (UTC).
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
}

impl PolicyArgs {
    /// True when any rule flag was given.
    pub fn given(&self) -> bool {
        self.keep_last.is_some()
            || self.keep_days.is_some()
            || self.keep_ages.is_some()
            || self.keep_daily.is_some()
            || self.keep_weekly.is_some()
            || self.keep_monthly.is_some()
    }

    pub fn policy(&self) -> Result<Policy, RetentionError> {
        let keep_ages = match &self.keep_ages {
            Some(s) => parse_ages(s)?,
            None => Vec::new(),
        };
        Ok(Policy {
            keep_last: self.keep_last,
            keep_days: self.keep_days,
            keep_ages,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
        })
    }
}
