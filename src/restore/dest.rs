//! Opens the folder a restore writes into (DEST, named by the admin) once, as a descriptor that
//! the restore then walks below with `*at` calls.
//!
//! DEST's path is walked one component at a time from `/` (or the working folder), each
//! component looked up in the folder before it without following a symlink. A symlink on the
//! way is followed only where nobody but root or the user running the restore could have put it
//! there: in a folder owned by one of them that nobody else can write (group root may), or in a
//! sticky folder such as `/tmp` when the symlink itself is theirs (the kernel's
//! `protected_symlinks` rule). So `/var/spool/cyrus -> /data/cyrus` made by the admin works,
//! while a mailbox folder that its owner swapped for a symlink to `/etc` is refused with an error
//! naming it. Missing folders are made one by one (`mkdirat`, then 0755 or the asked mode and
//! owner set on the descriptor) and opened with `O_NOFOLLOW`, so a name swapped between the two
//! is refused too.

use crate::model::EntryKind;
use crate::restore::fsmeta::{kind_of, open_dir_at, stat_at};
use rustix::fs::{self as rfs, Mode, OFlags, Stat};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Symlinks followed on the way, as the kernel's own limit.
const MAX_FOLLOWS: usize = 40;

fn open_abs(p: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rfs::open(p, flags, Mode::empty())?)
}

fn components(bytes: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    bytes
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
}

/// Whether a symlink `link` in the folder `dir` can only have been made by root or by us.
fn trusted_link(dir: &Stat, link: &Stat) -> bool {
    let euid = rustix::process::geteuid().as_raw();
    let trusted = |uid: u32| uid == 0 || uid == euid;
    let others_write = dir.st_mode & 0o002 != 0;
    let group_write = dir.st_mode & 0o020 != 0 && dir.st_gid != 0;
    let sticky = dir.st_mode & 0o1000 != 0;
    trusted(dir.st_uid) && ((!others_write && !group_write) || (sticky && trusted(link.st_uid)))
}

/// Opens DEST (see the module doc), creating it and its missing parents when `create`.
pub fn open_dest(path: &Path, create: bool) -> io::Result<OwnedFd> {
    open_folder(path, create.then_some(NewFolders::default()))
}

/// How [`open_folder`] makes the folders it finds missing.
#[derive(Clone, Copy, Debug)]
pub struct NewFolders {
    /// Permission bits, set on the folder's descriptor (not left to the umask).
    pub mode: u32,
    /// Owner and group, set on the descriptor when root restores; `None` keeps root's.
    pub owner: Option<(u32, u32)>,
}

impl Default for NewFolders {
    fn default() -> Self {
        NewFolders {
            mode: 0o755,
            owner: None,
        }
    }
}

/// Opens the folder `path` as a restore opens DEST (see the module doc), making the missing
/// ones as `new` says (none made when `None`). For restore code that writes other files than a
/// snapshot's (e.g. a Cyrus mailbox's new header): open the folder here, then write with
/// [`crate::restore::fsmeta::write_new_file_at`].
pub fn open_folder(path: &Path, new: Option<NewFolders>) -> io::Result<OwnedFd> {
    let raw = path.as_os_str().as_bytes();
    let mut cur = open_abs(if raw.starts_with(b"/") { "/" } else { "." })?;
    let mut todo: VecDeque<Vec<u8>> = components(raw).collect();
    let mut follows = 0;
    while let Some(c) = todo.pop_front() {
        if c == b".." {
            cur = open_dir_at(cur.as_fd(), b"..")?;
            continue;
        }
        let shown = || String::from_utf8_lossy(&c).into_owned();
        match stat_at(cur.as_fd(), &c)? {
            None if new.is_some() => {
                let made = match rfs::mkdirat(&cur, c.as_slice(), Mode::from_raw_mode(0o700)) {
                    Ok(()) => true,
                    Err(rustix::io::Errno::EXIST) => false,
                    Err(e) => return Err(e.into()),
                };
                cur = open_dir_at(cur.as_fd(), &c)?;
                if let (true, Some(n)) = (made, new) {
                    if let (Some((uid, gid)), true) =
                        (n.owner, rustix::process::geteuid().is_root())
                    {
                        rfs::fchown(
                            &cur,
                            Some(rfs::Uid::from_raw(uid)),
                            Some(rfs::Gid::from_raw(gid)),
                        )?;
                    }
                    rfs::fchmod(&cur, Mode::from_raw_mode(n.mode & 0o7777))?;
                }
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} does not exist", shown()),
                ))
            }
            Some(st) if kind_of(&st) == Some(EntryKind::Symlink) => {
                let dir = rfs::fstat(&cur)?;
                if !trusted_link(&dir, &st) {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "{} is a symlink in a folder that uid {} (or others) can change: not \
                             followed; give the real path",
                            shown(),
                            dir.st_uid
                        ),
                    ));
                }
                follows += 1;
                if follows > MAX_FOLLOWS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = rfs::readlinkat(&cur, c.as_slice(), Vec::new())?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    cur = open_abs("/")?;
                }
                for t in components(target).collect::<Vec<_>>().into_iter().rev() {
                    todo.push_front(t);
                }
            }
            Some(st) if kind_of(&st) != Some(EntryKind::Dir) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a folder", shown()),
                ))
            }
            Some(_) => cur = open_dir_at(cur.as_fd(), &c)?,
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn ino(fd: &OwnedFd) -> u64 {
        rfs::fstat(fd).unwrap().st_ino
    }

    #[test]
    fn creates_missing_folders_and_follows_trusted_links() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        symlink("real", t.path().join("link")).unwrap();
        let fd = open_dest(&t.path().join("link/a/b"), true).unwrap();
        let md = std::fs::metadata(real.join("a/b")).unwrap();
        assert_eq!(ino(&fd), std::os::unix::fs::MetadataExt::ino(&md));
        assert!(open_dest(&t.path().join("link/missing"), false).is_err());
    }

    #[test]
    fn refuses_a_link_in_a_folder_others_can_write() {
        let t = tempfile::tempdir().unwrap();
        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::create_dir(t.path().join("elsewhere")).unwrap();
        symlink("../elsewhere", open.join("mailbox")).unwrap();
        let e = open_dest(&open.join("mailbox/Restored"), true).unwrap_err();
        assert!(e.to_string().contains("not followed"), "{e}");
        assert!(!t.path().join("elsewhere/Restored").exists());
        // The same link in a folder only we can write is ours to follow.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        open_dest(&open.join("mailbox/Restored"), true).unwrap();
        assert!(t.path().join("elsewhere/Restored").is_dir());
    }

    #[test]
    fn new_folders_get_their_mode_and_owner_on_the_descriptor() {
        let t = tempfile::tempdir().unwrap();
        let root = rustix::process::geteuid().is_root();
        let owner = root.then_some((4242, 4243));
        let new = NewFolders {
            mode: 0o2750,
            owner,
        };
        open_folder(&t.path().join("a/b"), Some(new)).unwrap();
        for p in ["a", "a/b"] {
            let md = std::fs::metadata(t.path().join(p)).unwrap();
            assert_eq!(md.permissions().mode() & 0o7777, 0o2750, "{p}");
            if root {
                use std::os::unix::fs::MetadataExt;
                assert_eq!((md.uid(), md.gid()), (4242, 4243), "{p}");
            }
        }
    }

    #[test]
    fn a_file_on_the_way_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"x").unwrap();
        let e = open_dest(&t.path().join("f/x"), true).unwrap_err();
        assert!(e.to_string().contains("not a folder"), "{e}");
    }
}
