//! What keeps the mount fast and small without changing what it shows: a snapshot root counts
//! its subfolders in `st_nlink` like any folder; each snapshot records whether it has xattrs,
//! and the default `xattr=auto` answers none (ENOSYS: the kernel then stops asking, so `ls -l`
//! costs no xattr round trips) only when every snapshot shown records none; `-o xattr` and
//! `-o noxattr` force them on and off; a backup with xattrs added under an auto-off mount is
//! named in its log and status, to be remounted.

mod common;

use bmbackup::fuse::MountOptions;
use common::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// `lgetxattr(path, name)`: the value, or the errno.
fn getxattr(path: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let (c, n) = (
        CString::new(path.as_os_str().as_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    let mut buf = vec![0u8; 256];
    // SAFETY: `buf` has `buf.len()` writable bytes.
    let len =
        unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

/// `llistxattr(path)`: the NUL-separated names, or the errno.
fn listxattr(path: &Path) -> Result<Vec<u8>, i32> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 1024];
    // SAFETY: `buf` has `buf.len()` writable bytes.
    let len = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

fn remove_xattr(path: &Path, name: &str) {
    let (c, n) = (
        CString::new(path.as_os_str().as_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    // SAFETY: valid C strings.
    assert_eq!(unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) }, 0);
}

fn set_user_xattr(path: &Path, name: &str, value: &[u8]) {
    let (c, n) = (
        CString::new(path.as_os_str().as_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    // SAFETY: valid C strings and a buffer of `value.len()` bytes.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {}", path.display());
}

#[test]
fn a_snapshot_root_counts_its_subfolders() {
    let env = Env::new();
    let src = env.path("src");
    for d in ["a", "b", "c"] {
        write(&src.join(d).join("f"), b"x");
    }
    write(&src.join("top"), b"y");
    write(&src.join("a/sub/g"), b"z");
    env.backup("h", "p", &src);
    let _m = env.mount(Default::default());
    let part = env.mnt().join("h/p");
    let dated = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .find(|n| n != "last")
        .unwrap();
    // `ls -l` of the part folder (readdirplus) and a plain stat (lookup) agree: 2 + a, b, c.
    let listed: Vec<u64> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().nlink())
        .collect();
    assert_eq!(listed, [5, 5]);
    for root in [part.join(&dated), part.join("last")] {
        assert_eq!(std::fs::metadata(&root).unwrap().nlink(), 5, "{root:?}");
    }
    // Below the root, folders already counted theirs.
    assert_eq!(std::fs::metadata(part.join("last/a")).unwrap().nlink(), 3);
}

#[test]
fn xattrs_show_by_default_and_noxattr_turns_them_off() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("d/f"), b"hello");
    write(&src.join("plain"), b"no xattrs");
    set_user_xattr(&src.join("d/f"), "user.origin", b"mail");
    env.backup("h", "p", &src);
    let f = env.mnt().join("h/p/last/d/f");
    let plain = env.mnt().join("h/p/last/plain");
    {
        let _m = env.mount(Default::default());
        assert_eq!(getxattr(&f, "user.origin"), Ok(b"mail".to_vec()));
        assert_eq!(listxattr(&f), Ok(b"user.origin\0".to_vec()));
        assert_eq!(getxattr(&plain, "user.origin"), Err(libc::ENODATA));
        assert_eq!(listxattr(&plain), Ok(Vec::new()));
    }
    let _m = env.mount(MountOptions {
        options: vec!["ro,noxattr".into()],
        ..Default::default()
    });
    assert_eq!(getxattr(&f, "user.origin"), Err(libc::EOPNOTSUPP));
    assert_eq!(listxattr(&f), Err(libc::EOPNOTSUPP));
    assert_eq!(getxattr(&plain, "security.selinux"), Err(libc::EOPNOTSUPP));
    // Everything else is as before.
    assert_eq!(std::fs::read(&f).unwrap(), b"hello");
}

/// A mail-like folder with one message deep down, which gets `user.origin` if `xattr`.
fn spool(env: &Env, name: &str, xattr: bool) -> std::path::PathBuf {
    let src = env.path(name);
    write(&src.join("example.com/user/jdoe/1."), b"one");
    write(
        &src.join("example.com/user/jdoe/Sent/Archive/2026/7."),
        b"deep",
    );
    write(&src.join("example.com/user/ann/1."), b"two");
    if xattr {
        set_user_xattr(
            &src.join("example.com/user/jdoe/Sent/Archive/2026/7."),
            "user.origin",
            b"mail",
        );
    }
    src
}

const DEEP: &str = "example.com/user/jdoe/Sent/Archive/2026/7.";

#[test]
fn each_snapshot_records_whether_it_has_xattrs() {
    let env = Env::new();
    let with = spool(&env, "with", true);
    let without = spool(&env, "without", false);
    assert_eq!(env.backup("h", "with", &with)["has_xattrs"], true);
    assert_eq!(env.backup("h", "without", &without)["has_xattrs"], false);
    // Nothing changed: every entry comes from the parent, xattrs with it.
    assert_eq!(env.backup("h", "with", &with)["has_xattrs"], true);
    assert_eq!(env.backup("h", "without", &without)["has_xattrs"], false);
    // Removing the only xattr changes the file's ctime: it is read again, and none is left.
    remove_xattr(&with.join(DEEP), "user.origin");
    assert_eq!(env.backup("h", "with", &with)["has_xattrs"], false);
    // One on a folder counts too.
    set_user_xattr(&without.join("example.com/user/ann"), "user.k", b"v");
    assert_eq!(env.backup("h", "without", &without)["has_xattrs"], true);
}

#[test]
fn xattr_auto_answers_none_when_no_snapshot_has_any() {
    let env = Env::new();
    env.backup("h", "a", &spool(&env, "a", false));
    env.backup("h", "b", &spool(&env, "b", false));
    let f = env.mnt().join("h/a/last").join(DEEP);
    {
        let _m = env.mount(Default::default());
        // ENOSYS from the daemon, which the kernel turns into EOPNOTSUPP and remembers.
        assert_eq!(getxattr(&f, "security.selinux"), Err(libc::EOPNOTSUPP));
        assert_eq!(listxattr(&f), Err(libc::EOPNOTSUPP));
        assert_eq!(std::fs::read(&f).unwrap(), b"deep");
    }
    // `-o xattr` answers them anyway: there are none.
    let _m = env.mount(MountOptions {
        options: vec!["xattr".into()],
        ..Default::default()
    });
    assert_eq!(getxattr(&f, "security.selinux"), Err(libc::ENODATA));
    assert_eq!(listxattr(&f), Ok(Vec::new()));
}

#[test]
fn xattr_auto_shows_them_when_one_snapshot_has_one() {
    let env = Env::new();
    env.backup("h", "a", &spool(&env, "a", false));
    env.backup("h", "b", &spool(&env, "b", true));
    let _m = env.mount(Default::default());
    let deep = env.mnt().join("h/b/last").join(DEEP);
    assert_eq!(getxattr(&deep, "user.origin"), Ok(b"mail".to_vec()));
    assert_eq!(listxattr(&deep), Ok(b"user.origin\0".to_vec()));
    // The other part's files answer "no such attribute", not "not supported".
    let plain = env.mnt().join("h/a/last").join(DEEP);
    assert_eq!(getxattr(&plain, "user.origin"), Err(libc::ENODATA));
}

#[test]
fn an_old_store_whose_manifests_do_not_say_keeps_xattrs_on() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let env = Env::uninit();
    copy_tree(&fixtures.join("store-v1.1"), &env.store());
    env.ok(&["repair", "--fix-modes"]);
    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0]["has_xattrs"].is_null(), "unknown: {}", snaps[0]);
    let _m = env.mount(Default::default());
    let dump = env.mnt().join("10.0.0.5/mail/imap/last/dump.sql");
    assert_eq!(getxattr(&dump, "user.note"), Ok(b"fixture".to_vec()));
}

/// An auto-off mount cannot show the xattrs of a snapshot that arrives later (the kernel keeps
/// the ENOSYS): its log names the snapshot once and says to remount, systemd's status says so
/// too, and a remount shows them.
#[test]
fn a_snapshot_with_xattrs_added_under_an_auto_off_mount_asks_for_a_remount() {
    use std::os::unix::net::UnixDatagram;
    let env = Env::new();
    env.backup("h", "a", &spool(&env, "a", false));
    let socket_path = env.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let log = env.path("mount.log");
    let _guard = MountGuard::new(&env.mnt());
    let mut daemon = KillOnDrop(Some(
        env.mount_command()
            .arg("--foreground")
            .env("NOTIFY_SOCKET", &socket_path)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    ));
    let recv = || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = recv();
    assert!(ready.contains("READY=1"), "{ready}");
    assert!(ready.contains("; xattrs off (none stored)"), "{ready}");

    let name = env.backup("h", "b", &spool(&env, "b", true))["name"]
        .as_str()
        .unwrap()
        .to_string();
    let deep = env.mnt().join("h/b").join(&name).join(DEEP);
    let t = Instant::now();
    let status = loop {
        let s = recv();
        if s.contains("snapshot with xattrs") {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no status: {s}");
    };
    assert!(
        status.contains("showing 2 snapshots")
            && status.contains("; 1 snapshot with xattrs not shown until remount"),
        "{status}"
    );
    assert_eq!(getxattr(&deep, "user.origin"), Err(libc::EOPNOTSUPP));
    // Another backup without xattrs changes the list, and the warning is not repeated.
    env.backup("h", "a", &spool(&env, "a2", false));
    while !recv().contains("showing 3 snapshots") {
        assert!(t.elapsed() < Duration::from_secs(40));
    }
    let child = daemon.0.take().unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait_with_output().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let named = format!("snapshot h/b/{name} has extended attributes");
    assert_eq!(text.matches(&named).count(), 1, "{text}");
    assert!(text.contains("systemctl restart"), "{text}");

    drop(_guard);
    let _m = env.mount(Default::default());
    assert_eq!(getxattr(&deep, "user.origin"), Ok(b"mail".to_vec()));
}
