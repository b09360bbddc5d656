//! What the source filesystem adds to a file beyond its bytes, kept through backup and the
//! mount: filesystems mounted inside a part (inode numbers repeat across them), holes of sparse
//! files, inode flags. Needs root (tmpfs mounts, `chattr`), as every machine of this project has.

mod common;

use bmbackup::fuse::MountOptions;
use bmbackup::model::{inode_flags, Entry, Tree};
use common::{sh, Env};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted by the test, unmounted on drop (lazily if something still holds it).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        sh(&format!(
            "mount -t tmpfs -o size=16m bmtest {}",
            at.display()
        ));
        Tmpfs(at.to_path_buf())
    }
}

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

/// The entry at `path` (`/`-separated) of the newest snapshot, decoded through the library.
fn entry(env: &Env, path: &str) -> Entry {
    let repo = env.repo();
    let snap = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .max_by_key(|s| s.manifest.started_ns)
        .unwrap();
    let mut tree: Tree = repo.read_tree(snap.root).unwrap();
    let names: Vec<&str> = path.split('/').collect();
    for (i, name) in names.iter().enumerate() {
        let e = tree.find(name.as_bytes()).unwrap().clone();
        if i + 1 == names.len() {
            return e;
        }
        tree = repo.read_tree(e.subtree().unwrap()).unwrap();
    }
    unreachable!()
}

/// Two tmpfs inside the part, each with a hard-linked file of the same inode number, size and
/// mtime but different bytes: grouped by inode alone, B's file was stored with A's chunks
/// (unread) and served with A's bytes.
fn two_filesystems(src: &Path) -> (Tmpfs, Tmpfs) {
    let a = Tmpfs::mount(&src.join("A"));
    let b = Tmpfs::mount(&src.join("B"));
    for (dir, name, byte) in [(&a.0, "x", b'a'), (&b.0, "y", b'b')] {
        let f = dir.join(name);
        fs::write(&f, vec![byte; 5000]).unwrap();
        fs::hard_link(&f, dir.join(format!("{name}2"))).unwrap();
        sh(&format!("touch -d @1700000000 {}", f.display()));
        // And one file with the same bytes on both: still two files.
        let same = dir.join("s");
        fs::write(&same, b"same bytes").unwrap();
        fs::hard_link(&same, dir.join("s2")).unwrap();
        sh(&format!("touch -d @1700000000 {}", same.display()));
    }
    let (x, y) = (
        fs::metadata(a.0.join("x")).unwrap(),
        fs::metadata(b.0.join("y")).unwrap(),
    );
    assert_eq!(
        (x.ino(), x.size(), x.mtime(), x.nlink()),
        (y.ino(), y.size(), y.mtime(), y.nlink()),
        "fresh tmpfs number their first files alike"
    );
    assert_ne!(x.dev(), y.dev());
    assert_eq!(
        fs::metadata(a.0.join("s")).unwrap().ino(),
        fs::metadata(b.0.join("s")).unwrap().ino()
    );
    (a, b)
}

#[test]
fn hard_links_on_two_filesystems_of_a_part_stay_apart() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("top"), b"on the part's own filesystem").unwrap();
    let (_a, _b) = two_filesystems(&src);
    env.backup("h", "p", &src);
    assert_eq!(entry(&env, "top").dev, 0);
    let (x, y) = (entry(&env, "A/x"), entry(&env, "B/y"));
    assert_eq!(x.ino, y.ino);
    assert_ne!(
        x.link_id(),
        y.link_id(),
        "the filesystem is part of the identity"
    );
    assert_ne!(
        x.chunks(),
        y.chunks(),
        "B's file was read, not taken for A's"
    );

    let _m = env.mount(MountOptions::default());
    let last = env.mnt().join("h/p/last");
    for (path, byte) in [("A/x", b'a'), ("A/x2", b'a'), ("B/y", b'b'), ("B/y2", b'b')] {
        assert_eq!(
            fs::read(last.join(path)).unwrap(),
            vec![byte; 5000],
            "{path}"
        );
    }
    let md = |p: &str| fs::metadata(last.join(p)).unwrap();
    assert_eq!(md("A/x").ino(), md("A/x2").ino());
    assert_eq!(md("B/y").ino(), md("B/y2").ino());
    assert_ne!(md("A/x").ino(), md("B/y").ino());
    assert_eq!((md("A/x").nlink(), md("B/y").nlink()), (2, 2));
    assert_eq!(md("A/s").ino(), md("A/s2").ino());
    assert_ne!(md("A/s").ino(), md("B/s").ino(), "same bytes, two files");

    // `cp -a` from the mount (what a restore by hand does) links by st_ino: B stays B.
    let copy = env.path("copy");
    sh(&format!("cp -a {} {}", last.display(), copy.display()));
    assert_eq!(fs::read(copy.join("B/y")).unwrap(), vec![b'b'; 5000]);
    assert_eq!(fs::read(copy.join("A/x2")).unwrap(), vec![b'a'; 5000]);
    let cmd = |p: &str| fs::metadata(copy.join(p)).unwrap();
    assert_eq!(cmd("B/y").ino(), cmd("B/y2").ino());
    assert_ne!(cmd("A/x").ino(), cmd("B/y").ino());
    assert_ne!(cmd("A/s").ino(), cmd("B/s").ino());
}

#[test]
fn one_file_system_keeps_mount_points_as_empty_folders() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("top"), b"kept").unwrap();
    let (_a, _b) = two_filesystems(&src);
    let m = env.backup_with("h", "p", &src, &["--one-file-system"]);
    assert_eq!(m["files"], 1);
    let repo = env.repo();
    for dir in ["A", "B"] {
        let e = entry(&env, dir);
        assert!(repo
            .read_tree(e.subtree().unwrap())
            .unwrap()
            .entries
            .is_empty());
    }
    // Crossing is the default.
    assert_eq!(env.backup("h", "p", &src)["files"], 9);
}

#[test]
fn sparse_file_holes_are_not_read_and_survive_restore_and_the_mount() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    let f = src.join("disk.img");
    let gib = 1u64 << 30;
    {
        use std::os::unix::fs::FileExt;
        let file = fs::File::create(&f).unwrap();
        file.set_len(gib).unwrap();
        file.write_all_at(b"first extent", 4096).unwrap();
        file.write_all_at(b"second extent", 700 << 20).unwrap();
    }
    let blocks = fs::metadata(&f).unwrap().blocks();
    assert!(
        blocks < 1024,
        "the test's filesystem makes holes: {blocks} blocks"
    );
    let m = env.backup("h", "p", &src);
    let read = m["bytes_read"].as_u64().unwrap();
    assert_eq!(m["bytes"].as_u64().unwrap(), gib);
    assert!(read < 1 << 20, "holes were read: {read} bytes");
    assert_eq!(entry(&env, "disk.img").blocks, Some(blocks));

    let out = env.path("out");
    env.ok(&["restore", "h/p/last", out.to_str().unwrap()]);
    sh(&format!(
        "cmp {} {}",
        f.display(),
        out.join("disk.img").display()
    ));
    let restored = fs::metadata(out.join("disk.img")).unwrap().blocks();
    assert!(
        restored < 4096,
        "restored with its holes: {restored} blocks"
    );

    let _m = env.mount(MountOptions::default());
    let on_mount = env.mnt().join("h/p/last/disk.img");
    let md = fs::metadata(&on_mount).unwrap();
    assert_eq!(
        (md.size(), md.blocks()),
        (gib, blocks),
        "st_blocks as recorded"
    );
    let copy = env.path("copy.img");
    sh(&format!(
        "cp --sparse=auto {} {}",
        on_mount.display(),
        copy.display()
    ));
    sh(&format!("cmp {} {}", f.display(), copy.display()));
    let copied = fs::metadata(&copy).unwrap().blocks();
    assert!(
        copied < 4096,
        "cp from the mount keeps the holes: {copied} blocks"
    );
}

/// Clears the flags that would stop the temporary folder from being removed.
struct Unflag(Vec<PathBuf>);

impl Drop for Unflag {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = Command::new("chattr").arg("-ia").arg(p).status();
        }
    }
}

#[test]
fn inode_flags_are_recorded() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("logs")).unwrap();
    for f in ["immutable", "append", "nodump", "plain", "logs/x"] {
        fs::write(src.join(f), f).unwrap();
    }
    let set = [
        ("immutable", "+i"),
        ("append", "+a"),
        ("nodump", "+dA"),
        ("logs", "+d"),
        ("", "+d"),
    ];
    let _unflag = Unflag(set.iter().map(|(p, _)| src.join(p)).collect());
    for (p, flag) in set {
        let out = Command::new("chattr")
            .arg(flag)
            .arg(src.join(p))
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "SKIPPED: chattr {flag} is not supported on the test's filesystem: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
    }
    env.backup("h", "p", &src);
    let flags = |p: &str| entry(&env, p).flags;
    assert_eq!(flags("immutable"), inode_flags::IMMUTABLE);
    assert_eq!(flags("append"), inode_flags::APPEND);
    assert_eq!(flags("nodump"), inode_flags::NODUMP | inode_flags::NOATIME);
    assert_eq!(flags("logs"), inode_flags::NODUMP);
    assert_eq!(flags("plain"), 0);
    let root_meta = |env: &Env| {
        let snaps = env.repo().snapshots().unwrap();
        let newest = snaps.iter().max_by_key(|s| s.manifest.started_ns).unwrap();
        newest.manifest.root_meta.clone().unwrap()
    };
    assert_eq!(
        root_meta(&env).flags,
        inode_flags::NODUMP,
        "the part's folder"
    );
    // An unchanged file keeps them in the next snapshot without being read.
    assert_eq!(env.backup("h", "p", &src)["bytes_read"], 0);
    assert_eq!(flags("immutable"), inode_flags::IMMUTABLE);
    assert_eq!(flags("logs"), inode_flags::NODUMP);
    assert_eq!(root_meta(&env).flags, inode_flags::NODUMP);
}
