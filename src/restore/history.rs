//! `history`: the versions of one file or folder across a part's snapshots, from tree metadata
//! only (the catalog's copies of trees; no chunk is read). A file's content hash is its single
//! chunk id, or BLAKE3 over its chunk id list; a folder's is its subtree id, which changes
//! whenever anything beneath it does.

use crate::id::{Digest, TreeId};
use crate::model::{Entry, EntryKind, Snapshot, Tree};
use crate::repo::{RepoError, Repository};
use std::collections::HashMap;

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

/// Rows for `snaps` (one part, oldest first, with their folder names) for `path`.
pub fn history(
    repo: &Repository,
    snaps: &[(&Snapshot, String)],
    path: &[u8],
) -> Result<Vec<Row>, RepoError> {
    let comps: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    // Folders on the path are shared by many snapshots when unchanged: read each once.
    let mut trees: HashMap<TreeId, Tree> = HashMap::new();
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
                Some(t) => trees.get(&t).map_or(0, |t| t.entries.len() as u64),
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
    Ok(rows)
}

/// The entry at `comps` under `root`, or None. A folder's own tree is loaded too (for its size).
fn lookup(
    repo: &Repository,
    trees: &mut HashMap<TreeId, Tree>,
    root: TreeId,
    comps: &[&[u8]],
) -> Result<Option<Entry>, RepoError> {
    let mut id = root;
    let mut found: Option<Entry> = None;
    for (i, comp) in comps.iter().enumerate() {
        if let std::collections::hash_map::Entry::Vacant(v) = trees.entry(id) {
            v.insert(repo.read_tree(id)?);
        }
        let Some(e) = trees.get(&id).and_then(|t| t.find(comp)).cloned() else {
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
            v.insert(repo.read_tree(sub)?);
        }
    }
    Ok(found)
}
