//! `history`: the versions of one file or folder across a part's snapshots, from tree metadata
//! only (the catalog's copies of trees; no chunk is read). A file's content hash is its single
//! chunk id, or BLAKE3 over its chunk id list; a folder's is its subtree id, which changes
//! whenever anything beneath it does.

use crate::id::{Digest, TreeId};
use crate::model::{Entry, EntryKind, Snapshot};
use crate::repo::folder::Folder;
use crate::repo::{RepoError, Repository};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{path:?} is in none of the {snapshots} snapshots of {part}{}", hint(.closest))]
    NeverExisted {
        path: String,
        part: String,
        snapshots: usize,
        /// Existing paths closest to it, best first.
        closest: Vec<String>,
    },
}

fn hint(closest: &[String]) -> String {
    if closest.is_empty() {
        "; see `bmbackup find` to search for a name".into()
    } else {
        format!("; closest existing: {}", closest.join(", "))
    }
}

/// How a snapshot's version relates to the previous snapshot's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Present here, absent (or no snapshot) before.
    New,
    /// Different content.
    Changed,
    /// Same content, different owner, mode, times or xattrs.
    Metadata,
    Unchanged,
    Absent,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Changed => "changed",
            State::Metadata => "metadata",
            State::Unchanged => "unchanged",
            State::Absent => "absent",
        }
    }
}

/// One snapshot's view of the path.
#[derive(Clone, Debug)]
pub struct Row {
    pub snapshot: Snapshot,
    /// The snapshot's folder name (`2026-11-26_020000`).
    pub name: String,
    pub state: State,
    pub kind: Option<EntryKind>,
    /// Bytes of a file; entries of a folder.
    pub size: u64,
    pub hash: Option<Digest>,
    /// 1-based number of this content among the distinct contents seen so far (an edit undone
    /// shows the earlier number again).
    pub version: Option<usize>,
    pub mtime_sec: i64,
}

/// The real changes among `rows` (oldest first): the path appeared, its content or metadata
/// changed, or it disappeared. A snapshot where it stays absent is not a change.
pub fn changes(rows: &[Row]) -> usize {
    let mut present = false;
    let mut n = 0;
    for r in rows {
        let change = match r.state {
            State::New | State::Changed | State::Metadata => true,
            State::Absent => present,
            State::Unchanged => false,
        };
        n += usize::from(change);
        present = r.state != State::Absent;
    }
    n
}

/// The content hash described in the module doc.
pub fn content_hash(e: &Entry) -> Digest {
    if let Some(t) = e.subtree() {
        return t.0;
    }
    match (e.kind, e.chunks()) {
        (EntryKind::File, [one]) => one.id.0,
        (EntryKind::File, chunks) => {
            let mut h = blake3::Hasher::new();
            for c in chunks {
                h.update(&c.id.0 .0);
            }
            Digest(*h.finalize().as_bytes())
        }
        (EntryKind::Symlink, _) => Digest::of(&e.target),
        _ => Digest::of(&e.rdev.to_le_bytes()),
    }
}

fn same_metadata(a: &Entry, b: &Entry) -> bool {
    a.kind == b.kind
        && a.mode == b.mode
        && a.uid == b.uid
        && a.gid == b.gid
        && a.mtime == b.mtime
        && a.xattrs == b.xattrs
}

/// Rows for `snaps` (one part, oldest first, with their folder names) for `path`. A path that no
/// snapshot has is an error naming the closest paths that exist.
pub fn history(
    repo: &Repository,
    snaps: &[(&Snapshot, String)],
    path: &[u8],
) -> Result<Vec<Row>, HistoryError> {
    let comps: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    // Folders on the path are shared by many snapshots when unchanged: read each once.
    let mut trees: HashMap<TreeId, Folder> = HashMap::new();
    let mut rows: Vec<Row> = Vec::with_capacity(snaps.len());
    let mut distinct: Vec<Digest> = Vec::new();
    let mut prev: Option<Entry> = None;
    for (snap, name) in snaps {
        let found = lookup(repo, &mut trees, snap.root, &comps)?;
        let mut row = Row {
            snapshot: (*snap).clone(),
            name: name.clone(),
            state: State::Absent,
            kind: None,
            size: 0,
            hash: None,
            version: None,
            mtime_sec: 0,
        };
        if let Some(e) = &found {
            let hash = content_hash(e);
            row.kind = Some(e.kind);
            row.size = match e.subtree() {
                Some(t) => trees.get(&t).map_or(0, Folder::len),
                None => e.size,
            };
            row.hash = Some(hash);
            row.mtime_sec = e.mtime.sec;
            row.version = Some(match distinct.iter().position(|d| *d == hash) {
                Some(i) => i + 1,
                None => {
                    distinct.push(hash);
                    distinct.len()
                }
            });
            row.state = match &prev {
                None => State::New,
                Some(p) if content_hash(p) != hash || p.kind != e.kind => State::Changed,
                Some(p) if !same_metadata(p, e) => State::Metadata,
                Some(_) => State::Unchanged,
            };
        }
        prev = found;
        rows.push(row);
    }
    if rows.iter().all(|r| r.state == State::Absent) {
        if let Some((snap, _)) = snaps.first() {
            return Err(HistoryError::NeverExisted {
                path: String::from_utf8_lossy(path).into_owned(),
                part: format!("{}/{}", snap.manifest.host, snap.manifest.part),
                snapshots: snaps.len(),
                closest: closest(repo, &mut trees, snaps, &comps)?,
            });
        }
    }
    Ok(rows)
}

/// Up to 3 existing paths closest to `comps`: the names found, in any snapshot, in the deepest
/// folder of the path that some snapshot has, nearest by edit distance to the first missing name.
fn closest(
    repo: &Repository,
    trees: &mut HashMap<TreeId, Folder>,
    snaps: &[(&Snapshot, String)],
    comps: &[&[u8]],
) -> Result<Vec<String>, RepoError> {
    let mut depth = 0;
    let mut folders: Vec<TreeId> = Vec::new();
    for (snap, _) in snaps {
        let (d, folder) = deepest_folder(repo, trees, snap.root, comps)?;
        if d > depth {
            depth = d;
            folders.clear();
        }
        if d == depth && !folders.contains(&folder) {
            folders.push(folder);
        }
    }
    let Some(missing) = comps.get(depth) else {
        return Ok(Vec::new());
    };
    let mut scored: Vec<(usize, Vec<u8>)> = Vec::new();
    for f in folders.iter().filter_map(|f| trees.get(f)) {
        f.for_each_entry(repo, |e| {
            scored.push((edit_distance(missing, &e.name), e.name.clone()));
            // Only the 3 nearest are shown: keep a few, not a paged folder's million names.
            if scored.len() > 64 {
                scored.sort();
                scored.dedup();
                scored.truncate(3);
            }
            Ok::<_, RepoError>(())
        })?;
    }
    scored.sort();
    scored.dedup();
    let prefix: Vec<String> = comps[..depth]
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    Ok(scored
        .into_iter()
        .take(3)
        .map(|(_, name)| {
            let mut p = prefix.clone();
            p.push(String::from_utf8_lossy(&name).into_owned());
            p.join("/")
        })
        .collect())
}

/// How many leading components of `comps` are folders under `root`, and the last such folder.
fn deepest_folder(
    repo: &Repository,
    trees: &mut HashMap<TreeId, Folder>,
    root: TreeId,
    comps: &[&[u8]],
) -> Result<(usize, TreeId), RepoError> {
    let mut id = root;
    for (depth, comp) in comps.iter().enumerate() {
        if let std::collections::hash_map::Entry::Vacant(v) = trees.entry(id) {
            v.insert(repo.read_folder(id)?);
        }
        let found = match trees.get(&id) {
            Some(f) => f.lookup(repo, comp)?,
            None => None,
        };
        match found.as_ref().and_then(Entry::subtree) {
            Some(sub) => id = sub,
            None => return Ok((depth, id)),
        }
    }
    Ok((comps.len(), id))
}

/// Levenshtein distance over bytes.
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The entry at `comps` under `root`, or None. A folder's own tree is loaded too (for its size).
fn lookup(
    repo: &Repository,
    trees: &mut HashMap<TreeId, Folder>,
    root: TreeId,
    comps: &[&[u8]],
) -> Result<Option<Entry>, RepoError> {
    let mut id = root;
    let mut found: Option<Entry> = None;
    for (i, comp) in comps.iter().enumerate() {
        if let std::collections::hash_map::Entry::Vacant(v) = trees.entry(id) {
            v.insert(repo.read_folder(id)?);
        }
        let hit = match trees.get(&id) {
            Some(f) => f.lookup(repo, comp)?,
            None => None,
        };
        let Some(e) = hit else {
            return Ok(None);
        };
        match e.subtree() {
            Some(sub) => id = sub,
            None if i + 1 == comps.len() => {}
            None => return Ok(None),
        }
        found = Some(e);
    }
    if let Some(sub) = found.as_ref().and_then(Entry::subtree) {
        if let std::collections::hash_map::Entry::Vacant(v) = trees.entry(sub) {
            v.insert(repo.read_folder(sub)?);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance(b"file.txt", b"file.txt"), 0);
        assert_eq!(edit_distance(b"flie.txt", b"file.txt"), 2);
        assert_eq!(edit_distance(b"", b"abc"), 3);
        assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
    }

    fn row(state: State) -> Row {
        Row {
            snapshot: crate::vfs::layout::tests::snap(1, "h", "p", 0, true),
            name: String::new(),
            state,
            kind: None,
            size: 0,
            hash: None,
            version: None,
            mtime_sec: 0,
        }
    }

    #[test]
    fn only_real_changes_count() {
        use State::*;
        let rows: Vec<Row> = [
            Absent, Absent, New, Unchanged, Metadata, Changed, Absent, Absent,
        ]
        .into_iter()
        .map(row)
        .collect();
        assert_eq!(changes(&rows), 4);
        assert_eq!(changes(&[row(Absent), row(Absent), row(Absent)]), 0);
    }
}
