//! Listing a snapshot without mounting it (`bmbackup ls`): the entries of a folder, or of a whole
//! subtree, read from tree metadata only; and [`node_at`], the path walk `diff` shares.

use crate::id::TreeId;
use crate::model::{Entry, EntryKind, Snapshot};
use crate::repo::{RepoError, Repository};

#[derive(Debug, thiserror::Error)]
pub enum LsError {
    #[error("{path} is not in snapshot {snapshot}; `bmbackup ls {snapshot}` lists its top folder")]
    NotFound { path: String, snapshot: String },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// One listed entry: its path relative to the listed folder (raw bytes) and its metadata.
#[derive(Debug, Clone)]
pub struct Listed {
    pub path: Vec<u8>,
    pub entry: Entry,
}

/// Splits a `/`-separated path into its non-empty components.
pub fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

/// What a path names in a snapshot: its top folder (which has no entry of its own) or an entry.
#[derive(Debug, Clone)]
pub enum Node {
    Top(TreeId),
    Entry(Entry),
}

impl Node {
    pub fn subtree(&self) -> Option<TreeId> {
        match self {
            Node::Top(t) => Some(*t),
            Node::Entry(e) => e.subtree(),
        }
    }
}

/// What `comps` names below the tree `root`: the top folder for no components; None when a
/// component is missing or a file stands where a folder should be.
/// Finds a name in a folder: `(folder, name) -> entry`.
pub type Lookup<'a> =
    dyn FnMut(TreeId, &[u8]) -> Result<Option<crate::model::Entry>, RepoError> + 'a;

pub fn node_at(
    lookup: &mut Lookup<'_>,
    root: TreeId,
    comps: &[&[u8]],
) -> Result<Option<Node>, RepoError> {
    let mut found = Node::Top(root);
    for comp in comps {
        let Some(sub) = found.subtree() else {
            return Ok(None);
        };
        match lookup(sub, comp)? {
            Some(e) => found = Node::Entry(e),
            None => return Ok(None),
        }
    }
    Ok(Some(found))
}

/// Looks `name` up in folder `id`, reading one page of a paged folder.
pub fn lookup(
    repo: &Repository,
    id: TreeId,
    name: &[u8],
) -> Result<Option<crate::model::Entry>, RepoError> {
    repo.read_folder(id)?.lookup(repo, name)
}

/// The entries of the folder at `path` in `snap` (every entry below it when `recursive`, folders
/// before their content), or the entry itself when `path` is not a folder.
pub fn ls(
    repo: &Repository,
    snap: &Snapshot,
    path: &[u8],
    recursive: bool,
) -> Result<Vec<Listed>, LsError> {
    let comps = components(path);
    let node = node_at(&mut |id, n| lookup(repo, id, n), snap.root, &comps)?.ok_or_else(|| {
        LsError::NotFound {
            path: String::from_utf8_lossy(path).into_owned(),
            snapshot: snap.id.short(),
        }
    })?;
    let mut out = Vec::new();
    match node {
        Node::Entry(entry) if entry.subtree().is_none() => out.push(Listed {
            path: entry.name.clone(),
            entry,
        }),
        node => {
            if let Some(tree) = node.subtree() {
                walk(repo, tree, &mut Vec::new(), recursive, &mut out)?;
            }
        }
    }
    Ok(out)
}

fn walk(
    repo: &Repository,
    tree: TreeId,
    prefix: &mut Vec<u8>,
    recursive: bool,
    out: &mut Vec<Listed>,
) -> Result<(), RepoError> {
    // Page by page: a paged folder is never read whole (the listing itself grows, though).
    repo.read_folder(tree)?.for_each_entry(repo, |e| {
        let e = e.clone();
        let len = prefix.len();
        if len > 0 {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(&e.name);
        let sub = e
            .subtree()
            .filter(|_| recursive && e.kind == EntryKind::Dir);
        out.push(Listed {
            path: prefix.clone(),
            entry: e,
        });
        if let Some(sub) = sub {
            walk(repo, sub, prefix, recursive, out)?;
        }
        prefix.truncate(len);
        Ok(())
    })
}

/// Bytes of the regular files below `path` in `snap` (the manifest's figure for all of it):
/// what a restore of it writes, for a progress percentage.
pub fn size_below(repo: &Repository, snap: &Snapshot, path: &[u8]) -> Result<u64, LsError> {
    if components(path).is_empty() {
        return Ok(snap.manifest.bytes);
    }
    Ok(ls(repo, snap, path, true)?
        .iter()
        .filter(|l| l.entry.kind == EntryKind::File)
        .map(|l| l.entry.size)
        .sum())
}
