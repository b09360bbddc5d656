//! The kernel side of a mount: checking the mount point, making the mount, and taking down only
//! our own.
//!
//! As root we call mount(2) ourselves with type `fuse.bmbackup` and the store as the source, so
//! `findmnt -t fuse.bmbackup`, `mount -a` (which compares fstab lines with the kernel's table)
//! and an admin reading `/proc/mounts` all see what is mounted. Then no library code ever
//! unmounts by path: a path names whatever is mounted there *now*, which after
//! `fusermount3 -uz` and a new mount is another daemon's mount. We remember our mount's device
//! number and unmount the path only while it still shows that device. Without root, fuser
//! mounts through the setuid `fusermount3` as before.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The kernel's name for our filesystem type (`fuse.` + subtype).
pub const FS_TYPE: &str = "fuse.bmbackup";

#[derive(Debug, thiserror::Error)]
pub enum MountPointError {
    #[error(
        "{0} is already mounted by bmbackup (source {1}); unmount it first: fusermount3 -u {0}"
    )]
    AlreadyMounted(String, String),
    #[error("{0} is not a folder: a mount point must be an empty folder")]
    NotAFolder(String),
    #[error("{0} is not empty: mount on an empty folder, or pass -o nonempty to hide its files while mounted")]
    NotEmpty(String),
    #[error("mount point {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// One line of /proc/self/mountinfo that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub dev: u64,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// The mounts of this process's namespace, in mount order.
pub fn mounts() -> io::Result<Vec<MountEntry>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let (major, minor) = f.get(2)?.split_once(':')?;
            let dev = libc::makedev(major.parse().ok()?, minor.parse().ok()?);
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountEntry {
                dev,
                mount_point: PathBuf::from(unescape(f.get(4)?)),
                fs_type: r.first()?.to_string(),
                source: unescape(r.get(1)?),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_ours(e: &MountEntry) -> bool {
    e.fs_type == FS_TYPE || (e.fs_type == "fuse" && e.source == "bmbackup")
}

/// Refuses a mount point that would stack on a live bmbackup mount, hide a file, or hide a
/// folder's contents (unless `nonempty`). A dead mount ("Transport endpoint is not connected")
/// is for the caller to clear first.
pub fn check_mount_point(mountpoint: &Path, nonempty: bool) -> Result<(), MountPointError> {
    let shown = mountpoint.display().to_string();
    let io_err = |source| MountPointError::Io {
        path: shown.clone(),
        source,
    };
    let md = std::fs::metadata(mountpoint).map_err(io_err)?;
    if let Ok(all) = mounts() {
        if let Ok(canon) = std::fs::canonicalize(mountpoint) {
            // The last mount on a path is the one it shows.
            if let Some(top) = all.iter().rev().find(|e| e.mount_point == canon) {
                if is_ours(top) && top.dev == md.dev() {
                    return Err(MountPointError::AlreadyMounted(shown, top.source.clone()));
                }
            }
        }
    }
    if !md.is_dir() {
        return Err(MountPointError::NotAFolder(shown));
    }
    if !nonempty
        && std::fs::read_dir(mountpoint)
            .map_err(io_err)?
            .next()
            .is_some()
    {
        return Err(MountPointError::NotEmpty(shown));
    }
    Ok(())
}

/// What a direct mount needs to know.
pub struct DirectMount<'a> {
    pub source: &'a str,
    pub allow_other: bool,
    pub noexec: bool,
}

/// Mounts `/dev/fuse` on `mountpoint` with mount(2) (root only) and returns the descriptor to
/// serve, or `None` when this process may not mount (then fusermount3 must).
pub fn mount_direct(mountpoint: &Path, how: &DirectMount<'_>) -> io::Result<Option<OwnedFd>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let root_mode = std::fs::metadata(mountpoint)?.mode() & libc::S_IFMT;
    let dev = CString::new("/dev/fuse").map_err(io::Error::other)?;
    // SAFETY: a valid NUL-terminated path; the returned descriptor is owned below.
    let fd = unsafe { libc::open(dev.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned only here.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut data =
        format!("fd={fd},rootmode={root_mode:o},user_id=0,group_id=0,default_permissions");
    if how.allow_other {
        data.push_str(",allow_other");
    }
    let mut flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME;
    if how.noexec {
        flags |= libc::MS_NOEXEC;
    }
    let c = |s: &[u8]| CString::new(s).map_err(io::Error::other);
    let (source, target, fstype, data) = (
        c(how.source.as_bytes())?,
        c(mountpoint.as_os_str().as_bytes())?,
        c(FS_TYPE.as_bytes())?,
        c(data.as_bytes())?,
    );
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            return Ok(None);
        }
        return Err(e);
    }
    Ok(Some(owned))
}

/// The device number of the newest bmbackup mount on `mountpoint`, from the mount table: a
/// `stat` of the path would wait for the FUSE session that is not serving yet.
pub fn device_of(mountpoint: &Path) -> io::Result<u64> {
    let canon = std::fs::canonicalize(mountpoint.parent().unwrap_or(Path::new("/")))?
        .join(mountpoint.file_name().unwrap_or_default());
    mounts()?
        .into_iter()
        .rev()
        .find(|e| e.mount_point == canon && e.fs_type == FS_TYPE)
        .map(|e| e.dev)
        .ok_or_else(|| {
            io::Error::other(format!(
                "{} is not in the mount table after mount(2)",
                canon.display()
            ))
        })
}

/// Unmounts `mountpoint` only while it still shows our mount (`our_dev`); a busy mount is
/// detached (lazy). Returns false when the path shows something else: then nothing is touched.
pub fn unmount_if_ours(mountpoint: &Path, our_dev: u64) -> io::Result<bool> {
    match std::fs::metadata(mountpoint) {
        Ok(md) if md.dev() == our_dev => {}
        _ => return Ok(false),
    }
    let target = CString::new(mountpoint.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: a valid NUL-terminated path. UMOUNT_NOFOLLOW: a symlink put there meanwhile is
    // not followed to another mount.
    if unsafe { libc::umount2(target.as_ptr(), libc::UMOUNT_NOFOLLOW) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EBUSY) {
        return Err(e);
    }
    // SAFETY: as above.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) } == 0 {
        Ok(true)
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let text = "36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    40 36 0:52 / /var/backups/blue\\040mind ro,nosuid - fuse.bmbackup /srv/bm\\040store ro,user_id=0\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].fs_type, "fuse.bmbackup");
        assert_eq!(m[1].source, "/srv/bm store");
        assert_eq!(m[1].mount_point, PathBuf::from("/var/backups/blue mind"));
        assert_eq!(m[1].dev, libc::makedev(0, 52));
        assert!(is_ours(&m[1]) && !is_ours(&m[0]));
    }

    #[test]
    fn a_file_or_a_full_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            check_mount_point(&file, false),
            Err(MountPointError::NotAFolder(_))
        ));
        assert!(matches!(
            check_mount_point(dir.path(), false),
            Err(MountPointError::NotEmpty(_))
        ));
        assert!(check_mount_point(dir.path(), true).is_ok());
        let empty = dir.path().join("e");
        std::fs::create_dir(&empty).unwrap();
        assert!(check_mount_point(&empty, false).is_ok());
    }
}
