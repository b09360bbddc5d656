//! An in-memory `SnapshotSource`, filled from local directories: lets the mount be tested (and
//! tried) with real kernel round-trips without a store. Verifies hashes like a real store, so
//! damage can be simulated.

use super::source::{SnapshotSource, SourceError};
use crate::id::{ChunkId, Digest, SnapshotId, TreeId};
use crate::model::{
    ChunkRef, Content, Entry, EntryKind, Manifest, Snapshot, Timestamp, Tree, Xattr,
};
use crate::pages::{FolderBuilder, TreeBlob};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Default)]
pub struct MemSource {
    inner: Mutex<Inner>,
    tree_reads: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Inner {
    snapshots: Vec<Snapshot>,
    trees: HashMap<TreeId, TreeBlob>,
    chunks: HashMap<ChunkId, Vec<u8>>,
    changed: bool,
}

impl MemSource {
    pub fn new() -> MemSource {
        MemSource::default()
    }

    pub fn put_chunk(&self, data: Vec<u8>) -> ChunkId {
        let id = ChunkId::of(&data);
        self.inner.lock().chunks.insert(id, data);
        id
    }

    /// Replaces a chunk's bytes without changing its id: reads must then fail, not lie.
    pub fn corrupt_chunk(&self, id: ChunkId) {
        if let Some(c) = self.inner.lock().chunks.get_mut(&id) {
            c.push(0xff);
        }
    }

    /// How many trees were read (what the mount's caches and read-ahead save).
    pub fn tree_reads(&self) -> u64 {
        self.tree_reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn put_tree(&self, tree: Tree) -> TreeId {
        let id = Tree::id_of(&tree.encode());
        self.inner.lock().trees.insert(id, TreeBlob::Flat(tree));
        id
    }

    /// A folder as backup stores it: one tree, or pages behind a tree index when big.
    pub fn put_folder(&self, entries: Vec<Entry>) -> TreeId {
        let mut b = FolderBuilder::new();
        let mut emit = |bytes: Vec<u8>| -> Result<TreeId, crate::codec::DecodeError> {
            let id = Tree::id_of(&bytes);
            let blob = TreeBlob::decode(&bytes)?;
            self.inner.lock().trees.insert(id, blob);
            Ok(id)
        };
        let mut sorted = entries;
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for e in sorted {
            if b.push(e, &mut emit).is_err() {
                break;
            }
        }
        b.finish(&mut emit).unwrap_or(TreeId(Digest([0; 32])))
    }

    pub fn add_snapshot(
        &self,
        host: &str,
        part: &str,
        started_ns: i64,
        root: TreeId,
        complete: bool,
    ) -> Snapshot {
        let manifest = Manifest {
            root: root.to_hex(),
            ..Manifest::empty(host, part, started_ns, complete)
        };
        let id = SnapshotId(Digest::of(
            format!("{host}\0{part}\0{started_ns}\0{root}").as_bytes(),
        ));
        let snap = Snapshot { id, root, manifest };
        let mut g = self.inner.lock();
        g.snapshots.push(snap.clone());
        g.changed = true;
        snap
    }

    pub fn forget(&self, id: SnapshotId) {
        let mut g = self.inner.lock();
        g.snapshots.retain(|s| s.id != id);
        g.changed = true;
    }

    /// Records `dir` like a backup would (fixed-size chunks of `chunk_size` bytes) and adds a
    /// complete snapshot of it.
    pub fn add_dir(
        &self,
        host: &str,
        part: &str,
        started_ns: i64,
        dir: &Path,
        chunk_size: usize,
    ) -> io::Result<Snapshot> {
        let root = self.record_dir(dir, chunk_size.max(1))?;
        Ok(self.add_snapshot(host, part, started_ns, root, true))
    }

    fn record_dir(&self, dir: &Path, chunk_size: usize) -> io::Result<TreeId> {
        let mut entries = Vec::new();
        for item in std::fs::read_dir(dir)? {
            let item = item?;
            let path = item.path();
            let md = std::fs::symlink_metadata(&path)?;
            let kind = EntryKind::from_mode(md.mode()).ok_or_else(|| {
                io::Error::other(format!("{}: unknown file type", path.display()))
            })?;
            let content = match kind {
                EntryKind::Dir => Content::Tree(self.record_dir(&path, chunk_size)?),
                EntryKind::File => Content::Chunks(
                    std::fs::read(&path)?
                        .chunks(chunk_size)
                        .map(|c| ChunkRef {
                            id: self.put_chunk(c.to_vec()),
                            len: c.len() as u32,
                        })
                        .collect(),
                ),
                _ => Content::None,
            };
            let target = match kind {
                EntryKind::Symlink => std::fs::read_link(&path)?.as_os_str().as_bytes().to_vec(),
                _ => Vec::new(),
            };
            entries.push(Entry {
                name: item.file_name().as_bytes().to_vec(),
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                size: md.size(),
                mtime: Timestamp {
                    sec: md.mtime(),
                    nsec: md.mtime_nsec() as u32,
                },
                ctime: Timestamp {
                    sec: md.ctime(),
                    nsec: md.ctime_nsec() as u32,
                },
                ino: md.ino(),
                dev: 0,
                nlink: md.nlink() as u32,
                blocks: (kind == EntryKind::File).then(|| md.blocks()),
                flags: 0,
                rdev: md.rdev(),
                target,
                xattrs: read_xattrs(&path)?,
                content,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(self.put_tree(Tree { entries }))
    }
}

/// Extended attributes of `path` itself (not a symlink's target).
pub fn read_xattrs(path: &Path) -> io::Result<Vec<Xattr>> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a NULL buffer of size 0 asks for the size only.
    let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENOTSUP) {
            Ok(vec![])
        } else {
            Err(e)
        };
    }
    let mut names = vec![0u8; n as usize];
    // SAFETY: the buffer is valid for `names.len()` bytes.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name)?;
        let mut value = vec![0u8; 65536];
        // SAFETY: both buffers are valid for the sizes given.
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        value.truncate(len as usize);
        out.push(Xattr {
            name: name.to_vec(),
            value,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

impl SnapshotSource for MemSource {
    fn snapshots(&self) -> Result<Vec<Snapshot>, SourceError> {
        Ok(self.inner.lock().snapshots.clone())
    }

    fn refresh(&self) -> Result<bool, SourceError> {
        Ok(std::mem::take(&mut self.inner.lock().changed))
    }

    fn read_tree_blob(&self, id: TreeId) -> Result<TreeBlob, SourceError> {
        self.tree_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let g = self.inner.lock();
        let t = g
            .trees
            .get(&id)
            .ok_or_else(|| SourceError::Damaged(format!("tree {id} missing")))?;
        Ok(t.clone())
    }

    fn read_chunk(&self, id: ChunkId) -> Result<Vec<u8>, SourceError> {
        let g = self.inner.lock();
        let c = g
            .chunks
            .get(&id)
            .ok_or_else(|| SourceError::Damaged(format!("chunk {id} missing")))?;
        if ChunkId::of(c) != id {
            return Err(SourceError::Damaged(format!(
                "chunk {id} fails its hash check"
            )));
        }
        Ok(c.clone())
    }
}
