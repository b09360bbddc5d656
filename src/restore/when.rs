//! Point-in-time selection: parses `--at WHEN` and picks, for a host and part, the newest complete
//! snapshot taken at or before that moment. Times are UTC, like snapshot folder names.

use crate::model::{Snapshot, SnapshotStatus};
use crate::timefmt::{days_from_civil, display};

const NS: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WhenError {
    #[error("cannot read {0:?} as a date: use 2026-11-20, 2026-11-20T14:00, \"2026-11-20 14:00\", last, 7d or D-7 (UTC)")]
    Syntax(String),
    #[error("no snapshot of {what} at or before {when} UTC; {nearest}")]
    TooEarly {
        what: String,
        when: String,
        nearest: String,
    },
    #[error("no complete snapshot of {0}; see `bmbackup snapshots`")]
    None(String),
    #[error("no snapshot of {what}; the store has: {known}")]
    Unknown { what: String, known: String },
}

/// Parses WHEN into Unix nanoseconds. A bare date means the end of that day, so "on the 20th"
/// includes the backup taken in the night of the 20th.
pub fn parse_when(s: &str, now_ns: i64) -> Result<i64, WhenError> {
    let t = s.trim();
    let err = || WhenError::Syntax(s.to_string());
    if t.eq_ignore_ascii_case("last") || t.eq_ignore_ascii_case("now") {
        return Ok(now_ns);
    }
    let rel = t
        .strip_prefix("D-")
        .or_else(|| t.strip_prefix("d-"))
        .or_else(|| t.strip_suffix('d'))
        .or_else(|| t.strip_suffix('D'));
    if let Some(n) = rel {
        let days: i64 = n.parse().map_err(|_| err())?;
        if !(0..=36_500).contains(&days) {
            return Err(err());
        }
        return Ok(now_ns - days * DAY_NS);
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = match t.split_once(['T', ' ', '_']) {
        Some((d, tm)) => (d, Some(tm.trim())),
        None => (t, None),
    };
    let mut it = date.split('-');
    let (y, m, d) = match (it.next(), it.next(), it.next(), it.next()) {
        (Some(y), Some(m), Some(d), None) if y.len() == 4 => (
            y.parse::<i64>().map_err(|_| err())?,
            m.parse::<u32>().map_err(|_| err())?,
            d.parse::<u32>().map_err(|_| err())?,
        ),
        _ => return Err(err()),
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(err());
    }
    let days = days_from_civil(y, m, d);
    if crate::timefmt::civil_from_days(days) != (y, m, d) {
        return Err(err());
    }
    let secs = match time {
        None => 86_399,
        Some(tm) => {
            // HH:MM[:SS] or the folder form HHMMSS.
            let parts: Vec<&str> = if tm.contains(':') {
                tm.split(':').collect()
            } else if tm.len() == 6 || tm.len() == 4 {
                vec![
                    &tm[0..2],
                    &tm[2..4],
                    if tm.len() == 6 { &tm[4..6] } else { "0" },
                ]
            } else {
                return Err(err());
            };
            let nums: Vec<i64> = parts
                .iter()
                .map(|p| p.parse::<i64>().map_err(|_| err()))
                .collect::<Result<_, _>>()?;
            let (h, mi, sec) = match nums.as_slice() {
                [h, mi] => (*h, *mi, 0),
                [h, mi, s] => (*h, *mi, *s),
                _ => return Err(err()),
            };
            if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&sec) {
                return Err(err());
            }
            h * 3600 + mi * 60 + sec
        }
    };
    let end_ns = if time.is_none() { NS - 1 } else { 0 };
    Ok((days * 86_400 + secs) * NS + end_ns)
}

/// The newest complete snapshot of `snaps` (one host and part, any order) at or before `at_ns`.
pub fn pick_at<'a>(
    snaps: &[&'a Snapshot],
    at_ns: i64,
    what: &str,
) -> Result<&'a Snapshot, WhenError> {
    let mut complete: Vec<&Snapshot> = snaps
        .iter()
        .copied()
        .filter(|s| s.manifest.status == SnapshotStatus::Complete)
        .collect();
    complete.sort_by_key(|s| s.manifest.started_ns);
    if complete.is_empty() {
        return Err(WhenError::None(what.to_string()));
    }
    let idx = complete.partition_point(|s| s.manifest.started_ns <= at_ns);
    if idx == 0 {
        let first: Vec<String> = complete
            .iter()
            .take(3)
            .map(|s| display(s.manifest.started_ns))
            .collect();
        return Err(WhenError::TooEarly {
            what: what.to_string(),
            when: display(at_ns),
            nearest: format!("the oldest are: {}", first.join(", ")),
        });
    }
    Ok(complete[idx - 1])
}

/// The newest complete snapshot of `host`'s `part` at or before `at_ns`, from the whole list;
/// an unknown host or part names the host/part pairs the store does have.
pub fn pick_part_at<'a>(
    all: &'a [Snapshot],
    host: &str,
    part: &str,
    at_ns: i64,
) -> Result<&'a Snapshot, WhenError> {
    let part = part.trim_matches('/');
    let of_part: Vec<&Snapshot> = all
        .iter()
        .filter(|s| s.manifest.host == host && s.manifest.part == part)
        .collect();
    if of_part.is_empty() {
        let mut known: Vec<String> = all
            .iter()
            .map(|s| format!("{}/{}", s.manifest.host, s.manifest.part))
            .collect();
        known.dedup();
        return Err(WhenError::Unknown {
            what: format!("{host}/{part}"),
            known: if known.is_empty() {
                "no snapshots at all".into()
            } else {
                known.join(", ")
            },
        });
    }
    pick_at(&of_part, at_ns, &format!("{host}/{part}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{SnapshotId, TreeId};
    use crate::model::Manifest;

    const NOW: i64 = 1_795_658_400 * NS; // 2026-11-26 02:00:00 UTC

    #[test]
    fn formats() {
        let day = parse_when("2026-11-20", NOW).unwrap();
        assert_eq!(display(day), "2026-11-20 23:59:59");
        assert_eq!(
            display(parse_when("2026-11-20T14:00", NOW).unwrap()),
            "2026-11-20 14:00:00"
        );
        assert_eq!(
            display(parse_when("2026-11-20 14:00", NOW).unwrap()),
            "2026-11-20 14:00:00"
        );
        assert_eq!(
            display(parse_when("2026-11-20_140005", NOW).unwrap()),
            "2026-11-20 14:00:05"
        );
        assert_eq!(
            display(parse_when("2026-11-20T14:00:07Z", NOW).unwrap()),
            "2026-11-20 14:00:07"
        );
        assert_eq!(parse_when("last", NOW).unwrap(), NOW);
        assert_eq!(parse_when("7d", NOW).unwrap(), NOW - 7 * DAY_NS);
        assert_eq!(parse_when("D-7", NOW).unwrap(), NOW - 7 * DAY_NS);
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-11-20T25:00",
            "D-x",
            "20-11-2026",
        ] {
            assert!(parse_when(bad, NOW).is_err(), "{bad}");
        }
    }

    fn snap(ns: i64, complete: bool) -> Snapshot {
        Snapshot {
            id: SnapshotId::of(&ns.to_le_bytes()),
            root: TreeId::of(b""),
            manifest: Manifest {
                host: "h".into(),
                part: "p".into(),
                source: "/s".into(),
                started_ns: ns,
                finished_ns: ns,
                root: String::new(),
                files: 0,
                dirs: 0,
                bytes: 0,
                bytes_read: 0,
                bytes_added: 0,
                tool_version: String::new(),
                status: if complete {
                    SnapshotStatus::Complete
                } else {
                    SnapshotStatus::Partial
                },
                problems: vec![],
                parent: None,
                root_meta: None,
            },
        }
    }

    #[test]
    fn picks_newest_complete_at_or_before() {
        let s: Vec<Snapshot> = vec![snap(10, true), snap(20, false), snap(30, true)];
        let refs: Vec<&Snapshot> = s.iter().collect();
        assert_eq!(pick_at(&refs, 10, "x").unwrap().manifest.started_ns, 10);
        assert_eq!(
            pick_at(&refs, 25, "x").unwrap().manifest.started_ns,
            10,
            "partial skipped"
        );
        assert_eq!(pick_at(&refs, 99, "x").unwrap().manifest.started_ns, 30);
        let e = pick_at(&refs, 5, "h/p").unwrap_err();
        assert!(e.to_string().contains("oldest are"), "{e}");
        assert_eq!(
            pick_part_at(&s, "h", "/p/", 99)
                .unwrap()
                .manifest
                .started_ns,
            30
        );
        let e = pick_part_at(&s, "h", "q", 99).unwrap_err().to_string();
        assert!(e.contains("h/q") && e.contains("h/p"), "{e}");
    }
}
