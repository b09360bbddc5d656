//! Reading single entries and files of a snapshot by path (`a/b/c`), for the restore engines
//! that look inside a spool or config-directory snapshot (mailboxes, DAV collections).

use crate::model::{Entry, Snapshot, Tree};
use crate::repo::{RepoError, Repository};

/// The entry at `path` in a snapshot.
pub fn entry_at(
    repo: &Repository,
    snap: &Snapshot,
    path: &str,
) -> Result<Option<Entry>, RepoError> {
    let mut tree = repo.read_tree(snap.root)?;
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, c) in comps.iter().enumerate() {
        let Some(e) = tree.find(c.as_bytes()).cloned() else {
            return Ok(None);
        };
        if i + 1 == comps.len() {
            return Ok(Some(e));
        }
        match e.subtree() {
            Some(t) => tree = repo.read_tree(t)?,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// A regular file's bytes (chunks verified as always).
pub fn read_file(repo: &Repository, e: &Entry) -> Result<Vec<u8>, RepoError> {
    let mut out = Vec::with_capacity(usize::try_from(e.size).unwrap_or(0));
    for c in e.chunks() {
        out.extend_from_slice(&repo.read_chunk(c.id)?);
    }
    Ok(out)
}

pub fn subtree(repo: &Repository, from: &Tree, path: &str) -> Result<Option<Tree>, RepoError> {
    let mut cur: Option<Tree> = None;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        let t = cur.as_ref().unwrap_or(from);
        match t.find(c.as_bytes()).and_then(Entry::subtree) {
            Some(id) => cur = Some(repo.read_tree(id)?),
            None => return Ok(None),
        }
    }
    Ok(Some(cur.unwrap_or_else(|| from.clone())))
}

pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}
