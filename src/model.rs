//! What a snapshot contains: tree entries (one per file, with all its metadata) and the manifest.
//! The binary encoding of trees lives in `tree.rs`; manifests are JSON (`manifest.rs`).

use crate::id::{ChunkId, SnapshotId, TreeId};
use serde::{Deserialize, Serialize};

/// The type of a directory entry, as recorded from `lstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDev,
    BlockDev,
    Socket,
}

impl EntryKind {
    /// Stable on-disk code. Do not change: it is part of the tree format.
    pub fn code(self) -> u8 {
        match self {
            EntryKind::File => 1,
            EntryKind::Dir => 2,
            EntryKind::Symlink => 3,
            EntryKind::Fifo => 4,
            EntryKind::CharDev => 5,
            EntryKind::BlockDev => 6,
            EntryKind::Socket => 7,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => EntryKind::File,
            2 => EntryKind::Dir,
            3 => EntryKind::Symlink,
            4 => EntryKind::Fifo,
            5 => EntryKind::CharDev,
            6 => EntryKind::BlockDev,
            7 => EntryKind::Socket,
            _ => return None,
        })
    }

    /// The `S_IFMT` bits of this kind.
    pub fn mode_bits(self) -> u32 {
        match self {
            EntryKind::File => libc::S_IFREG,
            EntryKind::Dir => libc::S_IFDIR,
            EntryKind::Symlink => libc::S_IFLNK,
            EntryKind::Fifo => libc::S_IFIFO,
            EntryKind::CharDev => libc::S_IFCHR,
            EntryKind::BlockDev => libc::S_IFBLK,
            EntryKind::Socket => libc::S_IFSOCK,
        }
    }

    pub fn from_mode(mode: u32) -> Option<Self> {
        Some(match mode & libc::S_IFMT {
            libc::S_IFREG => EntryKind::File,
            libc::S_IFDIR => EntryKind::Dir,
            libc::S_IFLNK => EntryKind::Symlink,
            libc::S_IFIFO => EntryKind::Fifo,
            libc::S_IFCHR => EntryKind::CharDev,
            libc::S_IFBLK => EntryKind::BlockDev,
            libc::S_IFSOCK => EntryKind::Socket,
            _ => return None,
        })
    }
}

/// A point in time with nanoseconds, as `stat` gives it (seconds may be negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

/// One chunk of a regular file: its id and plain length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkRef {
    pub id: ChunkId,
    pub len: u32,
}

/// One extended attribute, name and value as raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// Where an entry's content is: chunks for files, a subtree for directories.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Content {
    #[default]
    None,
    Chunks(Vec<ChunkRef>),
    Tree(TreeId),
}

/// One directory entry with everything needed to restore it exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Raw name bytes: never assumed UTF-8, never contains `/` or NUL in a valid store.
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (no `S_IFMT` bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    /// Source inode: used to detect unchanged files and, with `dev`, to group hard links.
    pub ino: u64,
    /// Which filesystem of the part the entry is on: 0 for the part folder's own, then 1, 2, …
    /// for each filesystem mounted inside the part, in the order the backup's walk (names sorted,
    /// depth first) first meets it. Inode numbers are unique only within one filesystem, so a
    /// file's identity is [`Entry::link_id`], never `ino` alone. An index rather than the raw
    /// `st_dev`: device numbers of tmpfs, btrfs subvolumes, NFS and LVM volumes are handed out at
    /// mount time and change across reboots, which would make every tree blob new (no dedup of
    /// unchanged folders) and every file look changed. 0 in trees before format 1.2.
    pub dev: u32,
    pub nlink: u32,
    /// Allocated size in 512-byte blocks (`st_blocks`) at backup time, for regular files: less
    /// than `size` needs means the file has holes. `None` for other kinds and before format 1.2.
    pub blocks: Option<u64>,
    /// Inode flags (`FS_IOC_GETFLAGS`, `chattr`) of files and folders, masked with
    /// [`inode_flags::RECORDED`]. 0 for other kinds, when the filesystem has none, and before
    /// format 1.2.
    pub flags: u32,
    /// Device number for char/block devices.
    pub rdev: u64,
    /// Symlink target as raw bytes.
    pub target: Vec<u8>,
    pub xattrs: Vec<Xattr>,
    pub content: Content,
}

impl Entry {
    pub fn chunks(&self) -> &[ChunkRef] {
        match &self.content {
            Content::Chunks(c) => c,
            _ => &[],
        }
    }

    pub fn subtree(&self) -> Option<TreeId> {
        match self.content {
            Content::Tree(t) => Some(t),
            _ => None,
        }
    }

    /// True when this entry is one of several hard links to the same file in its snapshot.
    pub fn is_hardlinked(&self) -> bool {
        self.kind != EntryKind::Dir && self.nlink > 1
    }

    /// What identifies one file among the part's filesystems: entries of one snapshot with the
    /// same `link_id` (and `nlink > 1`) are hard links to one file.
    pub fn link_id(&self) -> (u32, u64) {
        (self.dev, self.ino)
    }
}

/// The inode flags (`chattr`, `FS_IOC_GETFLAGS`) a backup records. Values are the kernel's
/// (`linux/fs.h`), the same on every filesystem that has them; part of the tree format.
pub mod inode_flags {
    /// `S`: writes are synchronous.
    pub const SYNC: u32 = 0x0000_0008;
    /// `i`: immutable (no write, rename, unlink or link, even by root).
    pub const IMMUTABLE: u32 = 0x0000_0010;
    /// `a`: append only.
    pub const APPEND: u32 = 0x0000_0020;
    /// `d`: skipped by dump(8).
    pub const NODUMP: u32 = 0x0000_0040;
    /// `A`: atime not updated.
    pub const NOATIME: u32 = 0x0000_0080;
    /// `D`: directory changes are synchronous.
    pub const DIRSYNC: u32 = 0x0001_0000;
    /// `T`: top of a directory hierarchy (Orlov allocator hint).
    pub const TOPDIR: u32 = 0x0002_0000;
    /// `C`: no copy on write (btrfs); only settable while a file is empty.
    pub const NOCOW: u32 = 0x0080_0000;
    /// `P`: new entries inherit the folder's project id.
    pub const PROJINHERIT: u32 = 0x2000_0000;

    /// What is recorded: the flags a user sets with `chattr` that change how the file behaves.
    /// Left out: flags the filesystem manages itself (extents, inline data, encryption, verity,
    /// casefold, DAX) and compression hints that only one filesystem understands.
    pub const RECORDED: u32 =
        SYNC | IMMUTABLE | APPEND | NODUMP | NOATIME | DIRSYNC | TOPDIR | NOCOW | PROJINHERIT;
}

/// A directory's entries, sorted by name bytes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tree {
    pub entries: Vec<Entry>,
}

impl Tree {
    pub fn find(&self, name: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// Whether a snapshot holds every file of its part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotStatus {
    Complete,
    Partial,
}

impl SnapshotStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotStatus::Complete => "complete",
            SnapshotStatus::Partial => "partial",
        }
    }
}

/// A file that could not be backed up and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Path relative to the part's root, lossily printed when not UTF-8.
    pub path: String,
    pub error: String,
}

/// The snapshot manifest: written last, it is what makes a snapshot exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub host: String,
    pub part: String,
    /// Absolute path of the part's source on the host at backup time.
    pub source: String,
    /// Unix time in nanoseconds.
    pub started_ns: i64,
    pub finished_ns: i64,
    /// Root tree, hex.
    pub root: String,
    pub files: u64,
    pub dirs: u64,
    /// Logical size: sum of regular file sizes.
    pub bytes: u64,
    pub bytes_read: u64,
    pub bytes_added: u64,
    pub tool_version: String,
    pub status: SnapshotStatus,
    #[serde(default)]
    pub problems: Vec<Problem>,
    /// Parent snapshot this one was compared against, hex.
    #[serde(default)]
    pub parent: Option<String>,
    /// Owner, mode and times of the part's folder itself (absent in snapshots before 0.1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_meta: Option<RootMeta>,
    /// Folder name (`YYYY-MM-DD_HHMMSS`, `_N` for another one of its part in the same second),
    /// fixed at backup so forgetting other snapshots never renames it (absent in older snapshots:
    /// computed then, see [`crate::repo::names`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether any entry of the snapshot has extended attributes: `Some(false)` lets a mount
    /// answer every xattr request ENOSYS (see `fuse::options::XattrMode::Auto`). Absent =
    /// unknown (snapshots written before it was recorded): a mount treats it as "may have some".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_xattrs: Option<bool>,
}

impl Manifest {
    /// A manifest of nothing (every count zero, no source, root or parent) written by this
    /// version: for snapshots made up in memory (the in-memory mount source, tests), which set
    /// the rest with `..`.
    pub fn empty(host: &str, part: &str, started_ns: i64, complete: bool) -> Manifest {
        Manifest {
            host: host.into(),
            part: part.into(),
            source: String::new(),
            started_ns,
            finished_ns: started_ns,
            root: String::new(),
            files: 0,
            dirs: 0,
            bytes: 0,
            bytes_read: 0,
            bytes_added: 0,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            status: if complete {
                SnapshotStatus::Complete
            } else {
                SnapshotStatus::Partial
            },
            problems: vec![],
            parent: None,
            root_meta: None,
            name: None,
            has_xattrs: None,
        }
    }

    /// [`Manifest::empty`] from `source` `/src`, for tests that care about the host, part,
    /// start time and status only.
    #[cfg(test)]
    pub(crate) fn sample(host: &str, part: &str, started_ns: i64, complete: bool) -> Manifest {
        Manifest {
            source: "/src".into(),
            tool_version: "test".into(),
            ..Manifest::empty(host, part, started_ns, complete)
        }
    }
}

/// Metadata of a snapshot's top folder, so a whole-part restore recreates it as it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    /// The folder's inode flags, as [`Entry::flags`] (absent before format 1.2, and when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RootMeta {
    /// As a directory entry (no name, no content), for code that applies entry metadata.
    pub fn as_entry(&self) -> Entry {
        Entry {
            name: Vec::new(),
            kind: EntryKind::Dir,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            size: 0,
            mtime: Timestamp {
                sec: self.mtime_sec,
                nsec: self.mtime_nsec,
            },
            ctime: Timestamp::default(),
            ino: 0,
            dev: 0,
            nlink: 1,
            blocks: None,
            flags: self.flags,
            rdev: 0,
            target: Vec::new(),
            xattrs: Vec::new(),
            content: Content::None,
        }
    }
}

/// A snapshot as listed by the catalog: its id plus the manifest.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub root: TreeId,
    pub manifest: Manifest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_xattrs_absent_is_unknown_and_round_trips() {
        let m = Manifest::sample("h", "p", 1, true);
        // Written before the field existed: no key at all.
        let old = serde_json::to_string(&m).unwrap();
        assert!(!old.contains("has_xattrs"), "{old}");
        assert_eq!(
            serde_json::from_str::<Manifest>(&old).unwrap().has_xattrs,
            None
        );
        for known in [false, true] {
            let m = Manifest {
                has_xattrs: Some(known),
                ..m.clone()
            };
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
        }
    }
}
