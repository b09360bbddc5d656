//! Point-in-time selection: parses `--at WHEN` and picks, for a host and part, the snapshot of
//! that folder name, or else the newest complete snapshot taken at or before that moment. Times
//! are UTC, like snapshot folder names.

use crate::model::{Snapshot, SnapshotStatus};
use crate::timefmt::{days_from_civil, display};

const NS: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WhenError {
    #[error("cannot read {0:?} as a date: use 2026-11-20, 2026-11-20T14:00, \"2026-11-20 14:00:05\", a snapshot name (2026-11-20_140005, 2026-11-20_140005_2, or a path on the mount ending in one), last, 7d, -7d or D-7 (UTC)")]
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
    #[error("{what} has no snapshot named {name}; names in that second: {near} (see `bmbackup snapshots --json`, key name)")]
    NoSuchName {
        what: String,
        name: String,
        near: String,
    },
}

/// A parsed `--at WHEN`: the span of time it names, and the snapshot name it is, if it has that
/// form. A time means all of the unit it is given in: 2026-11-20 is the whole day, 14:00 the whole
/// minute, 14:00:05 the whole second, so "at or before" compares with `end_ns` and a snapshot
/// started at 14:00:05.7 is "at 14:00:05".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct When {
    /// The first nanosecond named (what `backup --simulate-time` uses as a start time).
    pub start_ns: i64,
    /// The last nanosecond named: snapshots started up to and including it are candidates.
    pub end_ns: i64,
    /// `YYYY-MM-DD_HHMMSS` or `YYYY-MM-DD_HHMMSS_N`: selects the snapshot of that folder name.
    pub name: Option<String>,
}

impl When {
    /// A single instant (now, 7d…).
    pub fn instant(ns: i64) -> When {
        When {
            start_ns: ns,
            end_ns: ns,
            name: None,
        }
    }
}

/// Parses WHEN. A bare date means the whole day, so "on the 20th" includes the backup taken in
/// the night of the 20th; likewise a time to the minute or second means all of it.
pub fn parse_when(s: &str, now_ns: i64) -> Result<When, WhenError> {
    let t = from_mount_path(s.trim());
    let err = || WhenError::Syntax(s.to_string());
    if t.eq_ignore_ascii_case("last") || t.eq_ignore_ascii_case("now") {
        return Ok(When::instant(now_ns));
    }
    let rel = t
        .strip_prefix("D-")
        .or_else(|| t.strip_prefix("d-"))
        .or_else(|| {
            t.strip_suffix('d')
                .map(|n| n.strip_prefix('-').unwrap_or(n))
        })
        .or_else(|| {
            t.strip_suffix('D')
                .map(|n| n.strip_prefix('-').unwrap_or(n))
        });
    if let Some(n) = rel {
        let days: i64 = n.parse().map_err(|_| err())?;
        if !(0..=36_500).contains(&days) {
            return Err(err());
        }
        return Ok(When::instant(now_ns - days * DAY_NS));
    }
    // A folder name: its time is that of its base; the `_N` only tells snapshots apart.
    let (t, name) = match crate::repo::names::split(t) {
        Some((base, _)) => (base, Some(t.to_string())),
        None => (t.strip_suffix('Z').unwrap_or(t), None),
    };
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
    // (seconds into the day, nanoseconds, length of the unit given in ns)
    let (secs, frac_ns, unit_ns) = match time {
        None => (0, 0, DAY_NS),
        Some(tm) => parse_time(tm).ok_or_else(err)?,
    };
    let start_ns = (days * 86_400 + secs) * NS + frac_ns;
    Ok(When {
        start_ns,
        end_ns: start_ns + unit_ns - 1,
        name,
    })
}

/// The snapshot folder name (or `last`) in a path copied from the mount
/// (`10.0.0.5/mail/imap/2026-12-07_225229/`, `/var/backups/…/last/domain/…`): its last component
/// of that form. Anything else is returned as it is (a date never contains `/`).
fn from_mount_path(t: &str) -> &str {
    if !t.contains('/') {
        return t;
    }
    t.split('/')
        .rev()
        .find(|c| crate::repo::names::split(c).is_some() || *c == "last")
        .unwrap_or(t)
}

/// `HH:MM`, `HH:MM:SS`, `HH:MM:SS.fff` (1 to 9 digits) or the folder forms `HHMM`, `HHMMSS`:
/// seconds into the day, the fraction in ns, and the length in ns of the last unit given.
fn parse_time(tm: &str) -> Option<(i64, i64, i64)> {
    let (tm, frac) = match tm.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (tm, None),
    };
    let parts: Vec<&str> = if tm.contains(':') {
        tm.split(':').collect()
    } else if tm.len() == 6 || tm.len() == 4 {
        tm.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap_or("x"))
            .collect()
    } else {
        return None;
    };
    let nums: Vec<i64> = parts
        .iter()
        .map(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| p.parse::<i64>().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    let (h, mi, sec, unit) = match nums.as_slice() {
        [h, mi] if frac.is_none() => (*h, *mi, 0, 60 * NS),
        [h, mi, s] => (*h, *mi, *s, NS),
        _ => return None,
    };
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&sec) {
        return None;
    }
    let (frac_ns, unit) = match frac {
        None => (0, unit),
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            let scale = 10i64.pow(9 - f.len() as u32);
            (f.parse::<i64>().ok()? * scale, scale)
        }
        Some(_) => return None,
    };
    Some((h * 3600 + mi * 60 + sec, frac_ns, unit))
}

/// The snapshot `when` selects among `snaps` (one host and part, any order): the one named
/// `when.name` if there is one, else the newest complete snapshot started at or before
/// `when.end_ns`. A `_N` name that no snapshot has is an error, not a time.
pub fn pick_at<'a>(
    snaps: &[&'a Snapshot],
    when: &When,
    what: &str,
) -> Result<&'a Snapshot, WhenError> {
    let mut sorted: Vec<&Snapshot> = snaps.to_vec();
    sorted.sort_by_key(|s| (s.manifest.started_ns, s.id));
    if let Some(name) = &when.name {
        let names = crate::repo::folder_names(&sorted);
        if let Some(i) = names.iter().position(|n| n == name) {
            return Ok(sorted[i]);
        }
        if let Some((base, n)) = crate::repo::names::split(name) {
            if n > 1 {
                let near: Vec<&str> = names
                    .iter()
                    .filter(|n| n.starts_with(base))
                    .map(String::as_str)
                    .collect();
                return Err(WhenError::NoSuchName {
                    what: what.to_string(),
                    name: name.clone(),
                    near: if near.is_empty() {
                        "none".into()
                    } else {
                        near.join(", ")
                    },
                });
            }
        }
    }
    let complete: Vec<&Snapshot> = sorted
        .into_iter()
        .filter(|s| s.manifest.status == SnapshotStatus::Complete)
        .collect();
    if complete.is_empty() {
        return Err(WhenError::None(what.to_string()));
    }
    let idx = complete.partition_point(|s| s.manifest.started_ns <= when.end_ns);
    if idx == 0 {
        let first: Vec<String> = complete
            .iter()
            .take(3)
            .map(|s| display(s.manifest.started_ns))
            .collect();
        return Err(WhenError::TooEarly {
            what: what.to_string(),
            when: display(when.end_ns),
            nearest: format!("the oldest are: {}", first.join(", ")),
        });
    }
    Ok(complete[idx - 1])
}

/// What `when` selects among `host`'s `part` snapshots, from the whole list (see [`pick_at`]);
/// an unknown host or part names the host/part pairs the store does have.
pub fn pick_part_at<'a>(
    all: &'a [Snapshot],
    host: &str,
    part: &str,
    when: &When,
) -> Result<&'a Snapshot, WhenError> {
    let part = part.trim_matches('/');
    check_selection(all, Some(host), Some(part))?;
    let of_part: Vec<&Snapshot> = all
        .iter()
        .filter(|s| s.manifest.host == host && s.manifest.part == part)
        .collect();
    pick_at(&of_part, when, &format!("{host}/{part}"))
}

/// Checks that the store has snapshots of `host` (any part), of `part` (any host), or of that
/// host and part, so a typo in `--host` or `--part` is an error naming the HOST/PART pairs the
/// store has rather than an empty answer. Nothing selected is always fine.
pub fn check_selection(
    all: &[Snapshot],
    host: Option<&str>,
    part: Option<&str>,
) -> Result<(), WhenError> {
    let part = part.map(|p| p.trim_matches('/'));
    let found = all.iter().any(|s| {
        host.is_none_or(|h| s.manifest.host == h) && part.is_none_or(|p| s.manifest.part == p)
    });
    if found {
        return Ok(());
    }
    let what = match (host, part) {
        (Some(h), Some(p)) => format!("{h}/{p}"),
        (Some(h), None) => format!("host {h}"),
        (None, Some(p)) => format!("part {p}"),
        (None, None) => return Ok(()),
    };
    Err(WhenError::Unknown {
        what,
        known: crate::repo::known_parts(all),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{SnapshotId, TreeId};
    use crate::model::Manifest;

    const NOW: i64 = 1_795_658_400 * NS; // 2026-11-26 02:00:00 UTC

    fn span(s: &str) -> (String, String, Option<String>) {
        let w = parse_when(s, NOW).unwrap();
        let sub = |ns: i64| format!("{}.{:09}", display(ns), ns.rem_euclid(NS));
        (sub(w.start_ns), sub(w.end_ns), w.name)
    }

    #[test]
    fn formats_name_the_whole_unit() {
        let day = |a: &str, b: &str| (a.to_string(), b.to_string(), None);
        assert_eq!(
            span("2026-11-20"),
            day(
                "2026-11-20 00:00:00.000000000",
                "2026-11-20 23:59:59.999999999"
            )
        );
        for m in ["2026-11-20T14:00", "2026-11-20 14:00", "2026-11-20_1400"] {
            assert_eq!(
                span(m),
                day(
                    "2026-11-20 14:00:00.000000000",
                    "2026-11-20 14:00:59.999999999"
                ),
                "{m}"
            );
        }
        for sec in [
            "2026-11-20T14:00:07Z",
            "2026-11-20 14:00:07",
            "2026-11-20T14:00:07",
        ] {
            assert_eq!(
                span(sec),
                day(
                    "2026-11-20 14:00:07.000000000",
                    "2026-11-20 14:00:07.999999999"
                ),
                "{sec}"
            );
        }
        assert_eq!(
            span("2026-11-20 14:00:07.25"),
            day(
                "2026-11-20 14:00:07.250000000",
                "2026-11-20 14:00:07.259999999"
            )
        );
        assert_eq!(
            span("2026-11-20_140005"),
            (
                "2026-11-20 14:00:05.000000000".into(),
                "2026-11-20 14:00:05.999999999".into(),
                Some("2026-11-20_140005".into())
            )
        );
        assert_eq!(
            span("2026-11-20_140005_2").2.as_deref(),
            Some("2026-11-20_140005_2")
        );
        assert_eq!(parse_when("last", NOW).unwrap(), When::instant(NOW));
        assert_eq!(parse_when("7d", NOW).unwrap().end_ns, NOW - 7 * DAY_NS);
        assert_eq!(parse_when("D-7", NOW).unwrap().end_ns, NOW - 7 * DAY_NS);
        assert_eq!(parse_when("-1d", NOW).unwrap().end_ns, NOW - DAY_NS);
        for copied in [
            "2026-11-20_140005/",
            "10.0.0.5/mail/imap/2026-11-20_140005",
            "/var/backups/bluemind/10.0.0.5/mail/imap/2026-11-20_140005/domain/x",
        ] {
            assert_eq!(
                parse_when(copied, NOW).unwrap().name.as_deref(),
                Some("2026-11-20_140005"),
                "{copied}"
            );
        }
        assert_eq!(
            parse_when("10.0.0.5/mail/imap/last/", NOW).unwrap(),
            When::instant(NOW)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-11-20T25:00",
            "2026-11-20T14:00.5",
            "2026-11-20 14:00:00.1234567890",
            "2026-11-20_140005_1",
            "2026-11-20_140005_x",
            "2026-11-20 14:+0",
            "D-x",
            "--1d",
            "10.0.0.5/mail/imap",
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
                source: "/s".into(),
                tool_version: String::new(),
                ..Manifest::sample("h", "p", ns, complete)
            },
        }
    }

    #[test]
    fn picks_newest_complete_at_or_before() {
        let s: Vec<Snapshot> = vec![snap(10, true), snap(20, false), snap(30, true)];
        let refs: Vec<&Snapshot> = s.iter().collect();
        let at = |ns| When::instant(ns);
        assert_eq!(
            pick_at(&refs, &at(10), "x").unwrap().manifest.started_ns,
            10
        );
        assert_eq!(
            pick_at(&refs, &at(25), "x").unwrap().manifest.started_ns,
            10,
            "partial skipped"
        );
        assert_eq!(
            pick_at(&refs, &at(99), "x").unwrap().manifest.started_ns,
            30
        );
        let e = pick_at(&refs, &at(5), "h/p").unwrap_err();
        assert!(e.to_string().contains("oldest are"), "{e}");
        assert_eq!(
            pick_part_at(&s, "h", "/p/", &at(99))
                .unwrap()
                .manifest
                .started_ns,
            30
        );
        let e = pick_part_at(&s, "h", "q", &at(99)).unwrap_err().to_string();
        assert!(e.contains("h/q") && e.contains("h/p"), "{e}");
    }

    #[test]
    fn names_select_exactly_and_seconds_include_their_fraction() {
        // 02:00:00.2 and 02:00:00.7 (same second), 02:00:01.3, and a partial at 02:00:01.5.
        let s = [
            snap(NOW + 200_000_000, true),
            snap(NOW + 700_000_000, true),
            snap(NOW + 1_300_000_000, true),
            snap(NOW + 1_500_000_000, false),
        ];
        let refs: Vec<&Snapshot> = s.iter().collect();
        let pick = |w: &str| {
            pick_at(&refs, &parse_when(w, NOW).unwrap(), "h/p")
                .map(|x| x.manifest.started_ns - NOW)
                .map_err(|e| e.to_string())
        };
        assert_eq!(pick("2026-11-26_020000"), Ok(200_000_000));
        assert_eq!(pick("2026-11-26_020000_2"), Ok(700_000_000));
        assert_eq!(pick("2026-11-26 02:00:00"), Ok(700_000_000));
        assert_eq!(pick("2026-11-26T02:00:00Z"), Ok(700_000_000));
        assert_eq!(pick("2026-11-26_020001"), Ok(1_300_000_000));
        assert_eq!(pick("2026-11-26 02:00:01"), Ok(1_300_000_000));
        // A name selects its snapshot even when it is partial.
        assert_eq!(pick("2026-11-26_020001_2"), Ok(1_500_000_000));
        let e = pick("2026-11-26_020000_3").unwrap_err();
        assert!(e.contains("2026-11-26_020000, 2026-11-26_020000_2"), "{e}");
        // A base name no snapshot has is a time: the newest complete in or before that second.
        assert_eq!(pick("2026-11-26_020002"), Ok(1_300_000_000));
        assert!(pick("2026-11-26_015959")
            .unwrap_err()
            .contains("oldest are"));
    }
}
