//! Table tests of the retention rules over a synthetic 60-day history (kept apart from
//! `retention.rs` only to keep both files short).

use super::*;
use crate::timefmt::civil_from_days;

const HOUR: i64 = 3_600 * 1_000_000_000;
const DAY: i64 = 24 * HOUR;
/// 2026-01-01T00:00:00Z, a Thursday.
const JAN1: i64 = 20_454 * DAY;
/// 2026-03-01T12:00:00Z: day 59 of the history, a Sunday.
const NOW: i64 = JAN1 + 59 * DAY + 12 * HOUR;

fn snap(id: &str, host: &str, part: &str, time_ns: i64) -> SnapshotMeta {
    SnapshotMeta {
        id: id.into(),
        host: host.into(),
        part: part.into(),
        time_ns,
        complete: true,
    }
}

/// 60 daily snapshots `d00`..`d59` at 02:00 UTC from 2026-01-01 to 2026-03-01, plus three
/// extra later the same day, each on a Sunday: `d31x` (Feb 1, 14:00), `d45x` (Feb 15,
/// 20:00) and `d59x` (Mar 1, 10:00, the newest).
fn history() -> Vec<SnapshotMeta> {
    let mut h: Vec<SnapshotMeta> = (0..60)
        .map(|i| {
            snap(
                &format!("d{i:02}"),
                "10.0.0.1",
                "mail/imap",
                JAN1 + i * DAY + 2 * HOUR,
            )
        })
        .collect();
    for (day, hour) in [(31, 14), (45, 20), (59, 10)] {
        let t = JAN1 + day * DAY + hour * HOUR;
        h.push(snap(&format!("d{day:02}x"), "10.0.0.1", "mail/imap", t));
    }
    h
}

fn kept(snaps: &[SnapshotMeta], policy: &Policy, now: i64) -> Vec<String> {
    let decisions = decide(snaps, policy, now).unwrap();
    let mut ids: Vec<String> = snaps
        .iter()
        .zip(&decisions)
        .filter(|(_, d)| d.keep)
        .map(|(s, _)| s.id.clone())
        .collect();
    ids.sort();
    ids
}

fn reasons_of(snaps: &[SnapshotMeta], policy: &Policy, now: i64, id: &str) -> Vec<String> {
    let decisions = decide(snaps, policy, now).unwrap();
    let i = snaps.iter().position(|s| s.id == id).unwrap();
    decisions[i].reasons.clone()
}

fn ids(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn all_ids() -> Vec<String> {
    ids(&history().iter().map(|s| s.id.as_str()).collect::<Vec<_>>())
}

/// The newest snapshot of each day: what `--keep-daily` with a large N keeps.
fn one_per_day() -> Vec<String> {
    let mut v: Vec<String> = (0..59).map(|i| format!("d{i:02}")).collect();
    v.retain(|id| id != "d31" && id != "d45");
    v.extend(["d31x".into(), "d45x".into(), "d59x".into()]);
    v.sort();
    v
}

#[test]
fn each_rule_alone_and_in_unions() {
    let p = Policy::default;
    let table: Vec<(&str, Policy, Vec<String>)> = vec![
        (
            "last 3",
            Policy {
                keep_last: Some(3),
                ..p()
            },
            ids(&["d58", "d59", "d59x"]),
        ),
        (
            "last > history",
            Policy {
                keep_last: Some(100),
                ..p()
            },
            all_ids(),
        ),
        // Cutoff Feb 26 12:00: d56 (02:00) is just outside.
        (
            "days 3",
            Policy {
                keep_days: Some(3),
                ..p()
            },
            ids(&["d57", "d58", "d59", "d59x"]),
        ),
        (
            "days 1",
            Policy {
                keep_days: Some(1),
                ..p()
            },
            ids(&["d59", "d59x"]),
        ),
        (
            "days > history",
            Policy {
                keep_days: Some(100),
                ..p()
            },
            all_ids(),
        ),
        (
            "daily 3",
            Policy {
                keep_daily: Some(3),
                ..p()
            },
            ids(&["d57", "d58", "d59x"]),
        ),
        (
            "daily 15 takes the later snapshot of Feb 15",
            Policy {
                keep_daily: Some(15),
                ..p()
            },
            ids(&[
                "d45x", "d46", "d47", "d48", "d49", "d50", "d51", "d52", "d53", "d54", "d55",
                "d56", "d57", "d58", "d59x",
            ]),
        ),
        (
            "daily > history",
            Policy {
                keep_daily: Some(100),
                ..p()
            },
            one_per_day(),
        ),
        // ISO weeks end on Sundays: Mar 1 (d59x), Feb 22 (d52), Feb 15 (d45x).
        (
            "weekly 3",
            Policy {
                keep_weekly: Some(3),
                ..p()
            },
            ids(&["d45x", "d52", "d59x"]),
        ),
        (
            "weekly > history: every Sunday, Jan 4 first",
            Policy {
                keep_weekly: Some(100),
                ..p()
            },
            ids(&[
                "d03", "d10", "d17", "d24", "d31x", "d38", "d45x", "d52", "d59x",
            ]),
        ),
        (
            "monthly 2",
            Policy {
                keep_monthly: Some(2),
                ..p()
            },
            ids(&["d58", "d59x"]),
        ),
        (
            "monthly > history",
            Policy {
                keep_monthly: Some(100),
                ..p()
            },
            ids(&["d30", "d58", "d59x"]),
        ),
        // Targets at 12:00 on Feb 22, Feb 14, Jan 30: the 02:00 snapshot of that day is 10 h
        // away, the next day's 14 h.
        (
            "ages 7,15,30",
            Policy {
                keep_ages: vec![7, 15, 30],
                ..p()
            },
            ids(&["d29", "d44", "d52", "d59x"]),
        ),
        (
            "age older than history",
            Policy {
                keep_ages: vec![90],
                ..p()
            },
            ids(&["d00", "d59x"]),
        ),
        (
            "union last + weekly + ages",
            Policy {
                keep_last: Some(2),
                keep_weekly: Some(2),
                keep_ages: vec![30],
                ..p()
            },
            ids(&["d29", "d52", "d59", "d59x"]),
        ),
        (
            "union days + monthly",
            Policy {
                keep_days: Some(2),
                keep_monthly: Some(3),
                ..p()
            },
            ids(&["d30", "d58", "d59", "d59x"]),
        ),
        (
            "zero count next to a real rule",
            Policy {
                keep_last: Some(0),
                keep_daily: Some(1),
                ..p()
            },
            ids(&["d59x"]),
        ),
    ];
    let h = history();
    for (name, policy, want) in table {
        assert_eq!(kept(&h, &policy, NOW), want, "{name}");
    }
}

#[test]
fn reasons_name_every_rule_that_keeps() {
    let h = history();
    let policy = Policy {
        keep_last: Some(2),
        keep_weekly: Some(2),
        keep_ages: vec![30],
        ..Policy::default()
    };
    assert_eq!(
        reasons_of(&h, &policy, NOW, "d59x"),
        ["newest", "keep-last 2", "keep-weekly 2"]
    );
    assert_eq!(reasons_of(&h, &policy, NOW, "d59"), ["keep-last 2"]);
    assert_eq!(reasons_of(&h, &policy, NOW, "d29"), ["keep-ages 30"]);
    assert!(reasons_of(&h, &policy, NOW, "d58").is_empty());
    let days = Policy {
        keep_days: Some(3),
        ..Policy::default()
    };
    assert_eq!(reasons_of(&h, &days, NOW, "d57"), ["keep-days 3"]);
}

#[test]
fn ages_exact_hit_and_tie_goes_to_the_older() {
    let h = history();
    let now = JAN1 + 59 * DAY + 14 * HOUR;
    // 28 days before Mar 1 14:00 is Feb 1 14:00, exactly d31x.
    let exact = Policy {
        keep_ages: vec![28],
        ..Policy::default()
    };
    assert_eq!(kept(&h, &exact, now), ids(&["d31x", "d59x"]));
    // Feb 22 14:00 is 12 h after d52 and 12 h before d53.
    let tie = Policy {
        keep_ages: vec![7],
        ..Policy::default()
    };
    assert_eq!(kept(&h, &tie, now), ids(&["d52", "d59x"]));
    // Same answer whatever the input order.
    let mut reversed = h.clone();
    reversed.reverse();
    assert_eq!(kept(&reversed, &tie, now), ids(&["d52", "d59x"]));
}

#[test]
fn partial_snapshots_never_displace_complete_ones() {
    let set_partial = |ids: &[&str]| {
        let mut h = history();
        for s in &mut h {
            if ids.contains(&s.id.as_str()) {
                s.complete = false;
            }
        }
        h
    };
    let p = Policy::default;
    let table: Vec<(&str, &[&str], Policy, Vec<String>)> = vec![
        // The partial newest is kept, and so is the newest complete one, d59.
        (
            "newest partial, last 2",
            &["d59x"],
            Policy {
                keep_last: Some(2),
                ..p()
            },
            ids(&["d58", "d59", "d59x"]),
        ),
        (
            "newest partial, daily 2",
            &["d59x"],
            Policy {
                keep_daily: Some(2),
                ..p()
            },
            ids(&["d58", "d59", "d59x"]),
        ),
        (
            "newest partial, monthly 1",
            &["d59x"],
            Policy {
                keep_monthly: Some(1),
                ..p()
            },
            ids(&["d59", "d59x"]),
        ),
        (
            "partial skipped by last",
            &["d58"],
            Policy {
                keep_last: Some(3),
                ..p()
            },
            ids(&["d57", "d59", "d59x"]),
        ),
        (
            "partial kept by the days window",
            &["d58"],
            Policy {
                keep_days: Some(3),
                ..p()
            },
            ids(&["d57", "d58", "d59", "d59x"]),
        ),
        // d52 would be the age-7 snapshot; d53 (14 h away) is taken rather than the partial.
        (
            "partial skipped by ages",
            &["d52"],
            Policy {
                keep_ages: vec![7],
                ..p()
            },
            ids(&["d53", "d59x"]),
        ),
    ];
    for (name, partial, policy, want) in table {
        assert_eq!(kept(&set_partial(partial), &policy, NOW), want, "{name}");
    }
    let h = set_partial(&["d59x"]);
    let last = Policy {
        keep_last: Some(2),
        ..Policy::default()
    };
    assert_eq!(
        reasons_of(&h, &last, NOW, "d59"),
        ["newest complete", "keep-last 2"]
    );
    assert_eq!(reasons_of(&h, &last, NOW, "d59x"), ["newest"]);
}

#[test]
fn group_of_only_partials_keeps_its_newest() {
    let mut h = history();
    for s in &mut h {
        s.complete = false;
    }
    let policy = Policy {
        keep_last: Some(5),
        keep_ages: vec![7],
        ..Policy::default()
    };
    assert_eq!(kept(&h, &policy, NOW), ids(&["d59x"]));
}

#[test]
fn empty_policy_is_refused() {
    assert!(Policy::default().is_empty());
    let zeros = Policy {
        keep_last: Some(0),
        keep_days: Some(0),
        keep_daily: Some(0),
        keep_weekly: Some(0),
        keep_monthly: Some(0),
        keep_ages: vec![],
    };
    assert!(zeros.is_empty());
    assert_eq!(
        decide(&history(), &zeros, NOW),
        Err(RetentionError::EmptyPolicy)
    );
    assert_eq!(
        decide(&[], &Policy::default(), NOW),
        Err(RetentionError::EmptyPolicy)
    );
    assert!(!Policy {
        keep_ages: vec![7],
        ..Policy::default()
    }
    .is_empty());
    assert!(!Policy {
        keep_monthly: Some(1),
        ..Policy::default()
    }
    .is_empty());
}

#[test]
fn no_snapshots_and_one_snapshot() {
    let policy = Policy {
        keep_days: Some(1),
        ..Policy::default()
    };
    assert_eq!(decide(&[], &policy, NOW), Ok(vec![]));
    // Far outside the window, but the only (so newest) snapshot of its group.
    let one = [snap("old", "h", "mail/imap", JAN1 - 400 * DAY)];
    let d = decide(&one, &policy, NOW).unwrap();
    assert_eq!(
        d,
        [Decision {
            keep: true,
            reasons: vec!["newest".into()]
        }]
    );
}

#[test]
fn rules_apply_to_each_host_and_part_separately() {
    let mut h = history();
    for i in 0..5 {
        h.push(snap(
            &format!("pg{i}"),
            "10.0.0.1",
            "bm/pgsql",
            JAN1 + i * DAY,
        ));
        h.push(snap(
            &format!("b{i}"),
            "10.0.0.2",
            "mail/imap",
            JAN1 + i * DAY,
        ));
    }
    let policy = Policy {
        keep_last: Some(2),
        ..Policy::default()
    };
    assert_eq!(
        kept(&h, &policy, NOW),
        ids(&["b3", "b4", "d59", "d59x", "pg3", "pg4"])
    );
    let days = Policy {
        keep_days: Some(1),
        ..Policy::default()
    };
    assert_eq!(kept(&h, &days, NOW), ids(&["b4", "d59", "d59x", "pg4"]));
}

#[test]
fn parse_ages_accepts_lists_and_rejects_typos() {
    assert_eq!(parse_ages("7,15,30"), Ok(vec![7, 15, 30]));
    assert_eq!(parse_ages(" 30, 7 ,7"), Ok(vec![7, 30]));
    assert_eq!(parse_ages("365"), Ok(vec![365]));
    for bad in ["", "7,,15", "7,", "0", "7,x", "-1", "7;15", "99999999999"] {
        assert!(parse_ages(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn calendar_buckets_in_utc() {
    // The history above starts on this day.
    assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    // ISO week 53 of 2026 runs from Monday Dec 28 to Sunday 2027-01-03.
    let mon = 20_454 + 361;
    assert_eq!(civil_from_days(mon), (2026, 12, 28));
    for d in mon..mon + 7 {
        assert_eq!(week_bucket(d * DAY + 23 * HOUR), mon, "day {d}");
    }
    assert_eq!(week_bucket((mon + 7) * DAY), mon + 7);
    assert_eq!(week_bucket(mon * DAY - 1), mon - 7);
    // Before 1970 too: 1969-12-31 23:59:59.999999999 is in the week starting Monday Dec 29.
    assert_eq!(week_bucket(-1), -3);
    assert_eq!(month_bucket(-1), 1969 * 12 + 11);
    assert_eq!(month_bucket(0), 1970 * 12);
}

/// Simulates a year of nightly backups, each followed by a prune with BlueMind's advice
/// (3 recent days and D-7, D-15, D-30), and pins down the steady state `--keep-ages` gives:
/// an 8-day cycle in which the snapshot nearest each age is never more than 4 days from 7
/// and from 15, but up to 12 days from 30 (the oldest snapshot drifts between 18 and 41 days),
/// with at most 6 snapshots kept.
#[test]
fn daily_prune_keeps_ages_near_target() {
    let policy = Policy {
        keep_days: Some(3),
        keep_ages: vec![7, 15, 30],
        ..Policy::default()
    };
    let mut store: Vec<SnapshotMeta> = Vec::new();
    let mut worst = [0i64; 3];
    let (mut oldest_min, mut oldest_max) = (i64::MAX, 0);
    for day in 0..365 {
        store.push(snap(
            &format!("s{day}"),
            "h",
            "mail/imap",
            day * DAY + 2 * HOUR,
        ));
        let now = day * DAY + 3 * HOUR;
        let decisions = decide(&store, &policy, now).unwrap();
        let mut it = decisions.iter();
        store.retain(|_| it.next().is_some_and(|d| d.keep));
        assert!(store.len() <= 6, "day {day}: {} kept", store.len());
        if day < 60 {
            continue;
        }
        let ages: Vec<i64> = store.iter().map(|s| (now - s.time_ns) / DAY).collect();
        for (k, &target) in policy.keep_ages.iter().enumerate() {
            let off = ages
                .iter()
                .map(|a| (a - i64::from(target)).abs())
                .min()
                .unwrap();
            worst[k] = worst[k].max(off);
        }
        let oldest = ages.iter().copied().max().unwrap();
        oldest_min = oldest_min.min(oldest);
        oldest_max = oldest_max.max(oldest);
    }
    assert_eq!(worst, [4, 4, 12]);
    assert_eq!((oldest_min, oldest_max), (18, 41));
}
