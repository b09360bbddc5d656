//! What changed between two snapshots (`bmbackup diff`): entries added, removed, changed in
//! content or only in metadata, with sizes, answered from trees alone. Folders whose tree id is
//! the same in both snapshots are skipped without being read, so comparing two snapshots of a
//! mostly unchanged part reads only the trees on the paths to what changed.

use super::ls::{components, node_at, Node};
use crate::id::TreeId;
use crate::model::{Entry, EntryKind, Snapshot, Tree};
use crate::repo::{RepoError, Repository};
use std::cell::Cell;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{path} is in neither snapshot {old} nor {new}")]
    NotFound {
        path: String,
        old: String,
        new: String,
    },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// How an entry differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    /// Other bytes (a file), target (a symlink) or device number.
    Content,
    /// Same content; owner, mode, mtime or extended attributes differ.
    Metadata,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Content => "changed",
            Change::Metadata => "metadata",
        }
    }
}

/// One difference. Sizes are those of regular files (0 for other kinds); `old_size` is None for
/// an added entry, `new_size` for a removed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Path inside the part, raw bytes.
    pub path: Vec<u8>,
    pub change: Change,
    /// The entry's kind (the new one when both exist).
    pub kind: EntryKind,
    pub old_size: Option<u64>,
    pub new_size: Option<u64>,
}

/// Every difference, in path order, and how many trees were read to find them.
#[derive(Debug, Default)]
pub struct DiffReport {
    pub differences: Vec<Difference>,
    pub trees_read: u64,
}

/// Totals of one kind of change: entries, and regular-file bytes before and after.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub entries: u64,
    pub old_bytes: u64,
    pub new_bytes: u64,
}

impl DiffReport {
    pub fn totals(&self, change: Change) -> Totals {
        let mut t = Totals::default();
        for d in self.differences.iter().filter(|d| d.change == change) {
            t.entries += 1;
            t.old_bytes += d.old_size.unwrap_or(0);
            t.new_bytes += d.new_size.unwrap_or(0);
        }
        t
    }
}

/// The differences from `old` to `new` below `path` (raw, `/`-separated; empty for all).
pub fn diff(
    repo: &Repository,
    old: &Snapshot,
    new: &Snapshot,
    path: &[u8],
) -> Result<DiffReport, DiffError> {
    let d = Differ {
        repo,
        trees_read: Cell::new(0),
        out: Vec::new(),
    };
    let comps = components(path);
    let mut read = |id| d.read(id);
    let a = node_at(&mut read, old.root, &comps)?;
    let b = node_at(&mut read, new.root, &comps)?;
    let mut d = d;
    let mut prefix = comps.join(&b'/');
    match (a, b) {
        (None, None) => {
            return Err(DiffError::NotFound {
                path: String::from_utf8_lossy(path).into_owned(),
                old: old.id.short(),
                new: new.id.short(),
            })
        }
        (Some(Node::Entry(a)), None) => d.one_side(&mut prefix, &a, Change::Removed)?,
        (None, Some(Node::Entry(b))) => d.one_side(&mut prefix, &b, Change::Added)?,
        (Some(Node::Entry(a)), Some(Node::Entry(b))) => d.entries(&mut prefix, &a, &b)?,
        (Some(a), Some(b)) => {
            if let (Some(ta), Some(tb)) = (a.subtree(), b.subtree()) {
                d.trees(&mut prefix, ta, tb)?;
            }
        }
        // The top folder is always there.
        _ => {}
    }
    Ok(DiffReport {
        differences: d.out,
        trees_read: d.trees_read.get(),
    })
}

struct Differ<'r> {
    repo: &'r Repository,
    trees_read: Cell<u64>,
    out: Vec<Difference>,
}

fn size_of(e: &Entry) -> u64 {
    if e.kind == EntryKind::File {
        e.size
    } else {
        0
    }
}

fn same_content(a: &Entry, b: &Entry) -> bool {
    match a.kind {
        EntryKind::File => a.size == b.size && a.chunks() == b.chunks(),
        EntryKind::Symlink => a.target == b.target,
        EntryKind::CharDev | EntryKind::BlockDev => a.rdev == b.rdev,
        _ => true,
    }
}

fn same_metadata(a: &Entry, b: &Entry) -> bool {
    a.mode == b.mode
        && a.uid == b.uid
        && a.gid == b.gid
        && a.mtime == b.mtime
        && a.xattrs == b.xattrs
}

fn join(prefix: &mut Vec<u8>, name: &[u8]) -> usize {
    let len = prefix.len();
    if len > 0 {
        prefix.push(b'/');
    }
    prefix.extend_from_slice(name);
    len
}

impl Differ<'_> {
    fn read(&self, id: TreeId) -> Result<Tree, RepoError> {
        self.trees_read.set(self.trees_read.get() + 1);
        self.repo.read_tree(id)
    }

    fn push(&mut self, path: &[u8], change: Change, old: Option<&Entry>, new: Option<&Entry>) {
        let kind = new.or(old).map_or(EntryKind::File, |e| e.kind);
        self.out.push(Difference {
            path: path.to_vec(),
            change,
            kind,
            old_size: old.map(size_of),
            new_size: new.map(size_of),
        });
    }

    /// Folders `a` (old) and `b` (new) at `prefix`; nothing read when they are the same tree.
    fn trees(&mut self, prefix: &mut Vec<u8>, a: TreeId, b: TreeId) -> Result<(), RepoError> {
        if a == b {
            return Ok(());
        }
        let (ta, tb) = (self.read(a)?, self.read(b)?);
        let (mut i, mut j) = (0, 0);
        while i < ta.entries.len() || j < tb.entries.len() {
            let order = match (ta.entries.get(i), tb.entries.get(j)) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    let e = &ta.entries[i];
                    let len = join(prefix, &e.name);
                    self.one_side(prefix, e, Change::Removed)?;
                    prefix.truncate(len);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let e = &tb.entries[j];
                    let len = join(prefix, &e.name);
                    self.one_side(prefix, e, Change::Added)?;
                    prefix.truncate(len);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let len = join(prefix, &ta.entries[i].name);
                    self.entries(prefix, &ta.entries[i], &tb.entries[j])?;
                    prefix.truncate(len);
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    /// The same name in both snapshots.
    fn entries(&mut self, path: &mut Vec<u8>, a: &Entry, b: &Entry) -> Result<(), RepoError> {
        if a.kind != b.kind {
            // A file that became a folder (or a link): one thing went, another came.
            self.one_side(path, a, Change::Removed)?;
            return self.one_side(path, b, Change::Added);
        }
        if a.kind == EntryKind::Dir {
            if !same_metadata(a, b) {
                self.push(path, Change::Metadata, Some(a), Some(b));
            }
            if let (Some(ta), Some(tb)) = (a.subtree(), b.subtree()) {
                self.trees(path, ta, tb)?;
            }
        } else if !same_content(a, b) {
            self.push(path, Change::Content, Some(a), Some(b));
        } else if !same_metadata(a, b) {
            self.push(path, Change::Metadata, Some(a), Some(b));
        }
        Ok(())
    }

    /// An entry only one snapshot has, with everything below it when it is a folder.
    fn one_side(&mut self, path: &mut Vec<u8>, e: &Entry, change: Change) -> Result<(), RepoError> {
        match change {
            Change::Removed => self.push(path, change, Some(e), None),
            _ => self.push(path, change, None, Some(e)),
        }
        if let Some(sub) = e.subtree() {
            for child in self.read(sub)?.entries {
                let len = join(path, &child.name);
                self.one_side(path, &child, change)?;
                path.truncate(len);
            }
        }
        Ok(())
    }
}
