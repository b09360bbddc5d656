//! Reads one file's metadata from the source (lstat, xattrs, inode flags) into a tree entry.

use crate::model::{inode_flags, Content, Entry, EntryKind, Timestamp, Xattr};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// The fields of an `lstat` the walk uses, taken relative to the open folder (`fstatat`, one
/// name to look up instead of the whole path from the root each time).
pub struct Lstat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub ino: u64,
    pub nlink: u64,
    pub blocks: u64,
    pub rdev: u64,
    pub dev: u64,
}

impl Lstat {
    /// `lstat` of `name` in the folder open as `dir` (never following a symlink).
    pub fn at(dir: &std::os::fd::OwnedFd, name: &[u8]) -> io::Result<Lstat> {
        let st = rustix::fs::statat(
            dir,
            std::ffi::OsStr::from_bytes(name),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )?;
        // The kernel's field widths differ by architecture; every value fits the widths here.
        #[allow(clippy::unnecessary_cast)]
        Ok(Lstat {
            mode: st.st_mode as u32,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            size: st.st_size as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as u32),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as u32),
            ino: st.st_ino as u64,
            nlink: st.st_nlink as u64,
            blocks: st.st_blocks as u64,
            rdev: st.st_rdev as u64,
            dev: st.st_dev as u64,
        })
    }

    /// `lstat` of a path.
    pub fn of(path: &Path) -> io::Result<Lstat> {
        let md = std::fs::symlink_metadata(path)?;
        Ok(Lstat {
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec() as u32),
            ctime: (md.ctime(), md.ctime_nsec() as u32),
            ino: md.ino(),
            nlink: md.nlink(),
            blocks: md.blocks(),
            rdev: md.rdev(),
            dev: md.dev(),
        })
    }
}

/// Opens a folder for [`Lstat::at`] (`O_PATH`: no read permission needed, nothing read).
pub fn open_dir(path: &Path) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Builds an entry (without content) from `lstat` metadata.
pub fn entry_from_metadata(name: &[u8], md: &Lstat) -> Option<Entry> {
    let kind = EntryKind::from_mode(md.mode)?;
    Some(Entry {
        name: name.to_vec(),
        kind,
        mode: md.mode & 0o7777,
        uid: md.uid,
        gid: md.gid,
        size: if kind == EntryKind::Dir { 0 } else { md.size },
        mtime: Timestamp {
            sec: md.mtime.0,
            nsec: md.mtime.1,
        },
        ctime: Timestamp {
            sec: md.ctime.0,
            nsec: md.ctime.1,
        },
        ino: md.ino,
        // Set by the walk, which numbers the part's filesystems.
        dev: 0,
        nlink: md.nlink as u32,
        blocks: (kind == EntryKind::File).then_some(md.blocks),
        // Read from an open descriptor by the walk (folders) and the reader (files).
        flags: 0,
        rdev: match kind {
            EntryKind::CharDev | EntryKind::BlockDev => md.rdev,
            _ => 0,
        },
        target: Vec::new(),
        xattrs: Vec::new(),
        content: Content::None,
    })
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Every extended attribute of `path` (not following symlinks), sorted by name.
pub fn read_xattrs(path: &Path) -> io::Result<Vec<Xattr>> {
    let c = cpath(path)?;
    let names = loop {
        // SAFETY: a null buffer with size 0 asks for the needed size.
        let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOTSUP) => Ok(Vec::new()),
                _ => Err(e),
            };
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; n as usize];
        // SAFETY: buf is valid for buf.len() bytes.
        let got = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if got >= 0 {
            buf.truncate(got as usize);
            break buf;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
    };
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "xattr name"))?;
        if let Some(value) = get_xattr(&c, &cname)? {
            out.push(Xattr {
                name: name.to_vec(),
                value,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn get_xattr(path: &CString, name: &CString) -> io::Result<Option<Vec<u8>>> {
    loop {
        // SAFETY: null buffer with size 0 asks for the size.
        let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENODATA) => Ok(None),
                _ => Err(e),
            };
        }
        let mut buf = vec![0u8; n as usize];
        // SAFETY: buf is valid for buf.len() bytes.
        let got = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
    }
}

/// The recorded inode flags ([`inode_flags::RECORDED`]) of an open file or folder; 0 where the
/// filesystem has none (FAT, NFS, tmpfs before Linux 6.0 answer ENOTTY or EOPNOTSUPP).
pub fn inode_flags(fd: &impl AsRawFd) -> u32 {
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's ABI, despite the `long` in its
    // definition) into `flags`, which outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
    if rc != 0 {
        return 0;
    }
    (flags as u32) & inode_flags::RECORDED
}

/// Opens `path` only to read its inode flags (a folder, or a file whose content is not read):
/// never follows a symlink swapped in, never blocks on a fifo, never touches atime when allowed.
pub fn path_flags(path: &Path) -> u32 {
    let open = |noatime: libc::c_int| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | noatime)
            .open(path)
    };
    match open(libc::O_NOATIME).or_else(|_| open(0)) {
        Ok(f) => inode_flags(&f),
        Err(_) => 0,
    }
}
