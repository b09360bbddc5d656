//! A small tree holding every kind of file and metadata a backup must round-trip: holes, hard
//! links, symlinks, special files, odd names, xattrs, owners, setuid, extreme timestamps.
//! What the process is not allowed to create (device nodes, chown, xattrs) is skipped with a
//! warning, so the tree is as complete as the machine allows.

use super::rng::Rng;
use super::{c_path, prepare_empty_root, set_mode, set_times, GenError, IoContext};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Timestamps outside the usual range: before 1970 and after 2038 (32-bit `time_t` overflow).
const BEFORE_1970: (i64, u32) = (-1_000_000_000, 5);
const AFTER_2038: (i64, u32) = (4_102_444_801, 999_999_999);

fn os_err(rc: libc::c_int, op: &'static str, path: &Path) -> Result<(), GenError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error()).ctx(op, path)
    }
}

/// True for errors meaning "not allowed here" rather than "broken".
fn refused(e: &GenError) -> bool {
    match e {
        GenError::Io { source, .. } => matches!(
            source.raw_os_error(),
            Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::ENOTSUP) | Some(libc::EINVAL)
        ),
        _ => false,
    }
}

/// Runs an optional step; a refusal by the system is logged and skipped.
fn optional(what: &str, r: Result<(), GenError>) -> Result<(), GenError> {
    match r {
        Err(e) if refused(&e) => {
            log::warn!("skipping {what}: {e}");
            Ok(())
        }
        other => other,
    }
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), GenError> {
    std::fs::write(path, bytes).ctx("write", path)?;
    set_mode(path, mode)
}

fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) -> Result<(), GenError> {
    let c = c_path(path)?;
    // SAFETY: valid C string; mknod has no memory effects.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | 0o640, libc::makedev(major, minor)) };
    os_err(rc, "mknod", path)?;
    // mknod's mode passes through the umask; set it explicitly.
    set_mode(path, 0o640)
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), GenError> {
    let c = c_path(path)?;
    // SAFETY: valid C string.
    let rc = unsafe { libc::lchown(c.as_ptr(), uid, gid) };
    os_err(rc, "chown", path)
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<(), GenError> {
    let c = c_path(path)?;
    let n = std::ffi::CString::new(name).map_err(|_| GenError::InvalidSpec(name.to_string()))?;
    // SAFETY: valid C strings; `value` is a live slice of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    os_err(rc, "set xattr on", path)
}

/// Builds the tree under `root` (created if missing; must be empty). Every mode is set
/// explicitly, never left to the umask, so the tree is identical under any umask.
pub fn generate_tree_with_every_file_type(root: &Path) -> Result<(), GenError> {
    prepare_empty_root(root)?;
    let p = |name: &str| root.join(name);
    let is_root = {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    };

    write(&p("regular.txt"), b"hello, backup\n", 0o644)?;
    write(&p("empty"), b"", 0o644)?;
    write(&p("readonly"), b"read only\n", 0o400)?;

    // Sparse: 16 MiB with data at 0 and at 8 MiB, holes elsewhere.
    let sparse = p("sparse.img");
    let f = std::fs::File::create(&sparse).ctx("create", &sparse)?;
    f.set_len(16 << 20).ctx("extend", &sparse)?;
    f.write_all_at(b"head", 0).ctx("write", &sparse)?;
    f.write_all_at(b"middle of the hole", 8 << 20)
        .ctx("write", &sparse)?;
    drop(f);
    set_mode(&sparse, 0o644)?;

    // Several chunks of incompressible (but seeded) data, not a multiple of any block size.
    let mut big = vec![0u8; (5 << 20) + 12_345];
    Rng::new(0xb16).fill(&mut big);
    write(&p("big.bin"), &big, 0o644)?;

    // Hard links: three names for one inode, across directories.
    std::fs::create_dir_all(p("links/sub")).ctx("create", &p("links/sub"))?;
    set_mode(&p("links"), 0o755)?;
    set_mode(&p("links/sub"), 0o750)?;
    write(&p("hardlink-a"), b"one inode, three names\n", 0o644)?;
    std::fs::hard_link(p("hardlink-a"), p("links/hardlink-b"))
        .ctx("link", &p("links/hardlink-b"))?;
    std::fs::hard_link(p("hardlink-a"), p("links/sub/hardlink-c"))
        .ctx("link", &p("links/sub/hardlink-c"))?;
    // A second group of two, so group structure (not just "linked or not") is tested.
    write(&p("links/pair-1"), b"second group\n", 0o600)?;
    std::fs::hard_link(p("links/pair-1"), p("links/sub/pair-2"))
        .ctx("link", &p("links/sub/pair-2"))?;

    // Symlinks: relative, absolute, dangling, to a directory.
    let symlink = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, p(name)).ctx("symlink", &p(name))
    };
    symlink("regular.txt", "sym-relative")?;
    symlink("/etc/hostname", "sym-absolute")?;
    symlink("does/not/exist", "sym-dangling")?;
    symlink("links/sub", "sym-dir")?;

    let fifo = p("fifo");
    let c = c_path(&fifo)?;
    // SAFETY: valid C string.
    os_err(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, "mkfifo", &fifo)?;
    set_mode(&fifo, 0o644)?;
    optional("char device", mknod(&p("chardev"), libc::S_IFCHR, 1, 3))?;
    optional("block device", mknod(&p("blockdev"), libc::S_IFBLK, 7, 200))?;
    let sock = p("socket");
    drop(std::os::unix::net::UnixListener::bind(&sock).ctx("bind", &sock)?);
    set_mode(&sock, 0o755)?;

    // Names: not UTF-8, 255 bytes (the Linux maximum), and a 30-level deep path.
    let latin1 = root.join(OsStr::from_bytes(b"caf\xe9"));
    write(&latin1, b"latin-1 name\n", 0o644)?;
    let odd_dir = root.join(OsStr::from_bytes(b"dir-\xff\xfe"));
    std::fs::create_dir(&odd_dir).ctx("create", &odd_dir)?;
    set_mode(&odd_dir, 0o755)?;
    write(
        &odd_dir.join(OsStr::from_bytes(b"inside-\x80")),
        b"x\n",
        0o644,
    )?;
    write(&root.join("n".repeat(255)), b"long name\n", 0o644)?;
    let mut deep = p("deep");
    for level in 0..=30 {
        std::fs::create_dir_all(&deep).ctx("create", &deep)?;
        set_mode(&deep, 0o755)?;
        deep.push(format!("level-{level:02}"));
    }
    deep.pop();
    write(&deep.join("leaf"), b"deep leaf\n", 0o644)?;

    // Extended attributes (user namespace), including binary and empty values.
    let xattrs = || -> Result<(), GenError> {
        set_xattr(&p("regular.txt"), "user.comment", b"hello xattr")?;
        set_xattr(&p("regular.txt"), "user.binary", &[0, 1, 2, 0xff])?;
        set_xattr(&p("regular.txt"), "user.empty", b"")?;
        set_xattr(&p("links"), "user.dir", b"on a directory")?;
        set_xattr(&p("hardlink-a"), "user.shared", b"seen through every link")
    };
    optional("user xattrs", xattrs())?;

    // Owners and special mode bits (setuid/setgid after chown, which clears them).
    for (name, mode) in [
        ("owned-1000", 0o644),
        ("owned-nobody", 0o640),
        ("setuid", 0o4755),
        ("setgid", 0o2755),
    ] {
        write(&p(name), format!("{name}\n").as_bytes(), 0o644)?;
        if is_root {
            let id = if name == "owned-nobody" { 65_534 } else { 1000 };
            optional("chown", chown(&p(name), id, id))?;
        }
        set_mode(&p(name), mode)?;
    }
    if is_root {
        optional("chown of a symlink", chown(&p("sym-relative"), 1000, 1000))?;
        optional(
            "chown of a directory",
            chown(&p("links/sub"), 65_534, 65_534),
        )?;
    }
    for (name, mode) in [
        ("private", 0o700),
        ("sticky", 0o1777),
        ("group-dir", 0o2750),
    ] {
        std::fs::create_dir(p(name)).ctx("create", &p(name))?;
        write(&p(name).join("f"), b"f\n", 0o644)?;
        set_mode(&p(name), mode)?;
    }
    set_mode(root, 0o755)?;

    // Times last: children before their directory, since creating entries changes a
    // directory's mtime. Every entry gets a distinct time with nanoseconds.
    let mut counter = 0u32;
    stamp_tree(root, &mut counter)?;
    write_times(&p("old"), b"before 1970\n", BEFORE_1970)?;
    write_times(&p("future"), b"after 2038\n", AFTER_2038)?;
    set_times(&p("sym-dangling"), AFTER_2038.0, AFTER_2038.1)?;
    set_times(root, 1_700_000_000, 123_456_789)
}

fn write_times(path: &Path, bytes: &[u8], (sec, nsec): (i64, u32)) -> Result<(), GenError> {
    write(path, bytes, 0o644)?;
    set_times(path, sec, nsec)
}

fn stamp_tree(dir: &Path, counter: &mut u32) -> Result<(), GenError> {
    let mut names: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("list", dir)? {
        names.push(entry.ctx("list", dir)?.path());
    }
    names.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    for path in names {
        let meta = std::fs::symlink_metadata(&path).ctx("stat", &path)?;
        if meta.is_dir() {
            stamp_tree(&path, counter)?;
        }
        *counter += 1;
        let c = u64::from(*counter);
        set_times(
            &path,
            1_600_000_000 + (c * 86_413) as i64,
            ((c * 123_456_789) % 1_000_000_000) as u32,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    #[test]
    fn tree_has_every_kind() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("t");
        generate_tree_with_every_file_type(&root)?;
        let m = |n: &str| std::fs::symlink_metadata(root.join(n));
        assert!(m("fifo")?.file_type().is_fifo());
        assert!(m("socket")?.file_type().is_socket());
        assert!(m("sym-dangling")?.file_type().is_symlink());
        assert_eq!(m("hardlink-a")?.ino(), m("links/sub/hardlink-c")?.ino());
        assert_eq!(m("hardlink-a")?.nlink(), 3);
        assert_eq!(m("sparse.img")?.len(), 16 << 20);
        assert!(
            m("sparse.img")?.blocks() * 512 < 1 << 20,
            "sparse file is not sparse"
        );
        assert_eq!(m("setuid")?.mode() & 0o7777, 0o4755);
        assert_eq!(m("sticky")?.mode() & 0o7777, 0o1777);
        assert_eq!(m("old")?.mtime(), BEFORE_1970.0);
        assert_eq!(m("future")?.mtime_nsec(), i64::from(AFTER_2038.1));
        assert!(m(&"n".repeat(255))?.is_file());
        assert!(std::fs::symlink_metadata(root.join(OsStr::from_bytes(b"caf\xe9")))?.is_file());
        let mut deep = root.join("deep");
        for level in 0..30 {
            deep.push(format!("level-{level:02}"));
        }
        assert!(deep.join("leaf").is_file());
        // Generating again gives the same times (they come from a counter, not the clock).
        let root2 = dir.path().join("t2");
        generate_tree_with_every_file_type(&root2)?;
        for n in ["regular.txt", "links", "deep", "sym-relative", "fifo"] {
            assert_eq!(
                m(n)?.mtime_nsec(),
                std::fs::symlink_metadata(root2.join(n))?.mtime_nsec()
            );
        }
        Ok(())
    }
}
