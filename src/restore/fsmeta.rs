//! Metadata and special files for restore, on descriptors only: owner, xattrs, mode and times
//! set on an open descriptor of the inode the restore made (never on a name the kernel would
//! look up again), symlinks and device nodes made with `symlinkat`/`mknodat` in a directory
//! descriptor, and inode flags (immutable, append-only, …) set last. The `*at` calls go through
//! `rustix`, which wraps each system call safely; see `restore::write` for why it is rustix.

use crate::model::{Entry, EntryKind};
use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, IFlags, Mode, OFlags, Stat, Timespec, Timestamps, Uid,
    XattrFlags,
};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// A name that is no longer what the restore made or found a moment before: an attacker (or
/// another program) swapped it. Reported as that file's failure, never followed.
#[derive(Debug, thiserror::Error)]
#[error("was replaced during the restore (not followed); see who changes it, then rerun")]
pub struct Replaced;

pub fn replaced() -> io::Error {
    io::Error::other(Replaced)
}

pub fn is_replaced(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Replaced>())
}

/// The kind of a `stat` result, as the tree names kinds.
pub fn kind_of(st: &Stat) -> Option<EntryKind> {
    Some(match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        FileType::Fifo => EntryKind::Fifo,
        FileType::CharacterDevice => EntryKind::CharDev,
        FileType::BlockDevice => EntryKind::BlockDev,
        FileType::Socket => EntryKind::Socket,
        FileType::Unknown => return None,
    })
}

/// `lstat` of `name` in `dir`; `None` when there is no such name.
pub fn stat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens the folder `name` of `dir`, just seen or made, without following a symlink; anything
/// but a folder there (a symlink swapped in), or nothing any more, is [`replaced`].
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR | rustix::io::Errno::NOENT) => {
            Err(replaced())
        }
        Err(e) => Err(e.into()),
    }
}

/// Makes the folder `name` in `dir` (0700 while the restore fills it) and opens it. The opened
/// folder must be the one just made: owned by us and not a symlink, else [`replaced`].
pub fn make_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Err(replaced()),
        Err(e) => return Err(e.into()),
    }
    let fd = open_dir_at(dir, name)?;
    if rfs::fstat(&fd)?.st_uid != rustix::process::geteuid().as_raw() {
        return Err(replaced());
    }
    Ok(fd)
}

/// Creates a new regular file `name` in `dir`, mode 0600, failing if the name exists (whatever
/// it is: a symlink there is never followed).
pub fn create_file_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rfs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?)
}

/// Writes `data` as the new regular file `name` in `dir` (never over an existing name, never
/// through a symlink), synced, with `owner` (when root) and then `mode` set on its descriptor.
/// For restore code that writes files of its own (a Cyrus mailbox's new header) into a folder
/// opened with [`crate::restore::dest::open_folder`].
pub fn write_new_file_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    data: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::from(create_file_at(dir, name)?);
    f.write_all(data)?;
    f.sync_all()?;
    if let (Some((uid, gid)), true) = (owner, rustix::process::geteuid().is_root()) {
        rfs::fchown(&f, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    }
    rfs::fchmod(&f, Mode::from_raw_mode(mode & 0o7777))?;
    Ok(())
}

/// Opens an existing regular file for reading without following a symlink or blocking on a
/// fifo swapped in; anything but a regular file is [`replaced`].
pub fn open_file_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rfs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => return Err(replaced()),
        Err(e) => return Err(e.into()),
    };
    if kind_of(&rfs::fstat(&fd)?) != Some(EntryKind::File) {
        return Err(replaced());
    }
    Ok(fd)
}

/// Removes `name` from `dir`, a whole folder included, walking it by descriptors: a symlink
/// anywhere below is removed, never followed.
pub fn remove_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let Some(st) = stat_at(dir, name)? else {
        return Ok(());
    };
    if kind_of(&st) != Some(EntryKind::Dir) {
        return match rfs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let sub = open_dir_at(dir, name)?;
    let mut names = Vec::new();
    for ent in rfs::Dir::read_from(&sub)? {
        let n = ent?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(n);
        }
    }
    for n in names {
        remove_at(sub.as_fd(), &n)?;
    }
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Makes the symlink, fifo, device node or socket `e` as `name` in `dir`.
pub fn make_special_at(dir: BorrowedFd<'_>, name: &[u8], e: &Entry) -> io::Result<()> {
    let made = match e.kind {
        EntryKind::Symlink => rfs::symlinkat(e.target.as_slice(), dir, name),
        kind => {
            let ft = FileType::from_raw_mode(kind.mode_bits() as rfs::RawMode);
            let perm = Mode::from_raw_mode((e.mode & 0o777) as rfs::RawMode);
            rfs::mknodat(dir, name, ft, perm, e.rdev as rfs::Dev)
        }
    };
    match made {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(replaced()),
        Err(err) => Err(err.into()),
    }
}

fn times(e: &Entry) -> Timestamps {
    let t = Timespec {
        tv_sec: e.mtime.sec,
        tv_nsec: e.mtime.nsec.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn owner(e: &Entry) -> (Option<Uid>, Option<Gid>) {
    (Some(Uid::from_raw(e.uid)), Some(Gid::from_raw(e.gid)))
}

fn set_xattrs(fd: BorrowedFd<'_>, e: &Entry, what: &dyn std::fmt::Display) {
    for x in &e.xattrs {
        if let Err(err) = rfs::fsetxattr(fd, x.name.as_slice(), &x.value, XattrFlags::empty()) {
            log::warn!(
                "{what}: xattr {} not restored: {}",
                String::from_utf8_lossy(&x.name),
                io::Error::from(err)
            );
        }
    }
}

/// Owner (as root), xattrs, mode and times on an open file or folder: mode after owner, since
/// `fchown` clears setuid and setgid bits; times last, since the others change ctime only.
pub fn apply_fd(
    fd: BorrowedFd<'_>,
    e: &Entry,
    is_root: bool,
    what: &dyn std::fmt::Display,
) -> io::Result<()> {
    if is_root {
        let (u, g) = owner(e);
        rfs::fchown(fd, u, g)?;
    }
    set_xattrs(fd, e, what);
    rfs::fchmod(fd, Mode::from_raw_mode(e.mode as rfs::RawMode))?;
    rfs::futimens(fd, &times(e))?;
    Ok(())
}

/// Owner (as root), mode and times of the symlink, fifo, device node or socket `name` in `dir`,
/// through an `O_PATH` descriptor of that very inode (opening a device could act on it). The
/// inode must be of `e`'s kind and have no other name (a hard link to someone else's file never
/// gets our metadata), and, when `made_by_us`, be owned by this process: else [`replaced`].
/// Mode and xattrs go through `/proc/self/fd/N`, which names the inode held, not a path.
pub fn apply_special_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    e: &Entry,
    is_root: bool,
    made_by_us: bool,
    what: &dyn std::fmt::Display,
) -> io::Result<()> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rfs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Err(replaced()),
        Err(err) => return Err(err.into()),
    };
    let st = rfs::fstat(&fd)?;
    let ours = !made_by_us || st.st_uid == rustix::process::geteuid().as_raw();
    if kind_of(&st) != Some(e.kind) || st.st_nlink != 1 || !ours {
        return Err(replaced());
    }
    if is_root {
        let (u, g) = owner(e);
        rfs::chownat(&fd, "", u, g, AtFlags::EMPTY_PATH)?;
    }
    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    if e.kind != EntryKind::Symlink {
        for x in &e.xattrs {
            if let Err(err) = rfs::setxattr(
                proc.as_str(),
                x.name.as_slice(),
                &x.value,
                XattrFlags::empty(),
            ) {
                log::warn!(
                    "{what}: xattr {} not restored: {}",
                    String::from_utf8_lossy(&x.name),
                    io::Error::from(err)
                );
            }
        }
        rfs::chmod(proc.as_str(), Mode::from_raw_mode(e.mode as rfs::RawMode))?;
    } else if !e.xattrs.is_empty() {
        log::warn!("{what}: xattrs of a symlink are not restored (Linux allows few on symlinks)");
    }
    match rfs::utimensat(&fd, "", &times(e), AtFlags::EMPTY_PATH) {
        Ok(()) => Ok(()),
        // Kernels before 5.8 take no empty path here: set the times by name, not following
        // a symlink, and check that the name still holds the inode.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::BADF) => {
            rfs::utimensat(dir, name, &times(e), AtFlags::SYMLINK_NOFOLLOW)?;
            match stat_at(dir, name)? {
                Some(now) if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) => Ok(()),
                _ => Err(replaced()),
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// Whether `st` already carries `e`'s mode, owner (when root restores) and mtime.
pub fn same_metadata(st: &Stat, e: &Entry, is_root: bool) -> bool {
    st.st_mode & 0o7777 == e.mode & 0o7777
        && (!is_root || (st.st_uid, st.st_gid) == (e.uid, e.gid))
        && st.st_mtime == e.mtime.sec
        && st.st_mtime_nsec as i64 == i64::from(e.mtime.nsec)
}

/// Inode flags that forbid changing a file: set last, cleared before a rerun touches it.
const PROTECTIVE: IFlags = IFlags::IMMUTABLE.union(IFlags::APPEND);

/// Sets the inode flags `flags` (`FS_IOC_SETFLAGS` bits as `chattr` shows them) on an open
/// file or folder, after its content and metadata: immutable and append-only forbid changing
/// either afterwards. Only root may set them; for anyone else this is a no-op, as is `0`. A flag
/// the destination filesystem does not keep (ext4 has no no-COW, tmpfs few flags) is a warning,
/// and the others are still set.
pub fn apply_flags(
    fd: BorrowedFd<'_>,
    flags: u32,
    is_root: bool,
    what: &dyn std::fmt::Display,
) -> io::Result<()> {
    if flags == 0 || !is_root {
        return Ok(());
    }
    let want = IFlags::from_bits_retain(flags);
    let unsupported = |err: rustix::io::Errno| {
        matches!(
            err,
            rustix::io::Errno::NOTTY | rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL
        )
    };
    let have = match rfs::ioctl_getflags(fd) {
        Ok(f) => f,
        Err(err) if unsupported(err) => {
            log::warn!("{what}: inode flags {flags:#x} not restored: the filesystem keeps none");
            return Ok(());
        }
        Err(err) => return Err(err.into()),
    };
    if have.contains(want) {
        return Ok(());
    }
    match rfs::ioctl_setflags(fd, have | want) {
        Ok(()) => return Ok(()),
        Err(err) if unsupported(err) => {}
        Err(err) => return Err(err.into()),
    }
    // One flag the filesystem refuses fails them all: set them one by one.
    let mut now = have;
    for bit in (0..32).map(|i| 1u32 << i).filter(|b| flags & b != 0) {
        let one = IFlags::from_bits_retain(bit);
        match rfs::ioctl_setflags(fd, now | one) {
            Ok(()) => now |= one,
            Err(err) if unsupported(err) => {
                log::warn!(
                    "{what}: inode flag {bit:#x} not restored: the filesystem does not keep it"
                )
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// The no-copy-on-write flag works only on an empty file: set before any byte is written.
pub fn apply_early_flags(fd: BorrowedFd<'_>, flags: u32, is_root: bool) {
    let early = flags & IFlags::NOCOW.bits();
    if early != 0 && is_root {
        // Only btrfs keeps it; elsewhere apply_flags warns once at the end.
        let _ = rfs::ioctl_getflags(fd)
            .and_then(|have| rfs::ioctl_setflags(fd, have | IFlags::from_bits_retain(early)));
    }
}

/// Lifts immutable and append-only from a folder an earlier (interrupted) restore finished, so
/// a rerun can apply metadata to it again; [`apply_flags`] puts them back at the end.
/// Only the flags the snapshot records (`recorded`) are lifted: an admin's own `chattr +i` on a
/// folder in DEST is left in force, and writing into it fails and is reported.
pub fn lift_protective_flags(fd: BorrowedFd<'_>, recorded: u32, is_root: bool) -> io::Result<()> {
    let lift = IFlags::from_bits_retain(recorded) & PROTECTIVE;
    if !is_root || lift.is_empty() {
        return Ok(());
    }
    let have = match rfs::ioctl_getflags(fd) {
        Ok(f) => f,
        // Filesystems without inode flags (tmpfs before 6.0, FUSE) have none to lift.
        Err(rustix::io::Errno::NOTTY | rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => {
            return Ok(())
        }
        Err(e) => return Err(e.into()),
    };
    if have.intersects(lift) {
        rfs::ioctl_setflags(fd, have - lift)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RootMeta;
    use std::os::unix::fs::MetadataExt;

    fn entry(kind: EntryKind, mode: u32, uid: u32) -> Entry {
        // Through serde: the fields of RootMeta grow with the format (flags in 1.2).
        let meta: RootMeta = serde_json::from_value(serde_json::json!({
            "mode": mode, "uid": uid, "gid": uid, "mtime_sec": 1_000_000_000, "mtime_nsec": 5,
        }))
        .unwrap();
        let mut e = meta.as_entry();
        e.kind = kind;
        e
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn open(p: &std::path::Path) -> OwnedFd {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rfs::open(p, flags, Mode::empty()).unwrap()
    }

    #[test]
    fn a_new_file_is_written_by_descriptor_and_never_through_a_link() {
        let t = tempfile::tempdir().unwrap();
        let dir = open(t.path());
        let owner = is_root().then_some((4242, 4242));
        write_new_file_at(dir.as_fd(), b"cyrus.header", b"hdr", 0o640, owner).unwrap();
        let md = std::fs::symlink_metadata(t.path().join("cyrus.header")).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o640);
        if is_root() {
            assert_eq!(md.uid(), 4242);
        }
        std::fs::write(t.path().join("target"), b"keep").unwrap();
        std::os::unix::fs::symlink("target", t.path().join("l")).unwrap();
        assert!(write_new_file_at(dir.as_fd(), b"l", b"x", 0o644, owner).is_err());
        assert_eq!(std::fs::read(t.path().join("target")).unwrap(), b"keep");
    }

    #[test]
    fn setuid_survives_the_owner_change() {
        let t = tempfile::tempdir().unwrap();
        let dir = open(t.path());
        let fd = create_file_at(dir.as_fd(), b"f").unwrap();
        let uid = if is_root() {
            4242
        } else {
            rustix::process::geteuid().as_raw()
        };
        apply_fd(
            fd.as_fd(),
            &entry(EntryKind::File, 0o4755, uid),
            is_root(),
            &"f",
        )
        .unwrap();
        let md = std::fs::symlink_metadata(t.path().join("f")).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o4755);
        assert_eq!(
            (md.uid(), md.mtime(), md.mtime_nsec()),
            (uid, 1_000_000_000, 5)
        );
    }

    #[test]
    fn a_special_file_with_another_name_never_gets_our_metadata() {
        let t = tempfile::tempdir().unwrap();
        let dir = open(t.path());
        let e = entry(EntryKind::Fifo, 0o640, 0);
        make_special_at(dir.as_fd(), b"a", &e).unwrap();
        std::fs::hard_link(t.path().join("a"), t.path().join("b")).unwrap();
        let before = std::fs::symlink_metadata(t.path().join("a"))
            .unwrap()
            .mode();
        let mut want = e.clone();
        want.mode = 0o666;
        let err = apply_special_at(dir.as_fd(), b"b", &want, is_root(), false, &"b").unwrap_err();
        assert!(is_replaced(&err), "{err}");
        assert_eq!(
            std::fs::symlink_metadata(t.path().join("a"))
                .unwrap()
                .mode(),
            before
        );
        // A symlink gets owner and times on the link itself, never on its target.
        let mut link = entry(
            EntryKind::Symlink,
            0o777,
            rustix::process::geteuid().as_raw(),
        );
        link.target = b"a".to_vec();
        make_special_at(dir.as_fd(), b"l", &link).unwrap();
        apply_special_at(dir.as_fd(), b"l", &link, is_root(), true, &"l").unwrap();
        let md = std::fs::symlink_metadata(t.path().join("l")).unwrap();
        assert_eq!((md.mtime(), md.mtime_nsec()), (1_000_000_000, 5));
        assert_ne!(
            std::fs::symlink_metadata(t.path().join("a"))
                .unwrap()
                .mtime(),
            1_000_000_000
        );
    }

    #[test]
    fn names_that_exist_are_never_taken_over() {
        let t = tempfile::tempdir().unwrap();
        let dir = open(t.path());
        std::fs::create_dir(t.path().join("outside")).unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), t.path().join("d")).unwrap();
        assert!(is_replaced(&make_dir_at(dir.as_fd(), b"d").unwrap_err()));
        assert!(is_replaced(&open_dir_at(dir.as_fd(), b"d").unwrap_err()));
        assert!(create_file_at(dir.as_fd(), b"d").is_err());
        std::fs::write(t.path().join("outside/keep"), b"x").unwrap();
        std::fs::create_dir(t.path().join("tree")).unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), t.path().join("tree/in")).unwrap();
        remove_at(dir.as_fd(), b"tree").unwrap();
        assert!(!t.path().join("tree").exists());
        assert!(t.path().join("outside/keep").exists());
    }

    #[test]
    fn protective_flags_go_on_last_and_come_off_for_a_rerun() {
        if !is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let dir = open(t.path());
        let sub = make_dir_at(dir.as_fd(), b"d").unwrap();
        let imm = IFlags::IMMUTABLE.bits();
        match apply_flags(sub.as_fd(), imm, true, &"d") {
            Ok(()) => {}
            // A filesystem without inode flags: nothing to test here.
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => return,
            Err(e) => panic!("{e}"),
        }
        assert!(create_file_at(sub.as_fd(), b"f").is_err());
        lift_protective_flags(sub.as_fd(), imm, true).unwrap();
        create_file_at(sub.as_fd(), b"f").unwrap();
        // Flags the snapshot does not record are left alone.
        apply_flags(sub.as_fd(), imm, true, &"d").unwrap();
        lift_protective_flags(sub.as_fd(), 0, true).unwrap();
        assert!(rfs::ioctl_getflags(&sub)
            .unwrap()
            .contains(IFlags::IMMUTABLE));
        lift_protective_flags(sub.as_fd(), imm, true).unwrap();
    }
}
