//! Applies recorded metadata to restored files (owner, mode, xattrs, times) and creates special
//! files, never following symlinks. Thin, careful wrappers over the libc calls Rust's std lacks.

use crate::model::{Entry, EntryKind};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn symlink(target: &[u8], path: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path)
}

/// Creates a fifo, device node or socket file.
pub fn mknod(path: &Path, e: &Entry) -> io::Result<()> {
    let c = cpath(path)?;
    let mode = e.kind.mode_bits() | (e.mode & 0o777);
    // SAFETY: c is a valid NUL-terminated path.
    check(unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, e.rdev as libc::dev_t) })
}

/// Owner (when root), mode, xattrs and times, in the order that keeps setuid bits and mtimes.
pub fn apply(path: &Path, e: &Entry, is_root: bool) -> io::Result<()> {
    let c = cpath(path)?;
    if is_root {
        // SAFETY: c is a valid path; lchown does not follow symlinks.
        check(unsafe { libc::lchown(c.as_ptr(), e.uid, e.gid) })?;
    }
    for x in &e.xattrs {
        let name = CString::new(x.name.clone())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "xattr name has NUL"))?;
        // SAFETY: pointers are valid for the given lengths.
        let rc = unsafe {
            libc::lsetxattr(
                c.as_ptr(),
                name.as_ptr(),
                x.value.as_ptr().cast(),
                x.value.len(),
                0,
            )
        };
        if rc < 0 {
            log::warn!(
                "{}: xattr {} not restored: {}",
                path.display(),
                String::from_utf8_lossy(&x.name),
                io::Error::last_os_error()
            );
        }
    }
    if e.kind != EntryKind::Symlink {
        // chmod after chown: chown clears setuid/setgid.
        // SAFETY: c is a valid path.
        check(unsafe { libc::chmod(c.as_ptr(), e.mode as libc::mode_t) })?;
    }
    let times = [
        libc::timespec {
            tv_sec: e.mtime.sec as libc::time_t,
            tv_nsec: e.mtime.nsec as libc::c_long,
        },
        libc::timespec {
            tv_sec: e.mtime.sec as libc::time_t,
            tv_nsec: e.mtime.nsec as libc::c_long,
        },
    ];
    // SAFETY: c is valid, times points to two timespecs.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}
