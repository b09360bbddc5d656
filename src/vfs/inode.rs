//! Node identity and the node table: stable inode numbers hashed from what a node *is*
//! (snapshot + path, or snapshot + source inode for hard links), and the kernel's lookup counts
//! so that nodes the kernel forgot are dropped and memory does not grow with the store.

use super::layout::{Child, SnapInfo};
use crate::id::{SnapshotId, TreeId};
use crate::model::{Content, Entry, EntryKind, Timestamp, Xattr};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// The mount root. FUSE reserves 1 for it; hashes never produce 0 or 1.
pub const ROOT_INO: u64 = 1;

/// What a node is. Everything a handler needs is here, so a node keeps showing the snapshot it
/// was resolved in even after `last` moves on.
// Nodes sit behind an `Arc` each, so the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum NodeKind {
    /// A host / part folder (or the root), re-read from the live layout on every call.
    Synth { path: Vec<String> },
    /// Anything inside a snapshot, including its root.
    Snap(SnapNode),
}

/// What a node keeps of its entry: only what cannot be re-read cheaply. The kernel may hold an
/// inode for every entry of a 1,000,000-entry folder after `ls -l`, and a node lives as long as
/// its inode, so a node holds its attributes (answered without a tree read) and where its entry
/// is; chunks, symlink target and xattrs are re-read from the (bounded) tree cache when used.
#[derive(Debug)]
pub struct SnapNode {
    pub snap: Arc<SnapInfo>,
    /// Reached through `last` rather than the date folder: a different node, so the two
    /// views never alias one kernel inode.
    pub last: bool,
    /// Path inside the snapshot, without leading `/`; empty for the snapshot root. Sized
    /// exactly (a boxed slice has no spare capacity).
    pub path: Box<[u8]>,
    pub stat: Stat,
    pub place: Place,
}

/// The attributes `getattr` answers, from the entry as its folder's tree has it.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub kind: EntryKind,
    /// Answers "no xattr" without reading the tree, as `ls -l` asks two per entry.
    pub has_xattrs: bool,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub blocks: u64,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub rdev: u64,
}

impl Stat {
    pub fn of(e: &Entry) -> Stat {
        let a = super::entry_attr(0, e);
        Stat {
            kind: a.kind,
            has_xattrs: !e.xattrs.is_empty(),
            perm: a.perm,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            size: a.size,
            blocks: a.blocks,
            mtime: a.mtime,
            ctime: a.ctime,
            rdev: a.rdev,
        }
    }

    pub fn attr(&self, ino: u64) -> super::Attr {
        super::Attr {
            ino,
            kind: self.kind,
            perm: self.perm,
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            size: self.size,
            blocks: self.blocks,
            mtime: self.mtime,
            ctime: self.ctime,
            rdev: self.rdev,
        }
    }
}

/// Where a node's content is found.
#[derive(Debug, Clone)]
pub enum Place {
    /// A folder: its top blob (the whole folder, or the index of its pages), listed and looked
    /// up in often enough to keep, and its xattrs if it has any (folders are few).
    Folder(TreeId, Option<Box<Vec<Xattr>>>),
    /// Anything else: its entry is at position `pos` (in name order, over all pages) of the
    /// folder blob `folder`. Trees are content-addressed, so the position always finds the
    /// same entry.
    Entry { folder: TreeId, pos: u32 },
}

impl SnapNode {
    /// The mount path of this node for messages, e.g. `10.0.0.5/mail/2026-…/user/a/1.`.
    pub fn display(&self) -> String {
        if self.path.is_empty() {
            self.snap.display.clone()
        } else {
            format!(
                "{}/{}",
                self.snap.display,
                String::from_utf8_lossy(&self.path)
            )
        }
    }
}

#[derive(Debug)]
pub struct Node {
    /// Doubles as FUSE node id and `st_ino` (fuser 0.18 sends `FileAttr::ino` as both).
    pub ino: u64,
    pub parent: u64,
    /// More bits of the hash `ino` came from: two different nodes with one ino are caught,
    /// not mixed (2^-128 to miss one). The key itself (up to hundreds of bytes for a hard link)
    /// is not kept: the kernel may hold a node for every file of a snapshot.
    pub check: u64,
    pub kind: NodeKind,
}

/// Key prefix. Do not change: inode numbers must stay the same across versions and mounts
/// (NFS exports, `find -newer`, backup tools that remember inodes).
const KEY_V1: &[u8] = b"bmbackup-ino-v1\0";

pub fn synth_key(path: &[String]) -> Vec<u8> {
    let mut k = KEY_V1.to_vec();
    k.push(b'S');
    for c in path {
        k.extend_from_slice(c.as_bytes());
        k.push(0);
    }
    k
}

pub fn snap_key(snap: SnapshotId, last: bool, path: &[u8]) -> Vec<u8> {
    let mut k = KEY_V1.to_vec();
    k.push(if last { b'L' } else { b'D' });
    k.extend_from_slice(&snap.0 .0);
    k.extend_from_slice(path);
    k
}

/// All names of one hard-linked file share this key, hence one `st_ino`. Besides the source
/// inode it holds the part's filesystem index (`Entry::dev`, format 1.2) and what links to one
/// file must share (owner, mode, size, times, chunks), so two files from different filesystems
/// inside one part that happen to share an inode number stay apart: merging them would serve
/// one file's bytes under the other's name. (Snapshots before 1.2 recorded no device: there the
/// rest of the key is what keeps such files apart.)
pub fn hardlink_key(snap: SnapshotId, last: bool, e: &Entry) -> Vec<u8> {
    let mut k = KEY_V1.to_vec();
    k.push(if last { b'l' } else { b'h' });
    k.extend_from_slice(&snap.0 .0);
    for n in [
        e.ino,
        e.size,
        u64::from(e.mode),
        u64::from(e.uid),
        u64::from(e.gid),
        e.rdev,
    ] {
        k.extend_from_slice(&n.to_le_bytes());
    }
    for t in [e.mtime, e.ctime] {
        k.extend_from_slice(&t.sec.to_le_bytes());
        k.extend_from_slice(&t.nsec.to_le_bytes());
    }
    k.push(e.kind.code());
    for c in e.chunks() {
        k.extend_from_slice(&c.id.0 .0);
    }
    k.extend_from_slice(&e.target);
    // Appended only when set, so the inode numbers of the part's own filesystem (index 0, and
    // every snapshot before 1.2) stay what they were.
    if e.dev != 0 {
        k.push(b'd');
        k.extend_from_slice(&e.dev.to_le_bytes());
    }
    k
}

pub fn ino_of(key: &[u8]) -> u64 {
    ident(key).0
}

/// The inode number of `key` and the check kept beside it ([`Node::check`]).
pub fn ident(key: &[u8]) -> (u64, u64) {
    let h = blake3::hash(key);
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.as_bytes()[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let ino = word(0);
    let ino = if ino <= ROOT_INO { ino + 2 } else { ino };
    (ino, word(8))
}

/// Two different nodes hashed to one inode number (about 2^-64 per pair).
#[derive(Debug)]
pub struct Collision(pub u64);

struct Slot {
    node: Arc<Node>,
    lookups: u64,
}

/// Nodes the kernel holds references to (plus the root, which it never forgets).
pub struct NodeTable {
    map: Mutex<HashMap<u64, Slot>>,
}

impl NodeTable {
    pub fn new() -> NodeTable {
        let root = Node {
            ino: ROOT_INO,
            parent: ROOT_INO,
            check: ident(&synth_key(&[])).1,
            kind: NodeKind::Synth { path: Vec::new() },
        };
        let mut map = HashMap::new();
        map.insert(
            ROOT_INO,
            Slot {
                node: Arc::new(root),
                lookups: 1,
            },
        );
        NodeTable {
            map: Mutex::new(map),
        }
    }

    pub fn get(&self, ino: u64) -> Option<Arc<Node>> {
        self.map.lock().get(&ino).map(|s| s.node.clone())
    }

    /// Counts one kernel lookup of `node`. An existing node with the same key is kept (it is
    /// the same thing), so the kernel's view never changes under it.
    pub fn remember(&self, node: Node) -> Result<Arc<Node>, Collision> {
        let mut map = self.map.lock();
        if let Some(slot) = map.get_mut(&node.ino) {
            if slot.node.check != node.check {
                return Err(Collision(node.ino));
            }
            slot.lookups += 1;
            return Ok(slot.node.clone());
        }
        let node = Arc::new(node);
        map.insert(
            node.ino,
            Slot {
                node: node.clone(),
                lookups: 1,
            },
        );
        Ok(node)
    }

    /// The kernel dropped `n` references.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let mut map = self.map.lock();
        if let Some(slot) = map.get_mut(&ino) {
            slot.lookups = slot.lookups.saturating_sub(n);
            if slot.lookups == 0 {
                map.remove(&ino);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for NodeTable {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) fn synth_child(parent: u64, path: &[String], name: &str, child: &Child) -> Node {
    match child {
        Child::Dir => {
            let mut path = path.to_vec();
            path.push(name.to_string());
            let key = synth_key(&path);
            let (ino, check) = ident(&key);
            Node {
                ino,
                parent,
                check,
                kind: NodeKind::Synth { path },
            }
        }
        Child::Snapshot { snap, last } => {
            let key = snap_key(snap.id(), *last, b"");
            let s = SnapNode {
                snap: snap.clone(),
                last: *last,
                path: Box::default(),
                stat: Stat::of(&root_entry(snap)),
                place: Place::Folder(snap.snapshot.root, None),
            };
            let (ino, check) = ident(&key);
            Node {
                ino,
                parent,
                check,
                kind: NodeKind::Snap(s),
            }
        }
    }
}

/// The node of `entry`, found at position `pos` of the folder `s` (whose top blob is
/// `folder`). None when the position does not fit the node (a folder of over 2^32 entries).
pub(super) fn snap_child(
    parent: u64,
    s: &SnapNode,
    folder: TreeId,
    pos: u64,
    entry: &Entry,
) -> Option<Node> {
    let mut path = Vec::with_capacity(s.path.len() + 1 + entry.name.len());
    path.extend_from_slice(&s.path);
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(&entry.name);
    let key = if entry.is_hardlinked() {
        hardlink_key(s.snap.id(), s.last, entry)
    } else {
        snap_key(s.snap.id(), s.last, &path)
    };
    let place = match (entry.kind, &entry.content) {
        (EntryKind::Dir, Content::Tree(id)) => Place::Folder(
            *id,
            (!entry.xattrs.is_empty()).then(|| Box::new(entry.xattrs.clone())),
        ),
        _ => Place::Entry {
            folder,
            pos: u32::try_from(pos).ok()?,
        },
    };
    let kind = NodeKind::Snap(SnapNode {
        snap: s.snap.clone(),
        last: s.last,
        path: path.into_boxed_slice(),
        stat: Stat::of(entry),
        place,
    });
    let (ino, check) = ident(&key);
    Some(Node {
        ino,
        parent,
        check,
        kind,
    })
}

/// The snapshot root: the part folder's own mode, owner and mtime when the manifest recorded
/// them, else (snapshots before 0.1.1) a read-only folder dated by the backup.
pub(super) fn root_entry(snap: &SnapInfo) -> Entry {
    let m = &snap.snapshot.manifest;
    let (mode, uid, gid, mtime) = match &m.root_meta {
        Some(r) => (
            r.mode,
            r.uid,
            r.gid,
            Timestamp {
                sec: r.mtime_sec,
                nsec: r.mtime_nsec,
            },
        ),
        None => (0o555, 0, 0, timestamp(m.started_ns)),
    };
    Entry {
        name: Vec::new(),
        kind: EntryKind::Dir,
        mode,
        uid,
        gid,
        size: 0,
        mtime,
        ctime: timestamp(m.finished_ns),
        ino: 0,
        nlink: 2,
        dev: 0,
        blocks: None,
        flags: 0,
        rdev: 0,
        target: Vec::new(),
        xattrs: Vec::new(),
        content: Content::Tree(snap.snapshot.root),
    }
}

pub(super) fn timestamp(ns: i64) -> Timestamp {
    Timestamp {
        sec: ns.div_euclid(1_000_000_000),
        nsec: ns.rem_euclid(1_000_000_000) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Digest;

    fn synth(path: &[&str]) -> Node {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let (ino, check) = ident(&synth_key(&path));
        Node {
            ino,
            parent: ROOT_INO,
            check,
            kind: NodeKind::Synth { path },
        }
    }

    #[test]
    fn inos_are_stable_and_distinct() {
        let s = SnapshotId(Digest([7; 32]));
        assert_eq!(
            ino_of(&snap_key(s, false, b"a/b")),
            ino_of(&snap_key(s, false, b"a/b"))
        );
        assert_ne!(
            ino_of(&snap_key(s, false, b"a/b")),
            ino_of(&snap_key(s, true, b"a/b"))
        );
        let file = |ino: u64, size: u64| Entry {
            name: b"f".to_vec(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            ino,
            nlink: 2,
            dev: 0,
            blocks: None,
            flags: 0,
            rdev: 0,
            target: vec![],
            xattrs: vec![],
            content: Content::None,
        };
        let mut other_name = file(5, 10);
        other_name.name = b"g".to_vec();
        assert_eq!(
            hardlink_key(s, false, &file(5, 10)),
            hardlink_key(s, false, &other_name)
        );
        // Same inode and content on two filesystems of the part: two files.
        let mut other_fs = file(5, 10);
        other_fs.dev = 1;
        assert_ne!(
            hardlink_key(s, false, &file(5, 10)),
            hardlink_key(s, false, &other_fs)
        );
        // Same source inode, different file (another filesystem inside the part): apart.
        assert_ne!(
            hardlink_key(s, false, &file(5, 10)),
            hardlink_key(s, false, &file(5, 11))
        );
        assert_ne!(
            hardlink_key(s, false, &file(5, 10)),
            hardlink_key(s, true, &file(5, 10))
        );
        assert_ne!(
            ino_of(&snap_key(s, false, b"a")),
            ino_of(&hardlink_key(s, false, &file(1, 0)))
        );
        assert_ne!(
            ino_of(&synth_key(&["ab".into()])),
            ino_of(&synth_key(&["a".into(), "b".into()]))
        );
        assert!(ino_of(b"") > ROOT_INO);
    }

    #[test]
    fn lookups_and_forget() {
        let t = NodeTable::new();
        let n = synth(&["h"]);
        let ino = n.ino;
        t.remember(n).unwrap();
        t.remember(synth(&["h"])).unwrap();
        assert_eq!(t.len(), 2);
        t.forget(ino, 1);
        assert!(t.get(ino).is_some());
        t.forget(ino, 1);
        assert!(t.get(ino).is_none());
        t.forget(ROOT_INO, 100);
        assert!(t.get(ROOT_INO).is_some());
    }

    #[test]
    fn snapshot_root_shows_the_part_folder() {
        use crate::model::RootMeta;
        let mut s = crate::vfs::layout::tests::snap(1, "h", "p", 5_000_000_007, true);
        let info = |s: &crate::model::Snapshot| SnapInfo {
            snapshot: s.clone(),
            display: "h/p/d".into(),
        };
        // Recorded before 0.1.1 without it: read-only, root's, dated by the backup.
        let e = root_entry(&info(&s));
        assert_eq!((e.mode, e.uid, e.gid), (0o555, 0, 0));
        assert_eq!((e.mtime.sec, e.mtime.nsec), (5, 7));
        s.manifest.root_meta = Some(RootMeta {
            mode: 0o40750,
            uid: 1000,
            gid: 12,
            mtime_sec: -3,
            mtime_nsec: 9,
            flags: 0,
        });
        let e = root_entry(&info(&s));
        assert_eq!((e.mode, e.uid, e.gid), (0o40750, 1000, 12));
        assert_eq!((e.mtime.sec, e.mtime.nsec), (-3, 9));
        assert_eq!(crate::vfs::entry_attr(1, &e).perm, 0o750);
        assert_eq!(e.kind, EntryKind::Dir);
    }

    /// The kernel keeps an inode, hence a node, for every entry `ls -l` shows: 1,000,000 for
    /// one big folder. A node once held its whole entry (chunk list, xattrs, target: ~450 bytes
    /// with the table's share); now its attributes and where the entry is.
    #[test]
    fn nodes_stay_small() {
        let node = std::mem::size_of::<Node>();
        assert!(node <= 176, "a node takes {node} bytes");
        let path = std::mem::size_of::<Box<[u8]>>();
        assert_eq!(path, 16, "paths are kept without spare capacity");
    }

    #[test]
    fn collisions_are_refused() {
        let t = NodeTable::new();
        let a = synth(&["h"]);
        let mut b = synth(&["x"]);
        b.ino = a.ino;
        t.remember(a).unwrap();
        assert!(t.remember(b).is_err());
    }
}
