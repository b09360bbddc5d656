//! Retention policy: which snapshots `forget`/`prune` keep, computed as a pure function of the
//! snapshot list, the policy and the current time, so every rule is tested with tables and no store.
//!
//! # Rules
//! Snapshots are grouped by (host, part); every rule applies to each group on its own, and the
//! rules combine as a union (a snapshot is kept when any rule keeps it).
//!
//! | flag               | keeps, in each group                                                      |
//! |--------------------|---------------------------------------------------------------------------|
//! | `--keep-last N`    | the N newest snapshots                                                    |
//! | `--keep-days N`    | every snapshot taken at or after `now - N × 24 h` (a rolling window)      |
//! | `--keep-ages A,..` | for each age A, the snapshot closest to `now - A × 24 h` (tie: the older) |
//! | `--keep-daily N`   | the newest snapshot of each of the N newest UTC days that have one        |
//! | `--keep-weekly N`  | the same for ISO weeks (Monday to Sunday, UTC)                            |
//! | `--keep-monthly N` | the same for calendar months (UTC)                                        |
//! | (always)           | the newest snapshot ("newest"), so a group is never emptied               |
//!
//! The bucket rules follow restic: walking from the newest snapshot to the oldest, a snapshot is
//! kept when its day/week/month differs from that of the last snapshot the rule kept, until the
//! rule has kept N. Buckets are computed in UTC (with `timefmt::civil_from_days`), not local
//! time, so that a policy gives the same answer on every machine and across daylight-saving
//! changes.
//!
//! `--keep-ages` exists for BlueMind's advice to "keep a few old backups (D-7, D-15, D-30)". Under
//! a daily prune the snapshot kept for age A grows older each day until a younger one becomes
//! closer to `now - A`; it then gives way, so the kept snapshot for A drifts in a bounded
//! saw-tooth around A rather than being exactly A days old. With `--keep-days 3 --keep-ages
//! 7,15,30` pruned nightly, the snapshots nearest 7 and 15 days stay within 4 days of them, but the
//! oldest one drifts between 18 and 41 days (test `daily_prune_keeps_ages_near_target`); for a
//! firm "one per month" add `--keep-monthly`, whose calendar buckets do not drift. A tie goes to
//! the older snapshot because the point of the rule is to reach back in time, and a fixed
//! tie-break makes the answer independent of input order.
//!
//! # Partial snapshots
//! A partial snapshot (an interrupted backup, or one with unreadable files) must never displace a
//! complete one. So the counting rules (`last`, `ages`, `daily`, `weekly`, `monthly`) look at
//! complete snapshots only; a partial one is kept by `--keep-days` (a time window, which displaces
//! nothing) or by being the newest of its group. When the newest snapshot is partial, the newest
//! complete one is kept as well ("newest complete"), so a failing backup job cannot, by piling up
//! partial snapshots, let a prune remove the last good copy.
//!
//! # Zero counts
//! `--keep-last 0` and the like keep nothing, so a policy whose rules all keep nothing is
//! [`Policy::is_empty`] and [`decide`] refuses it: `forget` without a real rule must be an error,
//! not "delete everything but the newest".

pub mod forget;
pub mod prune;
pub mod stats;

use crate::timefmt::civil_from_days;
use std::collections::HashMap;

const NS_PER_DAY: i128 = 86_400 * 1_000_000_000;

/// What retention needs to know about one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Only carried through for the caller; never interpreted.
    pub id: String,
    pub host: String,
    pub part: String,
    /// The time the snapshot shows (the manifest's `started_ns`), Unix nanoseconds.
    pub time_ns: i64,
    pub complete: bool,
}

/// A retention policy; `None` means the flag was not given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub keep_last: Option<u32>,
    pub keep_days: Option<u32>,
    /// Ages in days, as given by [`parse_ages`].
    pub keep_ages: Vec<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
}

impl Policy {
    /// True when no rule can keep anything: [`decide`] refuses such a policy so that a `forget`
    /// with no flag (or only zero counts) cannot delete all history.
    pub fn is_empty(&self) -> bool {
        let counts = [
            self.keep_last,
            self.keep_days,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
        ];
        counts.iter().all(|c| c.unwrap_or(0) == 0) && self.keep_ages.is_empty()
    }
}

/// The verdict for one snapshot. `reasons` names each rule that keeps it, as the flag and the
/// value that matched ("keep-last 3", "keep-ages 7", "newest"); it is empty when `keep` is false.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub keep: bool,
    pub reasons: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetentionError {
    #[error("the retention policy keeps nothing: give at least one of --keep-last, --keep-days, --keep-ages, --keep-daily, --keep-weekly, --keep-monthly with a value above 0")]
    EmptyPolicy,
    #[error("bad --keep-ages {input:?}: {reason}")]
    BadAges { input: String, reason: String },
}

/// Parses `--keep-ages 7,15,30` into sorted, de-duplicated ages in days. Every age must be at
/// least 1: an age of 0 is the newest snapshot, which is always kept anyway, so it is a typo.
pub fn parse_ages(input: &str) -> Result<Vec<u32>, RetentionError> {
    let bad = |reason: String| RetentionError::BadAges {
        input: input.to_string(),
        reason,
    };
    let mut ages = Vec::new();
    for item in input.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(bad(
                "empty age; expected days separated by commas, like 7,15,30".into(),
            ));
        }
        let age: u32 = item
            .parse()
            .map_err(|e| bad(format!("{item:?} is not a number of days: {e}")))?;
        if age == 0 {
            return Err(bad("ages start at 1 day".into()));
        }
        ages.push(age);
    }
    ages.sort_unstable();
    ages.dedup();
    Ok(ages)
}

/// Decides, for each snapshot, whether `policy` keeps it at time `now_ns`. The result is in the
/// order of `snapshots`. Errors only on an empty policy.
pub fn decide(
    snapshots: &[SnapshotMeta],
    policy: &Policy,
    now_ns: i64,
) -> Result<Vec<Decision>, RetentionError> {
    if policy.is_empty() {
        return Err(RetentionError::EmptyPolicy);
    }
    let mut decisions = vec![
        Decision {
            keep: false,
            reasons: Vec::new(),
        };
        snapshots.len()
    ];
    let mut groups: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, s) in snapshots.iter().enumerate() {
        groups
            .entry((s.host.as_str(), s.part.as_str()))
            .or_default()
            .push(i);
    }
    for mut group in groups.into_values() {
        // Newest first; equal times are ordered by id so the answer does not depend on input order.
        group.sort_by(|&a, &b| {
            let (a, b) = (&snapshots[a], &snapshots[b]);
            b.time_ns.cmp(&a.time_ns).then_with(|| b.id.cmp(&a.id))
        });
        decide_group(snapshots, &group, policy, now_ns, &mut decisions);
    }
    for d in &mut decisions {
        d.keep = !d.reasons.is_empty();
    }
    Ok(decisions)
}

/// Applies every rule to one group, `group` being indexes into `all`, newest first.
fn decide_group(
    all: &[SnapshotMeta],
    group: &[usize],
    policy: &Policy,
    now_ns: i64,
    out: &mut [Decision],
) {
    let mut keep = |i: usize, reason: String| out[i].reasons.push(reason);
    let complete: Vec<usize> = group.iter().copied().filter(|&i| all[i].complete).collect();

    if let Some(&newest) = group.first() {
        keep(newest, "newest".into());
        if !all[newest].complete {
            if let Some(&c) = complete.first() {
                keep(c, "newest complete".into());
            }
        }
    }
    if let Some(n) = policy.keep_last {
        for &i in complete.iter().take(n as usize) {
            keep(i, format!("keep-last {n}"));
        }
    }
    if let Some(n) = policy.keep_days.filter(|&n| n > 0) {
        let cutoff = i128::from(now_ns) - i128::from(n) * NS_PER_DAY;
        for &i in group {
            if i128::from(all[i].time_ns) >= cutoff {
                keep(i, format!("keep-days {n}"));
            }
        }
    }
    for &age in &policy.keep_ages {
        let target = i128::from(now_ns) - i128::from(age) * NS_PER_DAY;
        // `complete` is newest first, so a later candidate is older: letting an equal distance
        // replace the best so far gives the tie to the older snapshot.
        let mut best: Option<(i128, usize)> = None;
        for &i in &complete {
            let dist = (i128::from(all[i].time_ns) - target).abs();
            match best {
                Some((d, _)) if dist > d => {}
                _ => best = Some((dist, i)),
            }
        }
        if let Some((_, i)) = best {
            keep(i, format!("keep-ages {age}"));
        }
    }
    let buckets: [(Option<u32>, &str, BucketOf); 3] = [
        (policy.keep_daily, "keep-daily", day_bucket),
        (policy.keep_weekly, "keep-weekly", week_bucket),
        (policy.keep_monthly, "keep-monthly", month_bucket),
    ];
    for (count, flag, bucket_of) in buckets {
        let Some(n) = count else { continue };
        let mut last_bucket = None;
        let mut kept = 0;
        for &i in &complete {
            if kept >= n {
                break;
            }
            let b = bucket_of(all[i].time_ns);
            if last_bucket != Some(b) {
                keep(i, format!("{flag} {n}"));
                last_bucket = Some(b);
                kept += 1;
            }
        }
    }
}

/// Maps a time to its calendar bucket: equal values are the same day, week or month.
type BucketOf = fn(i64) -> i64;

/// Days since 1970-01-01 (UTC) of a Unix time in nanoseconds; floors, so times before 1970 work.
fn days_of(time_ns: i64) -> i64 {
    // Cannot overflow: the quotient is far smaller than i64::MAX.
    (i128::from(time_ns).div_euclid(NS_PER_DAY)) as i64
}

fn day_bucket(time_ns: i64) -> i64 {
    days_of(time_ns)
}

/// The ISO week, named by the day number of its Monday: equal keys are the same ISO week, which
/// is all the weekly rule needs (no week-numbering-year arithmetic).
fn week_bucket(time_ns: i64) -> i64 {
    let days = days_of(time_ns);
    // 1970-01-01 was a Thursday; with Monday = 0 it is weekday 3.
    days - (days + 3).rem_euclid(7)
}

fn month_bucket(time_ns: i64) -> i64 {
    let (y, m, _) = civil_from_days(days_of(time_ns));
    y * 12 + i64::from(m) - 1
}

#[cfg(test)]
mod tests;
