//! The FUSE adapter and `mount`: the only code that touches fuser types and errno values. Each
//! handler calls the plain `Vfs`, converts the answer, and replies exactly once; `try_reply!`
//! logs a failure and replies with its errno.

mod daemon;
pub mod kernel_mount;
mod options;
mod sd_notify;

pub use daemon::{daemonize, Daemon};
pub use options::{parse_options, OptionError, ParsedOptions};

use crate::model::{EntryKind, Timestamp};
use crate::vfs::{Attr, SnapshotSource, SourceError, Vfs, VfsConfig, VfsError};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags, IoctlFlags,
    KernelConfig, LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen,
    ReplyStatfs, ReplyXattr, Request, Session, SessionACL,
};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How `bmbackup mount` mounts. `options` are raw `-o` strings; values given there
/// (`allow_other`, `cache_mib=`, `threads=`) win over the fields.
#[derive(Clone, Debug)]
pub struct MountOptions {
    pub allow_other: bool,
    /// Budget for decompressed chunks, MiB; trees get a quarter of it on top.
    pub cache_mib: usize,
    /// Threads serving kernel requests.
    pub threads: usize,
    pub options: Vec<String>,
    /// What the kernel's mount table shows as the source (the store's path); `-o fsname=`
    /// wins, and "bmbackup" stands in when neither is given.
    pub source: Option<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: false,
            cache_mib: 256,
            threads: 4,
            source: None,
            options: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Options(#[from] OptionError),
    #[error("cannot list the snapshots: {0}")]
    Source(#[from] SourceError),
    #[error("cannot mount on {path}: {source}")]
    Mount { path: PathBuf, source: io::Error },
    #[error("mount of {path} ended with an error: {source}")]
    Session { path: PathBuf, source: io::Error },
    #[error("cannot open the store: {0}")]
    Open(#[from] crate::repo::RepoError),
    #[error(transparent)]
    MountPoint(#[from] kernel_mount::MountPointError),
    #[error("the mount of {0} was taken away from outside (umount, fusermount3 -u); exiting so a supervisor can mount it again")]
    Vanished(PathBuf),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `bmbackup mount STORE MOUNTPOINT`: unless `foreground`, forks first and returns in the
/// parent only once the mount is up (what fstab and `mount.bmbackup` rely on); then opens the
/// repository (after the fork: SQLite must not cross it) and serves until unmounted.
///
/// Call before starting any thread.
pub fn mount_store(
    store: &Path,
    cache_dir: Option<&Path>,
    mountpoint: &Path,
    foreground: bool,
    opts: &MountOptions,
) -> Result<(), MountError> {
    // The daemon leaves its cwd once ready; relative paths must not depend on it.
    let store = std::path::absolute(store)?;
    let cache_dir = cache_dir.map(std::path::absolute).transpose()?;
    let mountpoint = std::path::absolute(mountpoint)?;
    let parsed = parse_options(&opts.options)?; // fail in the foreground, before forking
    daemon::clear_stale_mount(&mountpoint)?;
    kernel_mount::check_mount_point(&mountpoint, parsed.nonempty)?;
    let opts = &MountOptions {
        source: Some(
            opts.source
                .clone()
                .unwrap_or_else(|| store.display().to_string()),
        ),
        ..opts.clone()
    };
    let daemon = if foreground { None } else { Some(daemonize()?) };
    let repo = crate::repo::Repository::open(&store, cache_dir.as_deref())?;
    let vfs = Arc::new(Vfs::new(Arc::new(repo), vfs_config(opts)?)?);
    let end = serve(vfs, &mountpoint, opts, move || {
        if let Some(d) = daemon {
            d.ready();
        }
    })?;
    // A daemon whose mount was taken away must not look like one that was stopped: exiting
    // non-zero lets `Restart=on-failure` mount it again.
    match end {
        SessionEnd::Stopped => Ok(()),
        SessionEnd::FromOutside => Err(MountError::Vanished(mountpoint)),
    }
}

/// Why a served mount ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    /// SIGTERM/SIGINT: we unmounted it (or it was no longer ours to unmount).
    Stopped,
    /// Unmounted by someone else (umount, fusermount3 -u) while we served it.
    FromOutside,
}

fn vfs_config(opts: &MountOptions) -> Result<VfsConfig, MountError> {
    let parsed = parse_options(&opts.options)?;
    let cache_mib = parsed.cache_mib.unwrap_or(opts.cache_mib).max(1);
    Ok(VfsConfig {
        chunk_cache_bytes: cache_mib << 20,
        tree_cache_bytes: (cache_mib << 18).max(16 << 20),
        ..VfsConfig::default()
    })
}

/// Mounts `source` read-only on `mountpoint` and serves it until unmounted (`fusermount3 -u`,
/// `umount`, SIGTERM or SIGINT).
pub fn mount(
    source: Arc<dyn SnapshotSource>,
    mountpoint: &Path,
    opts: &MountOptions,
) -> Result<(), MountError> {
    mount_then(source, mountpoint, opts, || {})
}

/// Like [`mount`], calling `ready` once the mount is visible (e.g. [`Daemon::ready`]).
pub fn mount_then(
    source: Arc<dyn SnapshotSource>,
    mountpoint: &Path,
    opts: &MountOptions,
    ready: impl FnOnce(),
) -> Result<(), MountError> {
    mount_vfs(
        Arc::new(Vfs::new(source, vfs_config(opts)?)?),
        mountpoint,
        opts,
        ready,
    )
}

/// Serves an existing `Vfs` (tests keep a handle on it to watch its node table). Caches are
/// as `vfs` was built; the cache fields of `opts` are not used.
pub fn mount_vfs(
    vfs: Arc<Vfs>,
    mountpoint: &Path,
    opts: &MountOptions,
    ready: impl FnOnce(),
) -> Result<(), MountError> {
    serve(vfs, mountpoint, opts, ready).map(drop)
}

fn serve(
    vfs: Arc<Vfs>,
    mountpoint: &Path,
    opts: &MountOptions,
    ready: impl FnOnce(),
) -> Result<SessionEnd, MountError> {
    let started = Instant::now();
    let parsed = parse_options(&opts.options)?;
    daemon::clear_stale_mount(mountpoint)?;
    kernel_mount::check_mount_point(mountpoint, parsed.nonempty)?;
    let status_of = mountpoint.to_path_buf();
    let _refresher = vfs.spawn_refresher(Duration::from_secs(2), move |n| {
        sd_notify::notify(&sd_notify::status(n, &status_of))
    })?;

    let mut config = fuser::Config::default();
    let source = parsed
        .fsname
        .clone()
        .or_else(|| opts.source.clone())
        .unwrap_or_else(|| "bmbackup".into());
    config.mount_options = vec![
        MountOption::FSName(source.clone()),
        MountOption::Subtype("bmbackup".into()),
        // The kernel checks permissions against the backed-up owners and modes; without this
        // anyone allowed on the mount could read everything.
        MountOption::DefaultPermissions,
        MountOption::RO,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoAtime,
    ];
    if parsed.noexec {
        config.mount_options.push(MountOption::NoExec);
    }
    config.acl = if opts.allow_other || parsed.allow_other {
        SessionACL::All
    } else if parsed.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(parsed.threads.unwrap_or(opts.threads).max(1));
    config.clone_fd = true;

    let path = mountpoint.to_path_buf();
    let mount_err = |source| MountError::Mount {
        path: path.clone(),
        source,
    };
    let vfs_for_status = Arc::clone(&vfs);
    let fs = Fs {
        vfs,
        no_open: false,
    };
    let direct = kernel_mount::DirectMount {
        source: &source,
        allow_other: config.acl != SessionACL::Owner,
        noexec: parsed.noexec,
    };
    let acl = config.acl;
    let (mut session, own_dev) =
        match kernel_mount::mount_direct(mountpoint, &direct).map_err(mount_err)? {
            Some(fd) => {
                let dev = kernel_mount::device_of(mountpoint).map_err(mount_err)?;
                // No fuser Mount object: fuser never unmounts this by path (see kernel_mount).
                let session = Session::from_fd(fs, fd, acl, config).map_err(mount_err)?;
                (session, Some(dev))
            }
            None => (
                Session::new(fs, mountpoint, &config).map_err(mount_err)?,
                None,
            ),
        };
    let mut unmounter = session.unmount_callable();
    let mp = path.clone();
    let asked_to_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asked = Arc::clone(&asked_to_stop);
    let _signals = daemon::on_termination(move || {
        asked.store(true, std::sync::atomic::Ordering::SeqCst);
        sd_notify::notify("STOPPING=1");
        log::info!("mount: signal received, unmounting {}", mp.display());
        match own_dev {
            Some(dev) => match kernel_mount::unmount_if_ours(&mp, dev) {
                Ok(true) => {}
                Ok(false) => {
                    // Someone detached our mount (fusermount3 -uz) and the path shows another
                    // mount or none: leave it alone. Our detached mount may still be in use,
                    // so the session would not end by itself.
                    log::info!(
                        "mount: {} no longer shows this daemon's mount; leaving it alone",
                        mp.display()
                    );
                    std::process::exit(0);
                }
                Err(e) => log::error!("mount: cannot unmount {}: {e}", mp.display()),
            },
            None => {
                if let Err(e) = unmounter.unmount() {
                    log::warn!(
                        "mount: unmount of {} failed ({e}); detaching it",
                        mp.display()
                    );
                    if let Err(e) = daemon::lazy_unmount(&mp) {
                        log::error!("mount: {e}");
                    }
                }
            }
        }
    })?;
    log::info!("mount: {} ready in {:?}", path.display(), started.elapsed());
    ready();
    // The kernel queues requests until the session threads below read them, so the mount
    // answers from here on: what units ordered after ours need.
    sd_notify::notify(&format!(
        "READY=1\n{}",
        sd_notify::status(vfs_for_status.snapshot_count(), &path)
    ));
    session.run().map_err(|source| MountError::Session {
        path: path.clone(),
        source,
    })?;
    if asked_to_stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(SessionEnd::Stopped);
    }
    log::warn!(
        "mount: {} was unmounted from outside (umount or fusermount3 -u)",
        path.display()
    );
    Ok(SessionEnd::FromOutside)
}

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

struct Fs {
    vfs: Arc<Vfs>,
    /// The kernel can open files without asking us (`FUSE_NO_OPEN_SUPPORT`): our first `open`
    /// answers ENOSYS and from then on the kernel sends neither open nor release, and keeps
    /// the page cache (its default is `FOPEN_KEEP_CACHE`). A warm read of a small file is then
    /// no round trip at all instead of three (open, flush, release).
    no_open: bool,
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
        let value = try_reply!(
            reply,
            "getxattr",
            ino.0,
            self.vfs.getxattr(ino.0, name.as_bytes())
        );
        reply_xattr(reply, size, &value);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
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
