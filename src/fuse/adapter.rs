//! The kernel-facing half of the mount: `Fs` implements fuser's `Filesystem` over the plain
//! `Vfs`, converting each answer and replying exactly once; `try_reply!` logs a failure and
//! replies with its errno (damage is EIO, never ENOENT).

use crate::model::{EntryKind, Timestamp};
use crate::vfs::{Attr, SourceError, Vfs, VfsError};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags, IoctlFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyStatfs,
    ReplyXattr, Request,
};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The errno a reader sees. Damage and I/O failures are EIO, never ENOENT.
fn errno(e: &VfsError) -> Errno {
    match e {
        VfsError::NotFound => Errno::ENOENT,
        VfsError::NotDir => Errno::ENOTDIR,
        VfsError::IsDir => Errno::EISDIR,
        VfsError::NotSymlink | VfsError::NotFile => Errno::EINVAL,
        VfsError::NoXattr => Errno::NO_XATTR,
        VfsError::StaleInode(_) => Errno::ESTALE,
        VfsError::Source {
            source: SourceError::Interrupted,
            ..
        } => Errno::EINTR,
        VfsError::Source { .. } | VfsError::Damaged { .. } | VfsError::Collision(_) => Errno::EIO,
    }
}

/// Unwraps a `Vfs` result or logs the error (EIO at error level: it names the snapshot path),
/// replies with its errno and returns from the handler.
macro_rules! try_reply {
    ($reply:ident, $op:literal, $ino:expr, $res:expr) => {
        match $res {
            Ok(v) => v,
            Err(e) => {
                let errno = errno(&e);
                if errno == Errno::EIO {
                    log::error!("{} (inode {}): {e}", $op, $ino);
                } else {
                    log::debug!("{} (inode {}): {e}", $op, $ino);
                }
                $reply.error(errno);
                return;
            }
        }
    };
}

pub(super) struct Fs {
    pub(super) vfs: Arc<Vfs>,
    /// The kernel can open files without asking us (`FUSE_NO_OPEN_SUPPORT`): our first `open`
    /// answers ENOSYS and from then on the kernel sends neither open nor release, and keeps
    /// the page cache (its default is `FOPEN_KEEP_CACHE`). A warm read of a small file is then
    /// no round trip at all instead of three (open, flush, release).
    pub(super) no_open: bool,
    /// `-o noxattr`, or `xattr=auto` on a store whose snapshots record none: xattr requests
    /// answer ENOSYS, which the kernel remembers for the whole mount (callers see EOPNOTSUPP
    /// without a round trip).
    pub(super) no_xattr: bool,
}

fn system_time(t: Timestamp) -> SystemTime {
    let base = if t.sec >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(t.sec as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(t.sec.unsigned_abs()))
    };
    base.and_then(|b| b.checked_add(Duration::from_nanos(u64::from(t.nsec))))
        .unwrap_or(UNIX_EPOCH)
}

fn file_type(k: EntryKind) -> FileType {
    match k {
        EntryKind::File => FileType::RegularFile,
        EntryKind::Dir => FileType::Directory,
        EntryKind::Symlink => FileType::Symlink,
        EntryKind::Fifo => FileType::NamedPipe,
        EntryKind::CharDev => FileType::CharDevice,
        EntryKind::BlockDev => FileType::BlockDevice,
        EntryKind::Socket => FileType::Socket,
    }
}

/// `dev_t` as the FUSE protocol carries it: the kernel's 32-bit `new_encode_dev` layout.
fn encode_dev(rdev: u64) -> u32 {
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: system_time(a.mtime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.mtime),
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: encode_dev(a.rdev),
        blksize: 4096,
        flags: 0,
    }
}

/// Replies to getxattr/listxattr: `size == 0` asks for the length only.
fn reply_xattr(reply: ReplyXattr, size: u32, data: &[u8]) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}

impl fuser::Filesystem for Fs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Each is optional: older kernels just do without.
        for cap in [
            InitFlags::FUSE_DO_READDIRPLUS,
            // The kernel asks for attributes with the names only when the listing process
            // stats them: `ls -f` of a million-entry folder then creates no node per entry
            // (measured: 0.9 s and 102 MiB instead of 10 s and 606 MiB; `ls -l` unchanged).
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
        ] {
            if config.add_capabilities(cap).is_err() {
                log::debug!("mount: kernel lacks {cap:?}");
            }
        }
        self.no_open = config
            .capabilities()
            .contains(InitFlags::FUSE_NO_OPEN_SUPPORT);
        // More concurrent readahead requests keep several threads busy on big files.
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let a = try_reply!(
            reply,
            "lookup",
            parent.0,
            self.vfs.lookup(parent.0, name.as_bytes())
        );
        reply.entry_with_ttls(
            &a.attr_ttl,
            &a.entry_ttl,
            &file_attr(&a.attr),
            Generation(0),
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.vfs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let a = try_reply!(reply, "getattr", ino.0, self.vfs.getattr(ino.0));
        reply.attr(&a.attr_ttl, &file_attr(&a.attr));
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = try_reply!(reply, "readlink", ino.0, self.vfs.readlink(ino.0));
        reply.data(&target);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            reply.error(Errno::EROFS);
            return;
        }
        try_reply!(reply, "open", ino.0, self.vfs.open(ino.0));
        if self.no_open {
            // Not an error for the caller: the kernel opens the file itself, now and later.
            reply.error(Errno::ENOSYS);
            return;
        }
        // Snapshot content never changes: keep the page cache across opens. Reads come by
        // inode, so there is no handle to release and nothing to flush.
        reply.opened(
            FileHandle(0),
            FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH,
        );
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let data = try_reply!(reply, "read", ino.0, self.vfs.read(ino.0, offset, size));
        reply.data(&data);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing is ever written, so there is nothing to flush. ENOSYS tells the kernel so
        // once and for all: it stops sending a flush on every close.
        reply.error(Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let frozen = try_reply!(reply, "opendir", ino.0, self.vfs.opendir(ino.0));
        // A snapshot's folders never change: let the kernel keep their listings. Host and part
        // folders change with every backup and are listed afresh.
        let flags = if frozen {
            FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
        } else {
            FopenFlags::empty()
        };
        reply.opened(FileHandle(0), flags);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let res = self.vfs.readdir(ino.0, offset, false, |item| {
            let kind = file_type(item.answer.attr.kind);
            reply.add(
                INodeNo(item.answer.attr.ino),
                item.next,
                kind,
                OsStr::from_bytes(&item.name),
            )
        });
        try_reply!(reply, "readdir", ino.0, res);
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let res = self.vfs.readdir(ino.0, offset, true, |item| {
            let a = &item.answer;
            let name = OsStr::from_bytes(&item.name);
            reply.add(
                INodeNo(a.attr.ino),
                item.next,
                name,
                &a.entry_ttl,
                &file_attr(&a.attr),
                Generation(0),
            )
        });
        try_reply!(reply, "readdirplus", ino.0, res);
        reply.ok();
    }

    /// Only SEEK_DATA and SEEK_HOLE reach the server (`cp` uses them to find holes): the holes
    /// are those the backup recorded, so a copy from the mount is as sparse as the source was.
    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let hole = match whence {
            _ if offset < 0 => return reply.error(Errno::EINVAL),
            libc::SEEK_DATA => false,
            libc::SEEK_HOLE => true,
            _ => return reply.error(Errno::EINVAL),
        };
        let found = try_reply!(
            reply,
            "lseek",
            ino.0,
            self.vfs.seek_hole_or_data(ino.0, offset as u64, hole)
        );
        match found {
            Some(at) => reply.offset(at as i64),
            None => reply.error(Errno::ENXIO),
        }
    }

    /// Tools probe files with ioctls (`FS_IOC_GETFLAGS`, `FICLONE`…), several per opened file.
    /// None applies to a snapshot: ENOTTY, as from any file system without ioctls, quietly
    /// (fuser's default logs a warning for each: thousands of lines for one `cp -r`).
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // `df` shows the store's size as both size and use: nothing can be written here.
        const BLOCK: u64 = 4096;
        let blocks = self.vfs.stored_bytes().div_ceil(BLOCK);
        reply.statfs(blocks, 0, 0, 0, 0, BLOCK as u32, 255, BLOCK as u32);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if self.no_xattr {
            return reply.error(Errno::ENOSYS);
        }
        let value = try_reply!(
            reply,
            "getxattr",
            ino.0,
            self.vfs.getxattr(ino.0, name.as_bytes())
        );
        reply_xattr(reply, size, &value);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        if self.no_xattr {
            return reply.error(Errno::ENOSYS);
        }
        let names = try_reply!(reply, "listxattr", ino.0, self.vfs.listxattr(ino.0));
        reply_xattr(reply, size, &names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_use_the_kernel_encoding() {
        assert_eq!(encode_dev(libc::makedev(8, 1)), 0x801);
        assert_eq!(encode_dev(libc::makedev(1, 3)), 0x103);
        // Large minors spill above the major, as new_encode_dev does.
        assert_eq!(
            encode_dev(libc::makedev(259, 0x12345)),
            0x45 | (259 << 8) | (0x123 << 20)
        );
    }

    #[test]
    fn errors_keep_their_meaning() {
        let damaged = |source| VfsError::Source {
            path: "h/p/d/f".into(),
            source,
        };
        assert_eq!(errno(&VfsError::NotFound), Errno::ENOENT);
        assert_eq!(
            errno(&damaged(SourceError::Damaged("bad hash".into()))),
            Errno::EIO
        );
        assert_eq!(errno(&damaged(SourceError::Io("disk".into()))), Errno::EIO);
        assert_eq!(errno(&damaged(SourceError::Interrupted)), Errno::EINTR);
        let short = VfsError::Damaged {
            path: "f".into(),
            detail: "short".into(),
        };
        assert_eq!(errno(&short), Errno::EIO);
        assert_eq!(errno(&VfsError::Collision(5)), Errno::EIO);
        assert_eq!(errno(&VfsError::NoXattr), Errno::NO_XATTR);
        assert_eq!(errno(&VfsError::StaleInode(9)), Errno::ESTALE);
    }

    #[test]
    fn times_before_1970() {
        let t = system_time(Timestamp {
            sec: -2,
            nsec: 500_000_000,
        });
        assert_eq!(
            UNIX_EPOCH.duration_since(t).unwrap(),
            Duration::from_millis(1500)
        );
    }
}
