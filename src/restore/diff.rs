//! What changed between two snapshots (`bmbackup diff`): entries added, removed, changed in
//! content or only in metadata, with sizes, answered from trees alone. Folders whose tree id is
//! the same in both snapshots are skipped without being read, so comparing two snapshots of a
//! mostly unchanged part reads only the trees on the paths to what changed.

use super::ls::{components, node_at, Node};
use crate::id::TreeId;
use crate::model::{Entry, EntryKind, Snapshot, Tree};
use crate::pages::TreeBlob;
use crate::repo::folder::Folder;
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
    let mut look = |id, name: &[u8]| d.lookup(id, name);
    let a = node_at(&mut look, old.root, &comps)?;
    let b = node_at(&mut look, new.root, &comps)?;
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
    fn folder(&self, id: TreeId) -> Result<Folder, RepoError> {
        self.trees_read.set(self.trees_read.get() + 1);
        self.repo.read_folder(id)
    }

    fn page(&self, f: &Folder, i: usize) -> Result<Tree, RepoError> {
        if let TreeBlob::Index(_) = f.blob {
            self.trees_read.set(self.trees_read.get() + 1);
        }
        Ok(f.page(self.repo, i)?.into_owned())
    }

    fn lookup(&self, id: TreeId, name: &[u8]) -> Result<Option<Entry>, RepoError> {
        let f = self.folder(id)?;
        if let TreeBlob::Index(_) = f.blob {
            self.trees_read.set(self.trees_read.get() + 1);
        }
        f.lookup(self.repo, name)
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
        let (fa, fb) = (self.folder(a)?, self.folder(b)?);
        let mut sa = Side::new(&fa);
        let mut sb = Side::new(&fb);
        loop {
            // Two paged folders: a page with the same id on both sides at the same place holds
            // the same entries, so it is skipped unread (page ends depend on names only, so
            // the pages after a change line up again).
            if let (Some(x), Some(y)) = (sa.next_page_id(), sb.next_page_id()) {
                if x == y {
                    sa.skip_page();
                    sb.skip_page();
                    continue;
                }
            }
            let x = sa.current(self)?;
            let y = sb.current(self)?;
            let order = match (&x, &y) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => break,
            };
            match (order, x, y) {
                (std::cmp::Ordering::Less, Some(e), _) => {
                    let len = join(prefix, &e.name);
                    self.one_side(prefix, &e, Change::Removed)?;
                    prefix.truncate(len);
                    sa.advance();
                }
                (std::cmp::Ordering::Greater, _, Some(e)) => {
                    let len = join(prefix, &e.name);
                    self.one_side(prefix, &e, Change::Added)?;
                    prefix.truncate(len);
                    sb.advance();
                }
                (_, Some(ea), Some(eb)) => {
                    let len = join(prefix, &ea.name);
                    self.entries(prefix, &ea, &eb)?;
                    prefix.truncate(len);
                    sa.advance();
                    sb.advance();
                }
                _ => break,
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
            let f = self.folder(sub)?;
            for i in 0..f.page_count() {
                for child in self.page(&f, i)?.entries {
                    let len = join(path, &child.name);
                    self.one_side(path, &child, change)?;
                    path.truncate(len);
                }
            }
        }
        Ok(())
    }
}

/// One side of a folder comparison: the page being read and the position in it.
struct Side<'f> {
    folder: &'f Folder,
    page_no: usize,
    page: Option<Tree>,
    at: usize,
}

impl<'f> Side<'f> {
    fn new(folder: &'f Folder) -> Self {
        Side {
            folder,
            page_no: 0,
            page: None,
            at: 0,
        }
    }

    /// The id of the next page when no entry of it has been looked at yet (paged folders only).
    fn next_page_id(&self) -> Option<TreeId> {
        if self.page.is_some() {
            return None;
        }
        self.folder.page_refs().get(self.page_no).map(|p| p.id)
    }

    fn skip_page(&mut self) {
        self.page_no += 1;
    }

    /// The entry at the cursor, loading its page when needed.
    fn current(&mut self, d: &Differ<'_>) -> Result<Option<Entry>, RepoError> {
        loop {
            if self.page.is_none() {
                if self.page_no >= self.folder.page_count() {
                    return Ok(None);
                }
                self.page = Some(d.page(self.folder, self.page_no)?);
                self.at = 0;
            }
            if let Some(e) = self.page.as_ref().and_then(|p| p.entries.get(self.at)) {
                return Ok(Some(e.clone()));
            }
            self.page = None;
            self.page_no += 1;
        }
    }

    /// Moves past the current entry; past a page's last one, the next page is not loaded yet,
    /// so that it can be skipped when both sides have it.
    fn advance(&mut self) {
        self.at += 1;
        if self
            .page
            .as_ref()
            .is_some_and(|p| self.at >= p.entries.len())
        {
            self.page = None;
            self.page_no += 1;
        }
    }
}
