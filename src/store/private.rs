//! Private files: the store and the catalog hold every user's mail, so everything bmbackup creates
//! in them belongs to its owner alone (folders 0700, files 0600), whatever the umask. Modes are set
//! on the open descriptor right after creation (the umask can only take bits away, never give
//! them; an explicit `fchmod` makes the result exact). Also finds the files of a store that others
//! can reach ([`loose_modes`], made by an older bmbackup or chmod'ed) and tightens them
//! ([`tighten`]).

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every folder bmbackup creates in a store or a cache.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file bmbackup creates in a store or a cache.
pub const FILE_MODE: u32 = 0o600;
/// Permission bits that let someone other than the owner in.
pub const OTHERS: u32 = 0o077;

/// Creates `dir` and its missing parents, each 0700. Folders that exist are left as they are
/// (a cache folder such as `/tmp` must never be re-moded).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => set_mode(dir, DIR_MODE, true),
        // Another process made it in between.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets `path`'s mode through a descriptor opened without following a symlink. A folder the
/// umask left unreadable even to its owner cannot be opened by a non-root owner: then by path.
fn set_mode(path: &Path, mode: u32, dir: bool) -> io::Result<()> {
    let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC | if dir { libc::O_DIRECTORY } else { 0 };
    match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f.set_permissions(Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            fs::set_permissions(path, Permissions::from_mode(mode))
        }
        Err(e) => Err(e),
    }
}

/// Creates a new file 0600 for writing; fails if `path` exists (also as a symlink).
pub fn create_new(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

/// Makes a file the caller owns 0600 (an older bmbackup's 0644 catalog is tightened the next
/// time it is opened); a missing file is created 0600 only when `create`.
///
/// An existing file is never opened: it is looked at with `lstat` and, only when others may
/// read it, re-moded by path. Closing any descriptor of a file drops every POSIX lock the
/// process holds on it, and SQLite's locks on a live catalog are POSIX locks: opening and
/// closing the catalog beside a connection of the same process made another process believe
/// it was the last user and delete the WAL (SQLite's "how to corrupt", 2.2).
pub fn make_private(path: &Path, create: bool) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => match create_new(path) {
            Ok(_) => Ok(()),
            // Another process made it in between: check that one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => make_private(path, false),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
        Ok(md) if md.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is a symbolic link, not a file", path.display()),
        )),
        Ok(md) if md.permissions().mode() & OTHERS != 0 => {
            fs::set_permissions(path, Permissions::from_mode(FILE_MODE))
        }
        Ok(_) => Ok(()),
    }
}

/// The mode of `path` when others may reach it (any group or other bit), not following symlinks.
pub fn loose_mode(path: &Path) -> io::Result<Option<u32>> {
    let md = fs::symlink_metadata(path)?;
    let mode = md.permissions().mode() & 0o7777;
    Ok((!md.file_type().is_symlink() && mode & OTHERS != 0).then_some(mode))
}

/// Whether `root` itself or one of its direct entries lets others in: cheap enough for every
/// command (a handful of stats), and what an older bmbackup always left behind.
pub fn top_is_loose(root: &Path) -> io::Result<Option<(PathBuf, u32)>> {
    if let Some(m) = loose_mode(root)? {
        return Ok(Some((root.to_path_buf(), m)));
    }
    for e in fs::read_dir(root)? {
        let p = e?.path();
        if let Some(m) = loose_mode(&p)? {
            return Ok(Some((p, m)));
        }
    }
    Ok(None)
}

/// Every file and folder under `root` (itself included) whose mode lets others in.
pub fn loose_modes(root: &Path) -> io::Result<Vec<(PathBuf, u32)>> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let md = match fs::symlink_metadata(&p) {
            Ok(md) => md,
            // Removed while we looked (a temp file renamed, a lock rotated).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(m) = loose_mode(&p).unwrap_or(None) {
            out.push((p.clone(), m));
        }
        if md.is_dir() {
            match fs::read_dir(&p) {
                Ok(rd) => {
                    for e in rd {
                        todo.push(e?.path());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Takes the group and other bits off everything under `root`; returns what it changed.
pub fn tighten(root: &Path) -> io::Result<Vec<(PathBuf, u32)>> {
    let loose = loose_modes(root)?;
    for (p, mode) in &loose {
        let dir = fs::symlink_metadata(p)?.is_dir();
        set_mode(p, mode & !OTHERS, dir)?;
    }
    Ok(loose)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn created_files_and_folders_are_private() {
        // The umask is process-wide and tests run in threads: the e2e tests run the binary
        // under other umasks (tests/security_cli.rs).
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b");
        let f = d.join("f");
        create_dir_all(&d).unwrap();
        create_new(&f).unwrap();
        assert_eq!(mode(&d), DIR_MODE);
        assert_eq!(mode(d.parent().unwrap()), DIR_MODE);
        assert_eq!(mode(&f), FILE_MODE);
        assert!(create_new(&f).is_err(), "never reopens an existing file");
        // An existing folder keeps its mode.
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, Permissions::from_mode(0o1777)).unwrap();
        create_dir_all(&shared).unwrap();
        assert_eq!(mode(&shared), 0o1777);
    }

    #[test]
    fn loose_modes_are_found_and_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        create_dir_all(&root.join("packs/ab")).unwrap();
        create_new(&root.join("packs/ab/x.pack")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        assert!(loose_modes(&root).unwrap().is_empty());
        assert!(top_is_loose(&root).unwrap().is_none());
        fs::set_permissions(root.join("packs/ab/x.pack"), Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(root.join("packs"), Permissions::from_mode(0o755)).unwrap();
        let loose = loose_modes(&root).unwrap();
        assert_eq!(
            loose,
            vec![
                (root.join("packs"), 0o755),
                (root.join("packs/ab/x.pack"), 0o644)
            ]
        );
        assert_eq!(
            top_is_loose(&root).unwrap(),
            Some((root.join("packs"), 0o755))
        );
        assert_eq!(tighten(&root).unwrap(), loose);
        assert!(loose_modes(&root).unwrap().is_empty());
        assert_eq!(mode(&root.join("packs/ab/x.pack")), 0o600);
        assert_eq!(
            mode(Path::new("/etc")) & OTHERS,
            0o055,
            "symlinks are not followed"
        );
    }
}
