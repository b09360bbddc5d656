//! The time-travel filesystem as a plain Rust type: resolves names, attributes, directory
//! listings, symlinks, xattrs and file reads over a `SnapshotSource`. Knows nothing of FUSE;
//! `crate::fuse` adapts it to the kernel, and tests drive it directly.
//!
//! # Design
//!
//! * **Layout** (`layout.rs`): `HOST/PART…/DATE/` per snapshot and `HOST/PART…/last/` for the
//!   newest complete one, built from the snapshot list alone. Mounting reads no tree, so it
//!   takes milliseconds whatever the store size. A refresh thread re-lists every 2 s and swaps
//!   the layout when the set of snapshot ids changed.
//! * **Identity** (`inode.rs`): a node is (snapshot, view, path) — view is the date folder or
//!   `last` — and its inode number is a hash of that, so it is the same on every mount; hard
//!   links hash (snapshot, view, source inode + what links share) instead, so they share one
//!   inode. fuser 0.18 uses `st_ino` as the FUSE node id too. A node resolved through `last`
//!   keeps showing its snapshot after `last` moves on, so a process whose cwd or open files are
//!   inside it reads one consistent snapshot; only the name `last` is re-resolved (1 s TTL).
//!   A path that goes through `last` again (`cp -a …/last /dst` from outside) may cross over.
//! * **Node table**: only nodes the kernel holds (lookup counts, honouring FORGET), so memory
//!   follows the kernel's inode cache, not the store.
//! * **Caches** (`reader.rs`): decoded trees and chunks in byte-bounded LRUs (the newest entry
//!   stays even if alone over budget: huge mail folders); concurrent misses of one object load
//!   it once. Reads come by inode, with no open handle (the kernel's "no open" mode sends no
//!   open or release), and map offsets to chunks with prefix sums computed at a file's first
//!   read and kept, with its chunk list, in a small LRU of the files being read (a node keeps
//!   only attributes and where its entry is, as the kernel may hold a million of them).
//!   Listing a snapshot folder queues its uncached subfolders for a read-ahead thread
//!   (`prefetch.rs`, at most 256 per folder), so a recursive walk finds their trees decoded.
//! * **TTLs**: 1 s for host/part folders and `last`; 1 day for anything inside a snapshot
//!   (never changes), with the page cache and directory listings kept across opens.
//! * **Errors**: damage (missing object, bad hash, wrong length) is an error naming the snapshot
//!   path, which the adapter turns into EIO and logs; never wrong bytes, never ENOENT.

pub mod inode;
pub mod layout;
pub mod memsource;
pub mod prefetch;
pub mod reader;
mod refresh;
pub mod source;

use crate::id::{ChunkId, TreeId};
use crate::model::{ChunkRef, Entry, EntryKind, Timestamp, Tree, Xattr};
use crate::pages::{TreeBlob, TreeIndex};
use inode::{snap_child, synth_child, Node, NodeKind, NodeTable, Place, SnapNode};
use layout::Layout;
use parking_lot::RwLock;
use reader::{chunk_ends, pieces, ByteLru};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use refresh::Refresher;
pub use source::{SnapshotSource, SourceError};

/// Why an operation failed. The FUSE adapter turns each kind into its errno.
#[derive(Debug, thiserror::Error)]
pub enum VfsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("not a symbolic link")]
    NotSymlink,
    #[error("not a regular file")]
    NotFile,
    #[error("no such extended attribute")]
    NoXattr,
    #[error("inode {0} is not known (forgotten or never looked up)")]
    StaleInode(u64),
    #[error("{path}: {source}")]
    Source { path: String, source: SourceError },
    #[error("{path}: {detail}")]
    Damaged { path: String, detail: String },
    #[error("inode number collision on {0}")]
    Collision(u64),
}

/// Attributes of one node, as `stat` will show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky.
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// 512-byte blocks.
    pub blocks: u64,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub rdev: u64,
}

/// A resolved node and how long the kernel may cache its name and its attributes.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub attr: Attr,
    pub entry_ttl: Duration,
    pub attr_ttl: Duration,
}

/// One directory listing entry; `next` is the offset to continue after it.
#[derive(Debug)]
pub struct DirItem {
    pub name: Vec<u8>,
    pub next: u64,
    pub answer: Answer,
}

#[derive(Clone, Debug)]
pub struct VfsConfig {
    pub chunk_cache_bytes: usize,
    pub tree_cache_bytes: usize,
    /// For host/part folders and `last`, which change when backups come and go.
    pub live_ttl: Duration,
    /// For everything inside a snapshot, which never changes.
    pub frozen_ttl: Duration,
}

impl Default for VfsConfig {
    fn default() -> Self {
        VfsConfig {
            chunk_cache_bytes: 256 << 20,
            tree_cache_bytes: 64 << 20,
            live_ttl: Duration::from_secs(1),
            frozen_ttl: Duration::from_secs(86_400),
        }
    }
}

/// How many calls of each kind reached the `Vfs`: what tests and diagnostics use to see that
/// the kernel's caches work (a warm read sends nothing, a listing needs no extra lookups).
#[derive(Debug, Default)]
pub struct OpCounts {
    pub lookups: AtomicU64,
    pub readdirs: AtomicU64,
    pub opens: AtomicU64,
    pub reads: AtomicU64,
}

impl OpCounts {
    /// (lookups, readdirs, opens, reads) now.
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (
            n(&self.lookups),
            n(&self.readdirs),
            n(&self.opens),
            n(&self.reads),
        )
    }
}

fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Chunk lists kept for files being read: ~2,000 files of 100 chunks.
const FILE_CACHE_BYTES: usize = 4 << 20;

/// A regular file's chunks and where each ends (prefix sums, for `pieces`).
struct FileView {
    chunks: Vec<ChunkRef>,
    ends: Vec<u64>,
}

pub struct Vfs {
    source: Arc<dyn SnapshotSource>,
    layout: RwLock<Arc<Layout>>,
    nodes: NodeTable,
    /// Decoded tree blobs: folders, pages of paged folders and their indexes.
    trees: Arc<ByteLru<TreeId, TreeBlob>>,
    /// Loads the subfolders of a listed snapshot folder (None if its thread could not start).
    ahead: Option<prefetch::Prefetcher>,
    chunks: ByteLru<ChunkId, Vec<u8>>,
    /// The chunk lists of files being read, by (ino, check).
    files: ByteLru<(u64, u64), FileView>,
    cfg: VfsConfig,
    /// Shown as the time of the synthetic folders.
    born: Timestamp,
    pub ops: OpCounts,
}

impl Vfs {
    /// Lists the snapshots (no tree is read, so this is fast for any store size).
    pub fn new(source: Arc<dyn SnapshotSource>, cfg: VfsConfig) -> Result<Vfs, SourceError> {
        // Start from the store's current state, not a stale catalog.
        source.refresh()?;
        let layout = Layout::build(&source.snapshots()?);
        let trees = Arc::new(ByteLru::new(cfg.tree_cache_bytes));
        let ahead = {
            let (source, trees) = (source.clone(), trees.clone());
            prefetch::Prefetcher::spawn(move |id| {
                let _ = load_tree(&trees, id, || {
                    source
                        .read_tree_blob(id)
                        .map_err(|e| log::debug!("read-ahead of tree {id}: {e}"))
                });
            })
        }
        .map_err(|e| log::warn!("mount: no read-ahead of folders: {e}"))
        .ok();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Vfs {
            source,
            layout: RwLock::new(Arc::new(layout)),
            nodes: NodeTable::new(),
            trees,
            ahead,
            chunks: ByteLru::new(cfg.chunk_cache_bytes),
            files: ByteLru::new(FILE_CACHE_BYTES),
            born: Timestamp {
                sec: now.as_secs() as i64,
                nsec: now.subsec_nanos(),
            },
            cfg,
            ops: OpCounts::default(),
        })
    }

    /// Nodes currently referenced by the kernel (for tests and diagnostics).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn node(&self, ino: u64) -> Result<Arc<Node>, VfsError> {
        self.nodes.get(ino).ok_or(VfsError::StaleInode(ino))
    }

    fn live(&self, attr: Attr) -> Answer {
        Answer {
            attr,
            entry_ttl: self.cfg.live_ttl,
            attr_ttl: self.cfg.live_ttl,
        }
    }

    fn answer(&self, node: &Node, in_live_dir: bool) -> Answer {
        match &node.kind {
            NodeKind::Synth { path } => self.live(self.synth_attr(node.ino, path)),
            NodeKind::Snap(s) => Answer {
                attr: s.stat.attr(node.ino),
                entry_ttl: if in_live_dir {
                    self.cfg.live_ttl
                } else {
                    self.cfg.frozen_ttl
                },
                attr_ttl: self.cfg.frozen_ttl,
            },
        }
    }

    /// A host or part folder: every child is a folder (so nlink counts them, as find's leaf
    /// optimisation expects), and its time is the newest snapshot's below it, which stays the
    /// same across remounts (backup software compares times). Only an empty store's root shows
    /// the mount's own time.
    fn synth_attr(&self, ino: u64, path: &[String]) -> Attr {
        let layout = self.layout.read().clone();
        let children = layout.dir(path).map_or(0, |d| d.len());
        let time = layout.newest_ns(path).map_or(self.born, inode::timestamp);
        Attr {
            ino,
            kind: EntryKind::Dir,
            perm: 0o555,
            nlink: 2 + u32::try_from(children).unwrap_or(u32::MAX - 2),
            uid: 0,
            gid: 0,
            size: 0,
            blocks: 0,
            mtime: time,
            ctime: time,
            rdev: 0,
        }
    }

    /// A snapshot root counts its subfolders in `st_nlink` like any folder (its tree is
    /// read for that, only when the kernel gets its attributes). A root whose tree cannot be
    /// read keeps 2: the listing of its part folder must not fail for it, and opening it
    /// reports the damage.
    fn with_root_nlink(&self, mut node: Node) -> Node {
        if let NodeKind::Snap(s) = &mut node.kind {
            if s.path.is_empty() {
                match self.count_subfolders(s) {
                    Ok(dirs) => {
                        s.stat.nlink = 2 + u32::try_from(dirs).unwrap_or(u32::MAX - 2);
                    }
                    Err(e) => log::debug!("{}: no subfolder count: {e}", s.display()),
                }
            }
        }
        node
    }

    /// Bytes the store holds, for `df`: the mount is read-only, so all of it is in use.
    pub fn stored_bytes(&self) -> u64 {
        self.source.stored_bytes()
    }

    /// Counts one kernel reference to `node` and returns the node the table keeps.
    fn remember(&self, node: Node) -> Result<Arc<Node>, VfsError> {
        self.nodes.remember(node).map_err(|c| {
            log::error!("mount: inode number collision on {}", c.0);
            VfsError::Collision(c.0)
        })
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Answer, VfsError> {
        count(&self.ops.lookups);
        let p = self.node(parent)?;
        let (node, in_live_dir) = match &p.kind {
            NodeKind::Synth { path } => {
                let layout = self.layout.read().clone();
                let dir = layout.dir(path).ok_or(VfsError::NotFound)?;
                let name = std::str::from_utf8(name).map_err(|_| VfsError::NotFound)?;
                let child = dir.get(name).ok_or(VfsError::NotFound)?;
                (
                    self.with_root_nlink(synth_child(parent, path, name, child)),
                    true,
                )
            }
            NodeKind::Snap(s) => {
                let (folder_id, folder) = self.folder(s)?;
                let (page, start) = match &*folder {
                    TreeBlob::Flat(_) => (folder.clone(), 0),
                    TreeBlob::Index(ix) => {
                        let i = ix.page_for(name).ok_or(VfsError::NotFound)?;
                        (self.page(s, ix, i)?, ix.start(i))
                    }
                };
                let TreeBlob::Flat(tree) = &*page else {
                    return Err(VfsError::NotFound);
                };
                let i = tree
                    .entries
                    .binary_search_by(|e| e.name.as_slice().cmp(name))
                    .map_err(|_| VfsError::NotFound)?;
                let child =
                    self.snap_child(parent, s, folder_id, start + i as u64, &tree.entries[i])?;
                (child, false)
            }
        };
        let node = self.remember(node)?;
        Ok(self.answer(&node, in_live_dir))
    }

    pub fn forget(&self, ino: u64, n: u64) {
        self.nodes.forget(ino, n);
    }

    pub fn getattr(&self, ino: u64) -> Result<Answer, VfsError> {
        let node = self.node(ino)?;
        Ok(self.answer(&node, false))
    }

    /// Lists `ino` from `offset` on. `add` returns true when its buffer is full (that item is
    /// then not taken). With `plus`, every taken item except `.`/`..` counts as a kernel lookup.
    pub fn readdir(
        &self,
        ino: u64,
        offset: u64,
        plus: bool,
        mut add: impl FnMut(&DirItem) -> bool,
    ) -> Result<(), VfsError> {
        count(&self.ops.readdirs);
        let node = self.node(ino)?;
        let me = self.answer(&node, false);
        let mut parent = me;
        parent.attr.ino = node.parent;
        let dots = [(b".".to_vec(), me), (b"..".to_vec(), parent)];
        for (i, (name, answer)) in dots.into_iter().enumerate().skip(offset as usize) {
            if add(&DirItem {
                name,
                next: i as u64 + 1,
                answer,
            }) {
                return Ok(());
            }
        }
        let skip = offset.saturating_sub(2) as usize;
        // Children are built one at a time: a node is remembered only if the kernel gets it.
        let mut emit =
            |i: usize, child: Node, in_live_dir: bool, name: &[u8]| -> Result<bool, VfsError> {
                let answer = self.answer(&child, in_live_dir);
                let item = DirItem {
                    name: name.to_vec(),
                    next: i as u64 + 3,
                    answer,
                };
                let ino = child.ino;
                if plus {
                    self.remember(child)?;
                }
                let full = add(&item);
                if full && plus {
                    self.nodes.forget(ino, 1);
                }
                Ok(full)
            };
        match &node.kind {
            NodeKind::Synth { path } => {
                let layout = self.layout.read().clone();
                let Some(dir) = layout.dir(path) else {
                    return Ok(());
                };
                for (i, (name, child)) in dir.iter().enumerate().skip(skip) {
                    let mut child = synth_child(ino, path, name, child);
                    if plus {
                        child = self.with_root_nlink(child);
                    }
                    if emit(i, child, true, name.as_bytes())? {
                        break;
                    }
                }
            }
            NodeKind::Snap(s) => {
                // Offsets are positions in name order, so a paged folder resumes in the page
                // that holds the position, and only the pages listed are read.
                let (folder_id, folder) = self.folder(s)?;
                let (mut page_no, mut pos) = match &*folder {
                    TreeBlob::Flat(_) => (0, skip),
                    TreeBlob::Index(ix) => match ix.page_at(skip as u64) {
                        Some(i) => (i, skip),
                        None => return Ok(()),
                    },
                };
                loop {
                    let (page, start) = match &*folder {
                        TreeBlob::Flat(_) => (folder.clone(), 0),
                        TreeBlob::Index(ix) if page_no < ix.pages().len() => {
                            (self.page(s, ix, page_no)?, ix.start(page_no) as usize)
                        }
                        TreeBlob::Index(_) => break,
                    };
                    let TreeBlob::Flat(tree) = &*page else {
                        break;
                    };
                    let first_look = match &*folder {
                        TreeBlob::Flat(_) => offset == 0,
                        TreeBlob::Index(_) => pos == start,
                    };
                    if first_look {
                        self.read_ahead(tree);
                    }
                    for e in tree.entries.iter().skip(pos - start) {
                        let child = self.snap_child(ino, s, folder_id, pos as u64, e)?;
                        if emit(pos, child, false, &e.name)? {
                            return Ok(());
                        }
                        pos += 1;
                    }
                    if matches!(&*folder, TreeBlob::Flat(_)) {
                        break;
                    }
                    page_no += 1;
                }
            }
        }
        Ok(())
    }

    /// Asks for the subfolders of a folder being listed that are not cached yet: a recursive
    /// walk comes for them next.
    fn read_ahead(&self, tree: &Tree) {
        let Some(ahead) = &self.ahead else {
            return;
        };
        let ids: Vec<TreeId> = tree
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Dir)
            .filter_map(Entry::subtree)
            .filter(|id| !self.trees.contains(id))
            .take(prefetch::MAX_AHEAD)
            .collect();
        ahead.ask(ids);
    }

    /// Checks `ino` is a folder; true if its listing can never change (inside a snapshot).
    pub fn opendir(&self, ino: u64) -> Result<bool, VfsError> {
        match &self.node(ino)?.kind {
            NodeKind::Synth { .. } => Ok(false),
            NodeKind::Snap(s) if s.stat.kind == EntryKind::Dir => Ok(true),
            NodeKind::Snap(_) => Err(VfsError::NotDir),
        }
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>, VfsError> {
        match &self.node(ino)?.kind {
            NodeKind::Snap(s) if s.stat.kind == EntryKind::Symlink => {
                self.with_entry(s, |e| e.target.clone())
            }
            _ => Err(VfsError::NotSymlink),
        }
    }

    /// Checks `ino` is a regular file whose chunks add up to its size. Opening keeps no state:
    /// reads come by inode (the kernel's "no open" mode sends neither open nor release).
    pub fn open(&self, ino: u64) -> Result<(), VfsError> {
        count(&self.ops.opens);
        let node = self.node(ino)?;
        self.with_file(&node, |_, _| ())
    }

    /// `lseek` with `SEEK_DATA` (`hole` false) or `SEEK_HOLE`: see [`reader::seek_hole_or_data`].
    pub fn seek_hole_or_data(
        &self,
        ino: u64,
        offset: u64,
        hole: bool,
    ) -> Result<Option<u64>, VfsError> {
        let node = self.node(ino)?;
        self.with_file(&node, |chunks, ends| {
            reader::seek_hole_or_data(chunks, ends, offset, hole)
        })
    }

    /// Up to `size` bytes at `offset` of file `ino`; short only at end of file. Damage is an
    /// error, never wrong or missing bytes.
    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, VfsError> {
        count(&self.ops.reads);
        let node = self.node(ino)?;
        let NodeKind::Snap(s) = &node.kind else {
            return Err(VfsError::IsDir);
        };
        self.with_file(&node, |refs, ends| {
            let mut out = Vec::with_capacity(size as usize);
            for p in pieces(ends, offset, u64::from(size)) {
                let chunk = self.chunk(s, &refs[p.index])?;
                out.extend_from_slice(&chunk[p.start..p.end]);
            }
            Ok(out)
        })?
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>, VfsError> {
        match &self.node(ino)?.kind {
            NodeKind::Snap(s) if s.stat.has_xattrs => self
                .with_xattrs(s, |xs| {
                    xs.iter().find(|x| x.name == name).map(|x| x.value.clone())
                })?
                .ok_or(VfsError::NoXattr),
            _ => Err(VfsError::NoXattr),
        }
    }

    /// The xattr names, each followed by a NUL, as `listxattr(2)` returns them.
    pub fn listxattr(&self, ino: u64) -> Result<Vec<u8>, VfsError> {
        let mut out = Vec::new();
        if let NodeKind::Snap(s) = &self.node(ino)?.kind {
            if s.stat.has_xattrs {
                self.with_xattrs(s, |xs| {
                    for x in xs {
                        out.extend_from_slice(&x.name);
                        out.push(0);
                    }
                })?;
            }
        }
        Ok(out)
    }

    /// Subfolders of a folder (of every page when it is paged).
    fn count_subfolders(&self, s: &SnapNode) -> Result<usize, VfsError> {
        let (_, folder) = self.folder(s)?;
        let dirs = |t: &Tree| {
            t.entries
                .iter()
                .filter(|e| e.kind == EntryKind::Dir)
                .count()
        };
        match &*folder {
            TreeBlob::Flat(t) => Ok(dirs(t)),
            TreeBlob::Index(ix) => {
                let mut n = 0;
                for i in 0..ix.pages().len() {
                    if let TreeBlob::Flat(t) = &*self.page(s, ix, i)? {
                        n += dirs(t);
                    }
                }
                Ok(n)
            }
        }
    }

    /// A folder's top blob (the whole folder, or the index of its pages) and its id.
    fn folder(&self, s: &SnapNode) -> Result<(TreeId, Arc<TreeBlob>), VfsError> {
        match (s.stat.kind, &s.place) {
            (EntryKind::Dir, Place::Folder(id, _)) => Ok((*id, self.blob(s, *id)?)),
            (EntryKind::Dir, _) => Err(VfsError::Damaged {
                path: s.display(),
                detail: "directory without a tree".into(),
            }),
            _ => Err(VfsError::NotDir),
        }
    }

    /// A child's node (see [`inode::snap_child`]).
    fn snap_child(
        &self,
        parent: u64,
        s: &SnapNode,
        folder: TreeId,
        pos: u64,
        e: &Entry,
    ) -> Result<Node, VfsError> {
        snap_child(parent, s, folder, pos, e).ok_or_else(|| VfsError::Damaged {
            path: s.display(),
            detail: format!("folder of over {} entries", u32::MAX),
        })
    }

    /// Calls `f` with the node's entry, re-read from its folder (a folder's own entry is not
    /// kept: only its attributes and tree are needed).
    fn with_entry<R>(&self, s: &SnapNode, f: impl FnOnce(&Entry) -> R) -> Result<R, VfsError> {
        let Place::Entry { folder, pos } = s.place else {
            return Err(VfsError::IsDir);
        };
        let pos = u64::from(pos);
        let blob = self.blob(s, folder)?;
        let (page, start) = match &*blob {
            TreeBlob::Flat(_) => (blob.clone(), 0),
            TreeBlob::Index(ix) => {
                let i = ix.page_at(pos).ok_or_else(|| VfsError::Damaged {
                    path: s.display(),
                    detail: format!("no entry at position {pos} of its folder"),
                })?;
                (self.page(s, ix, i)?, ix.start(i))
            }
        };
        let entry = match &*page {
            TreeBlob::Flat(t) => t.entries.get((pos - start) as usize),
            TreeBlob::Index(_) => None,
        };
        entry.map(f).ok_or_else(|| VfsError::Damaged {
            path: s.display(),
            detail: format!("no entry at position {pos} of its folder"),
        })
    }

    /// Calls `f` with the node's xattrs: a folder keeps its own, others are re-read.
    fn with_xattrs<R>(&self, s: &SnapNode, f: impl FnOnce(&[Xattr]) -> R) -> Result<R, VfsError> {
        match &s.place {
            Place::Folder(_, xattrs) => Ok(f(xattrs.as_deref().map_or(&[], |x| x.as_slice()))),
            Place::Entry { .. } => self.with_entry(s, |e| f(&e.xattrs)),
        }
    }

    /// Calls `f` with a regular file's chunks and where they end, checked against its size so
    /// that a damaged entry is an error rather than a short file. Kept for the files being
    /// read (`files`): a node does not keep its chunk list, and a 128 KiB read should not
    /// re-find its entry in the folder's tree each time.
    fn with_file<R>(
        &self,
        node: &Node,
        f: impl FnOnce(&[ChunkRef], &[u64]) -> R,
    ) -> Result<R, VfsError> {
        let NodeKind::Snap(s) = &node.kind else {
            return Err(VfsError::IsDir);
        };
        match s.stat.kind {
            EntryKind::File => {}
            EntryKind::Dir => return Err(VfsError::IsDir),
            _ => return Err(VfsError::NotFile),
        }
        // (ino, check) names the node, not just its inode number, which a forgotten node's
        // successor may reuse.
        let key = (node.ino, node.check);
        if let Some(file) = self.files.get(&key) {
            return Ok(f(&file.chunks, &file.ends));
        }
        let file = self.with_entry(s, |e| {
            let ends = chunk_ends(e.chunks());
            let total = ends.last().copied().unwrap_or(0);
            if total != e.size {
                return Err(VfsError::Damaged {
                    path: s.display(),
                    detail: format!("chunks hold {total} bytes but the file has {}", e.size),
                });
            }
            Ok(FileView {
                chunks: e.chunks().to_vec(),
                ends,
            })
        })??;
        let weight = file.chunks.len() * (std::mem::size_of::<ChunkRef>() + 8) + 64;
        let file = Arc::new(file);
        self.files.insert(key, file.clone(), weight);
        Ok(f(&file.chunks, &file.ends))
    }

    fn blob(&self, s: &SnapNode, id: TreeId) -> Result<Arc<TreeBlob>, VfsError> {
        load_tree(&self.trees, id, || {
            self.source
                .read_tree_blob(id)
                .map_err(|source| VfsError::Source {
                    path: s.display(),
                    source,
                })
        })
    }

    /// Page `i` of a paged folder, checked against the index at every use (a page cached
    /// for one index may be listed by another, forged one).
    fn page(&self, s: &SnapNode, ix: &TreeIndex, i: usize) -> Result<Arc<TreeBlob>, VfsError> {
        let damaged = |detail: String| VfsError::Damaged {
            path: s.display(),
            detail,
        };
        let id = ix
            .pages()
            .get(i)
            .ok_or_else(|| damaged(format!("no page {i}")))?
            .id;
        let page = self.blob(s, id)?;
        match &*page {
            TreeBlob::Index(_) => Err(damaged(format!("page {i} is itself a tree index"))),
            TreeBlob::Flat(t) => match ix.check_page(i, t) {
                Ok(()) => Ok(page),
                Err(e) => Err(damaged(format!("page {i}: {e}"))),
            },
        }
    }

    fn chunk(&self, s: &SnapNode, r: &ChunkRef) -> Result<Arc<Vec<u8>>, VfsError> {
        let data = self.chunks.get_or_load(&r.id, r.id.0 .0[0], || {
            let data = self
                .source
                .read_chunk(r.id)
                .map_err(|source| VfsError::Source {
                    path: s.display(),
                    source,
                })?;
            let len = data.len();
            Ok((data, len))
        })?;
        // Checked at every use, not at load: another file's entry (from a damaged or hostile
        // tree) may give the cached chunk another length, and reads slice by that length.
        if data.len() != r.len as usize {
            return Err(VfsError::Damaged {
                path: s.display(),
                detail: format!(
                    "chunk {} has {} bytes, the file expects {}",
                    r.id,
                    data.len(),
                    r.len
                ),
            });
        }
        Ok(data)
    }
}

pub fn entry_attr(ino: u64, e: &Entry) -> Attr {
    let size = if e.kind == EntryKind::Symlink {
        e.target.len() as u64
    } else {
        e.size
    };
    Attr {
        ino,
        kind: e.kind,
        perm: (e.mode & 0o7777) as u16,
        nlink: e.nlink.max(1),
        uid: e.uid,
        gid: e.gid,
        size,
        // What the file had allocated at backup time, so `du` matches the source and `cp`
        // keeps holes; snapshots before format 1.2 did not record it.
        blocks: e.blocks.unwrap_or_else(|| size.div_ceil(512)),
        mtime: e.mtime,
        ctime: e.ctime,
        rdev: e.rdev,
    }
}

/// A tree blob from the cache, or `read`'s, cached with its weight.
fn load_tree<E>(
    trees: &ByteLru<TreeId, TreeBlob>,
    id: TreeId,
    read: impl FnOnce() -> Result<TreeBlob, E>,
) -> Result<Arc<TreeBlob>, E> {
    trees.get_or_load(&id, id.0 .0[0], || {
        let blob = read()?;
        let weight = blob.weight();
        Ok((blob, weight))
    })
}

#[cfg(test)]
mod tests;
