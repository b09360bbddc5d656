//! Snapshot folder names (`HOST/PART/NAME` on the mount, in `snapshots`, `forget`, hooks and
//! `--at`): `YYYY-MM-DD_HHMMSS` of the start time in UTC, `_2`, `_3`… for another snapshot of the
//! same part started in the same second.
//!
//! A name never changes: the backup picks the next free one of its part when it commits and
//! records it in the manifest ([`crate::model::Manifest::name`]), so forgetting other snapshots
//! cannot rename it. Snapshots written before names were recorded get the name the list gives
//! them (base name, then `_2`, `_3`… in start order among same-second snapshots of their part).
//! That computed name only shifts if an older snapshot *of the same part started in the same
//! second* is forgotten, which needs two backups of one part within one second (before part locks).
//! A recorded name that is not of the form above for its own start time (a hand-edited or
//! hostile manifest) is ignored and computed instead, so a name is always a safe path component.

use crate::model::Snapshot;
use crate::timefmt;
use std::collections::HashSet;

/// True when `name` is a valid name for a snapshot started at `started_ns`: its base name, or the
/// base name with `_N`, N ≥ 2 without leading zeros.
pub fn is_valid(name: &str, started_ns: i64) -> bool {
    let base = timefmt::folder_name(started_ns);
    match name.strip_prefix(base.as_str()) {
        Some("") => true,
        Some(rest) => rest.strip_prefix('_').is_some_and(|n| {
            !n.starts_with('0') && n.parse::<u32>().is_ok_and(|n| n >= 2) && n.len() <= 9
        }),
        None => false,
    }
}

/// Splits a name into its base and `_N` suffix (1 for none), if it looks like a snapshot name.
pub fn split(name: &str) -> Option<(&str, u32)> {
    const BASE_LEN: usize = "YYYY-MM-DD_HHMMSS".len();
    if name.len() < BASE_LEN || !name.is_char_boundary(BASE_LEN) {
        return None;
    }
    let (base, rest) = name.split_at(BASE_LEN);
    let b = base.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'_'
        && digits(11..17);
    if !shape {
        return None;
    }
    match rest {
        "" => Some((base, 1)),
        _ => {
            let n = rest.strip_prefix('_')?;
            if n.starts_with('0') || n.len() > 9 {
                return None;
            }
            let n: u32 = n.parse().ok()?;
            (n >= 2).then_some((base, n))
        }
    }
}

fn with_suffix(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_string()
    } else {
        format!("{base}_{n}")
    }
}

/// The names of one part's snapshots, given sorted by start time then id (as the catalog lists
/// them). Recorded names are kept (the first of the list keeps a name recorded twice); the others
/// get their base name or the lowest free `_N` in list order, skipping recorded names.
pub fn part_names(snaps: &[&Snapshot]) -> Vec<String> {
    let mut out: Vec<Option<String>> = vec![None; snaps.len()];
    let mut taken: HashSet<String> = HashSet::new();
    for (i, s) in snaps.iter().enumerate() {
        if let Some(n) = &s.manifest.name {
            if is_valid(n, s.manifest.started_ns) && taken.insert(n.clone()) {
                out[i] = Some(n.clone());
            }
        }
    }
    let mut prev_base = String::new();
    let mut n = 1;
    for (i, s) in snaps.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let base = timefmt::folder_name(s.manifest.started_ns);
        n = if base == prev_base { n + 1 } else { 1 };
        while taken.contains(&with_suffix(&base, n)) {
            n += 1;
        }
        let name = with_suffix(&base, n);
        taken.insert(name.clone());
        out[i] = Some(name);
        prev_base = base;
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

/// The name a new snapshot started at `started_ns` takes: its base name, or the lowest `_N` that
/// none of `existing` (the part's current names) has.
pub fn next_free(existing: &[String], started_ns: i64) -> String {
    let base = timefmt::folder_name(started_ns);
    let mut n = 1;
    while existing.iter().any(|e| *e == with_suffix(&base, n)) {
        n += 1;
    }
    with_suffix(&base, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::layout::tests::snap;

    const T: i64 = 1_795_658_400 * 1_000_000_000; // 2026-11-26 02:00:00 UTC

    fn named(mut s: Snapshot, name: &str) -> Snapshot {
        s.manifest.name = Some(name.into());
        s
    }

    fn names(snaps: &[Snapshot]) -> Vec<String> {
        part_names(&snaps.iter().collect::<Vec<_>>())
    }

    #[test]
    fn validity_and_split() {
        assert!(is_valid("2026-11-26_020000", T + 5));
        assert!(is_valid("2026-11-26_020000_2", T));
        assert!(is_valid("2026-11-26_020000_12", T));
        for bad in [
            "2026-11-26_020001",
            "2026-11-26_020000_1",
            "2026-11-26_020000_02",
            "2026-11-26_020000_",
            "2026-11-26_020000_x",
            "2026-11-26_020000/../x",
            "",
        ] {
            assert!(!is_valid(bad, T), "{bad}");
        }
        assert_eq!(split("2026-11-26_020000"), Some(("2026-11-26_020000", 1)));
        assert_eq!(split("2026-11-26_020000_3"), Some(("2026-11-26_020000", 3)));
        assert_eq!(split("2026-11-26_020000_1"), None);
        assert_eq!(split("2026-11-26 02:00:00"), None);
        assert_eq!(split("2026-11-26T020000"), None);
    }

    #[test]
    fn computed_names_for_old_snapshots() {
        let s = vec![
            snap(1, "h", "p", T, true),
            snap(2, "h", "p", T + 10, true),
            snap(3, "h", "p", T + 2_000_000_000, true),
        ];
        assert_eq!(
            names(&s),
            [
                "2026-11-26_020000",
                "2026-11-26_020000_2",
                "2026-11-26_020002"
            ]
        );
    }

    #[test]
    fn recorded_names_survive_forgetting_others() {
        let a = named(snap(1, "h", "p", T, true), "2026-11-26_020000");
        let b = named(snap(2, "h", "p", T + 10, true), "2026-11-26_020000_2");
        assert_eq!(names(&[a.clone(), b.clone()])[1], "2026-11-26_020000_2");
        // `a` forgotten: `b` keeps its name.
        assert_eq!(names(std::slice::from_ref(&b)), ["2026-11-26_020000_2"]);
        // An old unnamed snapshot in the same second does not take a recorded name.
        let old = snap(3, "h", "p", T + 20, true);
        assert_eq!(
            names(&[b.clone(), old]),
            ["2026-11-26_020000_2", "2026-11-26_020000"]
        );
        // A name recorded twice: the first keeps it, the second gets a free one.
        let c = named(snap(4, "h", "p", T + 30, true), "2026-11-26_020000_2");
        assert_eq!(names(&[b, c]), ["2026-11-26_020000_2", "2026-11-26_020000"]);
        // A hostile name is ignored.
        let bad = named(snap(5, "h", "p", T, true), "../../etc");
        assert_eq!(names(&[bad]), ["2026-11-26_020000"]);
    }

    #[test]
    fn next_free_name() {
        let existing = vec!["2026-11-26_020000_2".to_string()];
        assert_eq!(next_free(&existing, T), "2026-11-26_020000");
        let existing = vec![
            "2026-11-26_020000".to_string(),
            "2026-11-26_020000_2".to_string(),
        ];
        assert_eq!(next_free(&existing, T + 7), "2026-11-26_020000_3");
        assert_eq!(next_free(&existing, T + 1_000_000_000), "2026-11-26_020001");
    }
}
