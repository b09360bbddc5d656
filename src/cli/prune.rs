//! `bmbackup prune`: delete data that no snapshot references any more.

use super::{Cli, EXIT_OK};
use crate::retention::prune::{prune, PruneOptions};
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Rewrite packs whose used share fell below this percentage (0-100).
    #[arg(long, default_value_t = 50.0, value_parser = parse_percent)]
    pub repack_below: f64,
    /// Say what would be deleted and freed, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for running backups to finish before giving up.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 100".into())
    }
}

pub fn run(cli: &Cli, a: &PruneArgs) -> anyhow::Result<i32> {
    let (_, repo) = cli.open_repo()?;
    let report = prune(
        &repo,
        &PruneOptions {
            repack_below: a.repack_below / 100.0,
            dry_run: a.dry_run,
            wait: Duration::from_secs(a.wait),
        },
    )?;
    if a.json {
        super::json::print(&super::json::prune(&report))?;
    } else if !super::output::quiet() {
        crate::say!("{report}");
    }
    Ok(EXIT_OK)
}
