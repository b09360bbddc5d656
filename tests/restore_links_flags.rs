//! Restore of what format 1.2 records beyond bytes: hard links grouped by filesystem and inode
//! (two tmpfs inside a part number their files alike), and inode flags (immutable, append-only,
//! no-dump) put back last, after content and metadata, also on hard-linked files and folders,
//! and again by a rerun into the same DEST. Needs root (tmpfs mounts, `chattr`).

mod common;

use common::{assert_same_tree_with, is_root, sh, write, CompareOptions, Env, HOST};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted by the test, unmounted on drop (lazily if something still holds it).
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Clears immutable and append-only under the given folders so the temp folder can go.
struct Unchattr(Vec<PathBuf>);

impl Drop for Unchattr {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = Command::new("chattr").arg("-R").arg("-ia").arg(p).status();
        }
    }
}

fn flags(p: &Path) -> u32 {
    let f = fs::File::open(p).unwrap();
    rustix::fs::ioctl_getflags(&f).unwrap().bits()
}

#[test]
fn hard_links_on_two_filesystems_restore_apart() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    let mut mounts = Vec::new();
    for (dir, name, byte) in [("A", "x", b'a'), ("B", "y", b'b')] {
        let d = src.join(dir);
        fs::create_dir_all(&d).unwrap();
        sh(&format!("mount -t tmpfs -o size=8m bmtest {}", d.display()));
        mounts.push(Tmpfs(d.clone()));
        let f = d.join(name);
        fs::write(&f, vec![byte; 5000]).unwrap();
        fs::hard_link(&f, d.join(format!("{name}2"))).unwrap();
        sh(&format!("touch -d @1700000000 {}", f.display()));
    }
    let ino = |p: &str| fs::metadata(src.join(p)).unwrap().ino();
    assert_eq!(
        ino("A/x"),
        ino("B/y"),
        "fresh tmpfs number their first files alike"
    );
    env.backup(HOST, "p", &src);
    let dest = env.path("dest");
    env.ok(&[
        "restore",
        "--host",
        HOST,
        "--part",
        "p",
        "",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(fs::read(dest.join("B/y")).unwrap(), vec![b'b'; 5000]);
    assert_eq!(fs::read(dest.join("B/y2")).unwrap(), vec![b'b'; 5000]);
    let rino = |p: &str| fs::metadata(dest.join(p)).unwrap().ino();
    assert_eq!(rino("A/x"), rino("A/x2"));
    assert_eq!(rino("B/y"), rino("B/y2"));
    assert_ne!(rino("A/x"), rino("B/y"), "two files, not one");
    assert_same_tree_with(&src, &dest, &CompareOptions::ignore_root());
}

#[test]
fn inode_flags_are_restored_last_and_survive_a_rerun() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    let dest = env.path("dest");
    let _guard = Unchattr(vec![src.clone(), dest.clone()]);
    write(&src.join("immutable"), b"cannot change\n");
    write(&src.join("append"), b"log line\n");
    write(&src.join("nodump"), b"not dumped\n");
    write(&src.join("frozen/inside"), b"in a frozen folder\n");
    write(&src.join("linked/a"), b"two names, one immutable file\n");
    fs::hard_link(src.join("linked/a"), src.join("linked/b")).unwrap();
    sh(&format!(
        "cd {} && chattr +i immutable && chattr +a append && chattr +d nodump && chattr +i linked/a && chattr +i frozen",
        src.display()
    ));
    env.backup(HOST, "p", &src);
    let args = [
        "restore",
        "--host",
        HOST,
        "--part",
        "p",
        "",
        dest.to_str().unwrap(),
    ];
    for run in 0..2 {
        // The second run is a rerun into the finished DEST: flags lifted where needed, and
        // everything found already there.
        let out = env.ok(&args);
        for p in [
            "immutable",
            "append",
            "nodump",
            "frozen",
            "linked/a",
            "linked/b",
        ] {
            assert_eq!(flags(&dest.join(p)), flags(&src.join(p)), "run {run}: {p}");
        }
        assert_eq!(
            fs::read(dest.join("frozen/inside")).unwrap(),
            b"in a frozen folder\n"
        );
        let rino = |p: &str| fs::metadata(dest.join(p)).unwrap().ino();
        assert_eq!(rino("linked/a"), rino("linked/b"), "run {run}: {out}");
        assert_same_tree_with(&src, &dest, &CompareOptions::ignore_root());
    }
}
