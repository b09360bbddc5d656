//! Proves the tree comparer of `tests/common` catches every kind of difference, one at a time,
//! and agrees with rsync: a comparer that cannot fail would make every round-trip test worthless.

mod common;

use bmbackup::gen::generate_tree_with_every_file_type;
use common::{
    assert_same_tree, assert_same_tree_with, diff_trees, diff_trees_with, is_root, rsync_copy,
    rsync_itemize, run_bin, set_mtime, CompareOptions,
};
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A generated tree `a` and an exact rsync copy `b`, checked identical before any change.
fn pair() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    generate_tree_with_every_file_type(&a).unwrap();
    rsync_copy(&a, &b);
    assert_same_tree(&a, &b);
    assert_eq!(rsync_itemize(&a, &b), Vec::<String>::new());
    (dir, a, b)
}

fn mtime(path: &Path) -> (i64, i64) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.mtime(), m.mtime_nsec())
}

/// Runs `change` and puts back the mtimes of `paths`, so the change is the only difference.
fn quietly(paths: &[&Path], change: impl FnOnce()) {
    let saved: Vec<_> = paths.iter().map(|p| mtime(p)).collect();
    change();
    for (p, t) in paths.iter().zip(saved) {
        set_mtime(p, t.0, t.1);
    }
}

/// Every reported line is about `path`, at least one mentions `what`, and rsync sees it too.
fn expect(a: &Path, b: &Path, path: &str, what: &str) {
    let diffs = diff_trees(a, b);
    assert!(
        !diffs.is_empty(),
        "comparer missed a change of {what} on {path}"
    );
    for d in &diffs {
        assert!(
            d.starts_with(&format!("{:?}", Path::new(path))),
            "unexpected difference {d:?} (expected only {path})"
        );
    }
    assert!(
        diffs.iter().any(|d| d.contains(what)),
        "no {what:?} in {diffs:?}"
    );
    assert!(
        !rsync_itemize(a, b).is_empty(),
        "rsync sees no difference for {what} on {path}"
    );
}

#[test]
fn identical_copies_compare_equal() {
    let (_d, a, b) = pair();
    assert!(diff_trees(&a, &b).is_empty());
}

#[test]
fn catches_one_changed_byte() {
    let (_d, a, b) = pair();
    let f = b.join("big.bin");
    quietly(&[&f], || {
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[3 << 20] ^= 1;
        std::fs::write(&f, bytes).unwrap();
    });
    expect(&a, &b, "big.bin", "content differs at byte 3145728");
}

#[test]
fn catches_mode_and_setuid() {
    let (_d, a, b) = pair();
    std::fs::set_permissions(b.join("setuid"), std::fs::Permissions::from_mode(0o755)).unwrap();
    expect(&a, &b, "setuid", "mode 4755 vs 0755");
}

#[test]
fn catches_one_nanosecond() {
    let (_d, a, b) = pair();
    let f = b.join("regular.txt");
    let (s, ns) = mtime(&f);
    set_mtime(&f, s, (ns + 1) % 1_000_000_000);
    let diffs = diff_trees(&a, &b);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(diffs[0].starts_with("\"regular.txt\": mtime"), "{diffs:?}");
    // No rsync cross-check here: `rsync -c` (3.5) treats a 1 ns difference as equal, so this
    // comparer is deliberately stricter than the rsync reference.
}

#[test]
fn catches_directory_mtime_and_root_times_on_request() {
    let (_d, a, b) = pair();
    let deep = b.join("deep/level-00");
    let (s, ns) = mtime(&deep);
    set_mtime(&deep, s + 1, ns);
    expect(&a, &b, "deep/level-00", "mtime");
    set_mtime(&deep, s, ns);
    set_mtime(&b, 1, 0);
    assert_eq!(diff_trees(&a, &b).len(), 1);
    assert!(diff_trees_with(&a, &b, &CompareOptions::ignore_root()).is_empty());
}

#[test]
fn catches_xattr_changes() {
    let (_d, a, b) = pair();
    if common::user_xattrs(&a.join("regular.txt"))
        .unwrap()
        .is_empty()
    {
        eprintln!("filesystem refuses user xattrs; skipped");
        return;
    }
    let c = CString::new(b.join("regular.txt").as_os_str().as_bytes()).unwrap();
    let name = CString::new("user.comment").unwrap();
    // SAFETY: valid C strings and value slice.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            name.as_ptr(),
            b"HELLO xattr".as_ptr().cast(),
            11,
            0,
        )
    };
    assert_eq!(rc, 0);
    expect(&a, &b, "regular.txt", "xattr user.comment");
    // A missing attribute is a difference too.
    let (_d2, a2, b2) = pair();
    let c = CString::new(b2.join("links").as_os_str().as_bytes()).unwrap();
    let name = CString::new("user.dir").unwrap();
    // SAFETY: valid C strings.
    assert_eq!(unsafe { libc::lremovexattr(c.as_ptr(), name.as_ptr()) }, 0);
    expect(&a2, &b2, "links", "xattr user.dir");
}

#[test]
fn catches_a_broken_hard_link() {
    let (_d, a, b) = pair();
    let name = b.join("links/sub/hardlink-c");
    let tmp = b.join("links/sub/tmp");
    // Replace one name by an exact copy (same bytes, mode, owner, xattrs, mtime) that is no
    // longer the same inode: only the link structure differs.
    quietly(&[&b.join("links/sub")], || {
        let out = std::process::Command::new("cp")
            .args(["--preserve=all"])
            .arg(&name)
            .arg(&tmp)
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::rename(&tmp, &name).unwrap();
    });
    let diffs = diff_trees(&a, &b);
    assert!(!diffs.is_empty());
    assert!(diffs.iter().all(|d| d.contains("hard links")), "{diffs:?}");
    assert!(diffs.iter().any(|d| d.contains("hardlink-c")), "{diffs:?}");
    assert!(!rsync_itemize(&a, &b).is_empty());
}

#[test]
fn catches_hard_links_that_should_not_be() {
    let (_d, a, b) = pair();
    // Two distinct files with the same bytes and mode become one inode in b.
    let (x, y) = (b.join("private/f"), b.join("sticky/f"));
    quietly(&[&b.join("sticky")], || {
        std::fs::remove_file(&y).unwrap();
        std::fs::hard_link(&x, &y).unwrap();
    });
    let diffs = diff_trees(&a, &b);
    assert!(diffs.iter().any(|d| d.contains("hard links")), "{diffs:?}");
}

#[test]
fn catches_a_changed_symlink_target() {
    let (_d, a, b) = pair();
    let link = b.join("sym-relative");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    let t = mtime(&link);
    quietly(&[&b], || {
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink("regular.TXT", &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(meta.uid()), Some(meta.gid())).unwrap();
    });
    set_mtime(&link, t.0, t.1);
    expect(&a, &b, "sym-relative", "symlink target");
}

#[test]
fn catches_missing_extra_and_retyped_entries() {
    let (_d, a, b) = pair();
    quietly(&[&b], || std::fs::remove_file(b.join("empty")).unwrap());
    expect(&a, &b, "empty", "only in a");

    let (_d, a, b) = pair();
    let odd = b.join(OsStr::from_bytes(b"dir-\xff\xfe"));
    quietly(&[&odd], || std::fs::write(odd.join("extra"), b"").unwrap());
    let diffs = diff_trees(&a, &b);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(
        diffs[0].contains("extra") && diffs[0].contains("only in b"),
        "{diffs:?}"
    );

    let (_d, a, b) = pair();
    let fifo = b.join("fifo");
    let t = mtime(&fifo);
    quietly(&[&b], || {
        std::fs::remove_file(&fifo).unwrap();
        std::fs::write(&fifo, b"").unwrap();
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o644)).unwrap();
    });
    set_mtime(&fifo, t.0, t.1);
    expect(&a, &b, "fifo", "kind fifo vs file");
}

#[test]
fn catches_owner_and_device_number() {
    if !is_root() {
        eprintln!("not root; skipped");
        return;
    }
    let (_d, a, b) = pair();
    std::os::unix::fs::lchown(b.join("owned-nobody"), Some(1001), None).unwrap();
    expect(&a, &b, "owned-nobody", "owner 65534:65534 vs 1001:65534");

    let (_d, a, b) = pair();
    let dev = b.join("chardev");
    if std::fs::symlink_metadata(&dev).is_err() {
        eprintln!("no device nodes here; skipped");
        return;
    }
    let t = mtime(&dev);
    quietly(&[&b], || {
        std::fs::remove_file(&dev).unwrap();
        let c = CString::new(dev.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C string.
        let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o640, libc::makedev(1, 5)) };
        assert_eq!(rc, 0);
    });
    set_mtime(&dev, t.0, t.1);
    expect(&a, &b, "chardev", "device");
}

#[test]
fn catches_a_filled_hole_when_asked() {
    let (_d, a, b) = pair();
    let strict = CompareOptions {
        sparse: true,
        ..CompareOptions::default()
    };
    assert_same_tree_with(&a, &b, &strict);
    let f = b.join("sparse.img");
    quietly(&[&b, &f], || {
        let tmp = b.join("filled");
        let out = std::process::Command::new("cp")
            .args(["--preserve=all", "--sparse=never"])
            .arg(&f)
            .arg(&tmp)
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::rename(&tmp, &f).unwrap();
    });
    // Same bytes and metadata: only the sparse-aware comparison sees the filled hole.
    assert!(diff_trees(&a, &b).is_empty());
    let diffs = diff_trees_with(&a, &b, &strict);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(
        diffs[0].starts_with("\"sparse.img\": not sparse"),
        "{diffs:?}"
    );
}

#[test]
fn run_bin_runs_the_built_binary() {
    let out = run_bin(["--help"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bmbackup"),
        "{out:?}"
    );
}

#[test]
fn option_switches_really_switch() {
    let (_d, a, b) = pair();
    if is_root() {
        std::os::unix::fs::lchown(b.join("owned-1000"), Some(0), Some(0)).unwrap();
        let no_owners = CompareOptions {
            owners: false,
            ..CompareOptions::default()
        };
        assert!(diff_trees_with(&a, &b, &no_owners).is_empty());
        assert!(!diff_trees(&a, &b).is_empty());
    }
    // atime is ignored by default and seen on request.
    let (_d, a, b) = pair();
    let f = b.join("empty");
    let m = std::fs::symlink_metadata(&f).unwrap();
    let c = CString::new(f.as_os_str().as_bytes()).unwrap();
    let times = [
        libc::timespec {
            tv_sec: 5,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec(),
        },
    ];
    // SAFETY: valid C string and two timespecs.
    assert_eq!(
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) },
        0
    );
    assert!(diff_trees(&a, &b).is_empty());
    let with_atime = CompareOptions {
        atime: true,
        ..CompareOptions::default()
    };
    assert!(diff_trees_with(&a, &b, &with_atime)
        .iter()
        .any(|d| d.contains("\"empty\": atime")));
}
