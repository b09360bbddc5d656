//! The synthetic top of the mount: `HOST/PART…/DATE` folders for every snapshot and the live
//! `last` folder per part, rebuilt from the snapshot list on every refresh (never from trees).

use crate::id::SnapshotId;
use crate::model::{Snapshot, SnapshotStatus};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Name of the folder that always shows the newest complete snapshot of a part.
pub const LAST: &str = "last";

/// What a mount needs to know about one snapshot to show it.
#[derive(Debug)]
pub struct SnapInfo {
    pub snapshot: Snapshot,
    /// Mount-relative path of its date folder, e.g. `10.0.0.5/mail/2026-11-26_020000`: what
    /// error messages name.
    pub display: String,
}

impl SnapInfo {
    pub fn id(&self) -> SnapshotId {
        self.snapshot.id
    }
}

/// One name inside a synthetic folder.
#[derive(Clone, Debug)]
pub enum Child {
    /// Another synthetic folder (host, part, or part component).
    Dir,
    /// The root of a snapshot; `last` is true for the `last` alias.
    Snapshot { snap: Arc<SnapInfo>, last: bool },
}

/// The synthetic folders, keyed by their path components (the mount root is `[]`).
#[derive(Debug, Default)]
pub struct Layout {
    dirs: HashMap<Vec<String>, BTreeMap<String, Child>>,
    /// For each synthetic folder, when the newest snapshot below it started (ns): its mtime, so
    /// it stays put across remounts and moves only when a backup adds a snapshot.
    newest: HashMap<Vec<String>, i64>,
    /// Sorted: what refresh compares to see whether anything changed.
    ids: Vec<SnapshotId>,
    /// Display paths of the snapshots that have xattrs or may have (unknown), sorted.
    with_xattrs: Vec<String>,
}

impl Layout {
    /// Builds the folders for `snapshots`. Pure: no trees are read, so mount and refresh stay
    /// fast however large the store is.
    pub fn build(snapshots: &[Snapshot]) -> Layout {
        let mut layout = Layout::default();
        layout.dirs.insert(Vec::new(), BTreeMap::new());
        layout.ids = snapshots.iter().map(|s| s.id).collect();
        layout.ids.sort();
        // Group by (host, part) so same-second names and `last` are decided per part.
        let mut parts: BTreeMap<Vec<String>, Vec<&Snapshot>> = BTreeMap::new();
        for s in snapshots {
            let mut path = vec![sanitize(&s.manifest.host)];
            path.extend(
                s.manifest
                    .part
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .map(sanitize),
            );
            for i in 0..=path.len() {
                let t = layout.newest.entry(path[..i].to_vec()).or_insert(i64::MIN);
                *t = (*t).max(s.manifest.started_ns);
            }
            parts.entry(path).or_default().push(s);
        }
        for (path, mut snaps) in parts {
            snaps.sort_by_key(|s| (s.manifest.started_ns, s.id));
            layout.ensure_dir(&path);
            // Recorded names (or, for old snapshots, the names the list gives them).
            let names = crate::repo::folder_names(&snaps);
            for (s, name) in snaps.iter().zip(names) {
                let info = Arc::new(SnapInfo {
                    snapshot: (*s).clone(),
                    display: format!("{}/{}", path.join("/"), name),
                });
                if info.snapshot.manifest.has_xattrs != Some(false) {
                    layout.with_xattrs.push(info.display.clone());
                }
                layout.insert(
                    &path,
                    name,
                    Child::Snapshot {
                        snap: info,
                        last: false,
                    },
                );
            }
            let newest_complete = layout.dirs.get(&path).and_then(|d| {
                d.values()
                    .filter_map(|c| match c {
                        Child::Snapshot { snap, .. }
                            if snap.snapshot.manifest.status == SnapshotStatus::Complete =>
                        {
                            Some(snap.clone())
                        }
                        _ => None,
                    })
                    .max_by_key(|s| (s.snapshot.manifest.started_ns, s.id()))
            });
            if let Some(snap) = newest_complete {
                layout.insert(
                    &path,
                    LAST.to_string(),
                    Child::Snapshot { snap, last: true },
                );
            }
        }
        layout.with_xattrs.sort();
        layout
    }

    pub fn snapshot_ids(&self) -> &[SnapshotId] {
        &self.ids
    }

    /// The snapshots that have extended attributes, or whose manifest does not say (older
    /// ones), by display path (`HOST/PART/DATE`); empty when every one records none.
    pub fn with_xattrs(&self) -> &[String] {
        &self.with_xattrs
    }

    /// When the newest snapshot below the synthetic folder `path` started (ns), if any.
    pub fn newest_ns(&self, path: &[String]) -> Option<i64> {
        self.newest.get(path).copied()
    }

    /// The entries of a synthetic folder, sorted by name; `None` if it does not exist (any more).
    pub fn dir(&self, path: &[String]) -> Option<&BTreeMap<String, Child>> {
        self.dirs.get(path)
    }

    fn ensure_dir(&mut self, path: &[String]) {
        for i in 0..path.len() {
            let (parent, name) = (&path[..i], &path[i]);
            if !self.dirs.contains_key(&path[..=i]) {
                self.insert(parent, name.clone(), Child::Dir);
                self.dirs.insert(path[..=i].to_vec(), BTreeMap::new());
            }
        }
    }

    fn insert(&mut self, parent: &[String], name: String, child: Child) {
        let dir = self.dirs.entry(parent.to_vec()).or_default();
        // A part component named like a date folder (or `last`) would hide one of the two;
        // keep the first and say so rather than show a mix.
        if let Some(old) = dir.get(&name) {
            log::warn!(
                "mount: {}/{name} is both {old:?} and {child:?}; showing the first",
                parent.join("/")
            );
            return;
        }
        dir.insert(name, child);
    }
}

/// Makes a manifest string safe as one path component.
fn sanitize(s: &str) -> String {
    match s {
        "" => "_".into(),
        "." | ".." => s.replace('.', "_"),
        _ => s.replace(['/', '\0'], "_"),
    }
}

/// `YYYY-MM-DD_HHMMSS` in UTC: sorts lexicographically in time order and has no `:`. The same
/// names as `bmbackup restore HOST/PART/DATE` accepts.
pub fn date_name(started_ns: i64) -> String {
    crate::timefmt::folder_name(started_ns)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::id::{Digest, TreeId};
    use crate::model::Manifest;

    pub(crate) fn snap(n: u8, host: &str, part: &str, started_ns: i64, complete: bool) -> Snapshot {
        Snapshot {
            id: SnapshotId(Digest([n; 32])),
            root: TreeId(Digest([n; 32])),
            manifest: Manifest {
                finished_ns: started_ns + 1,
                ..Manifest::sample(host, part, started_ns, complete)
            },
        }
    }

    #[test]
    fn date_names() {
        assert_eq!(date_name(0), "1970-01-01_000000");
        assert_eq!(date_name(1_795_653_296_999_999_999), "2026-11-26_003456");
        assert_eq!(date_name(-1), "1969-12-31_235959");
        // Lexicographic order is time order.
        let mut t: Vec<i64> = (0..200)
            .map(|i| i * 7_919_000_000_000_000 - 400_000_000_000_000_000)
            .collect();
        let names: Vec<String> = t.iter().map(|&n| date_name(n)).collect();
        t.sort();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    fn names(l: &Layout, path: &[&str]) -> Vec<String> {
        let p: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        l.dir(&p)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn layout_hosts_parts_dates_last() {
        let s = 1_795_653_296_000_000_000; // 2026-11-26_003456
        let l = Layout::build(&[
            snap(1, "10.0.0.5", "mail/imap", s, true),
            snap(2, "10.0.0.5", "mail/imap", s + 5, true), // same second
            snap(3, "10.0.0.5", "mail/imap", s + 86_400_000_000_000, false), // newer, partial
            snap(4, "10.0.0.5", "db", s, true),
            snap(5, "10.0.0.6", "/etc/", s, false),
        ]);
        assert_eq!(names(&l, &[]), ["10.0.0.5", "10.0.0.6"]);
        assert_eq!(names(&l, &["10.0.0.5"]), ["db", "mail"]);
        assert_eq!(names(&l, &["10.0.0.5", "mail"]), ["imap"]);
        assert_eq!(
            names(&l, &["10.0.0.5", "mail", "imap"]),
            [
                "2026-11-26_003456",
                "2026-11-26_003456_2",
                "2026-11-27_003456",
                "last"
            ]
        );
        // No complete snapshot: no `last`.
        assert_eq!(names(&l, &["10.0.0.6", "etc"]), ["2026-11-26_003456"]);
        let dir = l.dir(&["10.0.0.5".into(), "mail".into(), "imap".into()]);
        match dir.and_then(|d| d.get(LAST)) {
            Some(Child::Snapshot { snap, last: true }) => {
                assert_eq!(snap.id(), SnapshotId(Digest([2; 32])));
                assert_eq!(snap.display, "10.0.0.5/mail/imap/2026-11-26_003456_2");
            }
            other => panic!("bad last: {other:?}"),
        }
    }

    #[test]
    fn snapshots_that_may_have_xattrs() {
        let with = |n: u8, ns: i64, has: Option<bool>| {
            let mut s = snap(n, "h", "p", ns, true);
            s.manifest.has_xattrs = has;
            s
        };
        let day = 86_400_000_000_000;
        let none = [with(1, 0, Some(false)), with(2, day, Some(false))];
        assert!(Layout::build(&none).with_xattrs().is_empty());
        let mixed = [
            with(1, 0, Some(false)),
            with(2, day, Some(true)),
            with(3, 2 * day, None), // an older manifest: unknown counts as "may have"
        ];
        assert_eq!(
            Layout::build(&mixed).with_xattrs(),
            ["h/p/1970-01-02_000000", "h/p/1970-01-03_000000"]
        );
    }

    #[test]
    fn hostile_names_stay_one_component() {
        let l = Layout::build(&[snap(1, "a/b", "..", 0, true)]);
        assert_eq!(names(&l, &[]), ["a_b"]);
        assert_eq!(names(&l, &["a_b"]), ["__"]);
    }
}
