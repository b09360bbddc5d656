//! `restore-server`: every part of one host at a point in time, each back to `ROOT + source`
//! (the path it was backed up from), as the vendor's disaster-recovery restore does. Planning is
//! a pure function of the snapshot list, so it is tested without a store; it refuses non-empty
//! destinations before anything is written, and warns where the vendor requires the same IP
//! address and the same version as the original server.

use crate::model::Snapshot;
use crate::restore::user::is_empty_or_missing;
use crate::restore::when::{pick_at, When, WhenError};
use crate::timefmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ServerRestoreError {
    #[error("no snapshot of host {host:?}; the store has hosts: {known}")]
    UnknownHost { host: String, known: String },
    #[error("no part of host {host} has a complete snapshot at or before {when} UTC:\n  {detail}")]
    Nothing {
        host: String,
        when: String,
        detail: String,
    },
    #[error("destination folders exist and are not empty (use --overwrite to restore over them; identical files are kept): {0}")]
    NotEmpty(String),
    #[error("parts {a} and {b} would both restore into {dest}: restore them one by one with `bmbackup restore`")]
    Overlap { a: String, b: String, dest: String },
    #[error(transparent)]
    Check(#[from] crate::restore::user::UserRestoreError),
}

/// One part to restore.
#[derive(Clone, Debug)]
pub struct Item {
    pub snapshot: Snapshot,
    pub dest: PathBuf,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
    /// Parts left out (no snapshot at that time) and differences from the original server.
    pub warnings: Vec<String>,
}

/// What this machine is, to compare with the snapshots' origin.
pub struct ThisMachine<'a> {
    pub ip: &'a str,
    pub version: &'a str,
}

/// Picks, for every part of `host`, the snapshot `at` selects ([`pick_at`]), and its
/// destination `target + manifest.source`.
pub fn plan(
    all: &[Snapshot],
    host: &str,
    at: &When,
    target: &Path,
    overwrite: bool,
    me: &ThisMachine<'_>,
) -> Result<Plan, ServerRestoreError> {
    let of_host: Vec<&Snapshot> = all.iter().filter(|s| s.manifest.host == host).collect();
    if of_host.is_empty() {
        let mut hosts: Vec<&str> = all.iter().map(|s| s.manifest.host.as_str()).collect();
        hosts.sort_unstable();
        hosts.dedup();
        return Err(ServerRestoreError::UnknownHost {
            host: host.into(),
            known: if hosts.is_empty() {
                "none".into()
            } else {
                hosts.join(", ")
            },
        });
    }
    let mut parts: Vec<&str> = of_host.iter().map(|s| s.manifest.part.as_str()).collect();
    parts.sort_unstable();
    parts.dedup();
    let mut plan = Plan::default();
    for part in parts {
        let snaps: Vec<&Snapshot> = of_host
            .iter()
            .copied()
            .filter(|s| s.manifest.part == part)
            .collect();
        match pick_at(&snaps, at, &format!("{host}/{part}")) {
            Ok(s) => match under(target, &s.manifest.source) {
                Some(dest) => plan.items.push(Item {
                    snapshot: s.clone(),
                    dest,
                }),
                None => plan.warnings.push(format!(
                    "part {part} is not restored: its source {:?} (from snapshot {}) leads out of {}; restore it with `bmbackup restore`",
                    s.manifest.source,
                    s.id.short(),
                    target.display()
                )),
            },
            Err(e @ (WhenError::TooEarly { .. } | WhenError::None(_))) => plan
                .warnings
                .push(format!("part {part} is not restored: {e}")),
            Err(e) => plan.warnings.push(e.to_string()),
        }
    }
    if plan.items.is_empty() {
        return Err(ServerRestoreError::Nothing {
            host: host.into(),
            when: timefmt::display(at.end_ns),
            detail: plan.warnings.join("\n  "),
        });
    }
    for (i, x) in plan.items.iter().enumerate() {
        for y in &plan.items[i + 1..] {
            if x.dest.starts_with(&y.dest) || y.dest.starts_with(&x.dest) {
                return Err(ServerRestoreError::Overlap {
                    a: x.snapshot.manifest.part.clone(),
                    b: y.snapshot.manifest.part.clone(),
                    dest: x.dest.display().to_string(),
                });
            }
        }
    }
    if me.ip != host {
        plan.warnings.push(format!(
            "this machine's address is {}, the snapshots are of {host}: BlueMind only restores onto a server with the same IP address as the original",
            me.ip
        ));
    }
    let mut versions: Vec<&str> = plan
        .items
        .iter()
        .map(|i| i.snapshot.manifest.tool_version.as_str())
        .filter(|v| *v != me.version)
        .collect();
    versions.sort_unstable();
    versions.dedup();
    if !versions.is_empty() {
        plan.warnings.push(format!(
            "the snapshots were made by bmbackup {} and this is {}: restore with the same version as the original server when you can",
            versions.join(", "),
            me.version
        ));
    }
    if !overwrite {
        let mut busy = Vec::new();
        for i in &plan.items {
            if !is_empty_or_missing(&i.dest)? {
                busy.push(i.dest.display().to_string());
            }
        }
        if !busy.is_empty() {
            return Err(ServerRestoreError::NotEmpty(busy.join(", ")));
        }
    }
    Ok(plan)
}

/// `target + source`: the source's absolute path re-rooted under `target`; None when the
/// source (read from a manifest, so not trusted) would lead out of `target` (`..`, NUL).
fn under(target: &Path, source: &str) -> Option<PathBuf> {
    let rel = source.trim_start_matches('/');
    if rel.contains('\0') || rel.split('/').any(|c| c == "..") {
        return None;
    }
    Some(if rel.is_empty() {
        target.to_path_buf()
    } else {
        target.join(rel)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{SnapshotId, TreeId};
    use crate::model::Manifest;

    fn snap(host: &str, part: &str, ns: i64, version: &str) -> Snapshot {
        Snapshot {
            id: SnapshotId::of(format!("{host}{part}{ns}").as_bytes()),
            root: TreeId::of(b""),
            manifest: Manifest {
                source: format!("/srv/{part}"),
                tool_version: version.into(),
                ..Manifest::sample(host, part, ns, true)
            },
        }
    }

    #[test]
    fn picks_each_part_and_warns() {
        let all = vec![
            snap("10.0.0.1", "mail/imap", 10, "0.1.0"),
            snap("10.0.0.1", "mail/imap", 30, "0.1.0"),
            snap("10.0.0.1", "bm/pgsql", 25, "0.0.9"),
            snap("10.0.0.1", "late", 50, "0.1.0"),
            snap("10.0.0.2", "mail/imap", 20, "0.1.0"),
        ];
        let me = ThisMachine {
            ip: "10.0.0.9",
            version: "0.1.0",
        };
        let dir = tempfile::tempdir().unwrap();
        let p = plan(&all, "10.0.0.1", &When::instant(29), dir.path(), false, &me).unwrap();
        let got: Vec<(String, i64)> = p
            .items
            .iter()
            .map(|i| (i.dest.display().to_string(), i.snapshot.manifest.started_ns))
            .collect();
        let root = dir.path().display();
        assert_eq!(
            got,
            [
                (format!("{root}/srv/bm/pgsql"), 25),
                (format!("{root}/srv/mail/imap"), 10)
            ]
        );
        let w = p.warnings.join("\n");
        assert!(w.contains("part late is not restored"), "{w}");
        assert!(w.contains("same IP address"), "{w}");
        assert!(w.contains("0.0.9"), "{w}");

        let e = plan(&all, "10.0.0.3", &When::instant(29), dir.path(), false, &me).unwrap_err();
        assert!(e.to_string().contains("10.0.0.1, 10.0.0.2"), "{e}");
        assert!(plan(&all, "10.0.0.1", &When::instant(5), dir.path(), false, &me).is_err());

        std::fs::create_dir_all(dir.path().join("srv/mail/imap/x")).unwrap();
        let e = plan(&all, "10.0.0.1", &When::instant(29), dir.path(), false, &me).unwrap_err();
        assert!(e.to_string().contains("srv/mail/imap"), "{e}");
        let me = ThisMachine {
            ip: "10.0.0.1",
            version: "0.1.0",
        };
        let p = plan(&all, "10.0.0.1", &When::instant(99), dir.path(), true, &me).unwrap();
        assert_eq!(p.items.len(), 3);

        let mut nested = snap("10.0.0.1", "inner", 1, "0.1.0");
        nested.manifest.source = "/srv/mail/imap/sub".into();
        let mut all = all;
        all.push(nested);
        let e = plan(&all, "10.0.0.1", &When::instant(99), dir.path(), true, &me).unwrap_err();
        assert!(e.to_string().contains("inner"), "{e}");
        assert!(
            p.warnings.iter().all(|w| !w.contains("IP")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn a_source_leading_out_of_root_is_not_restored() {
        let me = ThisMachine {
            ip: "h",
            version: "0.1.0",
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for evil in ["/../etc", "/srv/../../etc", "..", "/srv/a\0b"] {
            let mut bad = snap("h", "evil", 1, "0.1.0");
            bad.manifest.source = evil.into();
            let all = vec![bad, snap("h", "good", 1, "0.1.0")];
            let p = plan(&all, "h", &When::instant(9), &root, false, &me).unwrap();
            let dests: Vec<&PathBuf> = p.items.iter().map(|i| &i.dest).collect();
            assert_eq!(dests, [&root.join("srv/good")], "{evil}");
            let w = p.warnings.join("\n");
            assert!(
                w.contains("part evil is not restored") && w.contains("leads out"),
                "{w}"
            );
        }
        // `..` inside a name is just a name.
        let mut odd = snap("h", "odd", 1, "0.1.0");
        odd.manifest.source = "/srv/a..b".into();
        let p = plan(&[odd], "h", &When::instant(9), &root, false, &me).unwrap();
        assert_eq!(p.items[0].dest, root.join("srv/a..b"));
    }
}
