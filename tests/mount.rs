//! Real FUSE mounts of real stores (written by the `bmbackup` binary): content and metadata of
//! every file, `last` moving under a running reader, stable inode numbers across remounts and
//! permission checks under `allow_other`. Every mount is unmounted by a guard, also when an
//! assertion fails.

mod common;

use bmbackup::fuse::MountOptions;
use bmbackup::vfs::{Vfs, VfsConfig};
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The mount shows `src` exactly as the kernel sees it: metadata, inode numbers (hard links
/// share one, everything else its own), st_blocks, xattrs in every namespace and content.
fn assert_mount_matches(src: &Path, snap: &Path) {
    let mut src_ino_to_mount_ino = BTreeMap::new();
    for p in walk(src) {
        let rel = p.strip_prefix(src).unwrap();
        let q = snap.join(rel);
        let (a, b) = (
            fs::symlink_metadata(&p).unwrap(),
            fs::symlink_metadata(&q).unwrap(),
        );
        assert_eq!(a.mode(), b.mode(), "mode of {rel:?}");
        assert_eq!((a.uid(), a.gid()), (b.uid(), b.gid()), "owner of {rel:?}");
        assert_eq!(
            (a.mtime(), a.mtime_nsec()),
            (b.mtime(), b.mtime_nsec()),
            "mtime of {rel:?}"
        );
        assert_eq!(
            (a.ctime(), a.ctime_nsec()),
            (b.ctime(), b.ctime_nsec()),
            "ctime of {rel:?}"
        );
        if !a.is_dir() {
            assert_eq!(a.size(), b.size(), "size of {rel:?}");
            assert_eq!(a.nlink(), b.nlink(), "nlink of {rel:?}");
            // Files show what they had allocated at backup time (`du`, holes); other kinds,
            // whose allocation was not recorded, what their size needs.
            let blocks = if a.is_file() {
                a.blocks()
            } else {
                b.size().div_ceil(512)
            };
            assert_eq!(b.blocks(), blocks, "blocks of {rel:?}");
        }
        assert_eq!(a.rdev(), b.rdev(), "rdev of {rel:?}");
        assert_eq!(xattrs(&p), xattrs(&q), "xattrs of {rel:?}");
        if a.file_type().is_file() {
            assert!(
                fs::read(&p).unwrap() == fs::read(&q).unwrap(),
                "content of {rel:?}"
            );
        }
        if a.file_type().is_symlink() {
            assert_eq!(
                fs::read_link(&p).unwrap(),
                fs::read_link(&q).unwrap(),
                "target of {rel:?}"
            );
        }
        // Hard links share one st_ino; everything else has its own.
        let prev = src_ino_to_mount_ino.insert(a.ino(), b.ino());
        assert!(
            prev.is_none() || prev == Some(b.ino()),
            "hard link inode of {rel:?}"
        );
    }
    let distinct: std::collections::BTreeSet<_> = src_ino_to_mount_ino.values().collect();
    assert_eq!(
        distinct.len(),
        src_ino_to_mount_ino.len(),
        "inode numbers must be distinct"
    );
}

fn only_dated(dir: &Path) -> PathBuf {
    let dates: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("last"))
        .collect();
    assert_eq!(dates.len(), 1, "{dates:?}");
    dates[0].clone()
}

#[test]
fn every_file_matches_its_source() {
    let env = Env::new();
    let src = env.path("src");
    varied_tree(&src);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&src, fs::Permissions::from_mode(0o750)).unwrap();
    env.backup("10.0.0.5", "mail/imap", &src);
    let t = Instant::now();
    let _m = env.mount(MountOptions::default());
    eprintln!("mount ready after {:?}", t.elapsed());
    let part = env.mnt().join("10.0.0.5/mail/imap");
    let dated = only_dated(&part);
    let name = dated.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.len() == 17 && name.as_bytes()[10] == b'_', "{name}");
    let t = Instant::now();
    assert_mount_matches(&src, &dated);
    eprintln!("compared the whole snapshot in {:?}", t.elapsed());
    assert_mount_matches(&src, &part.join("last"));
    // The snapshot folder shows the part folder's own mode, owner and mtime.
    let top = fs::metadata(&src).unwrap();
    for shown in [&dated, &part.join("last")] {
        let m = fs::metadata(shown).unwrap();
        assert_eq!(m.mode(), top.mode(), "mode of {shown:?}");
        assert_eq!((m.uid(), m.gid()), (top.uid(), top.gid()));
        assert_eq!((m.mtime(), m.mtime_nsec()), (top.mtime(), top.mtime_nsec()));
    }
    // What userland copy tools see: rsync (hard links, ACLs, xattrs, checksums) finds nothing
    // to change.
    let out = Command::new("rsync")
        .args(["-naHAXc", "--itemize-changes", "--no-t"])
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dated.display()))
        .output()
        .expect("rsync is installed (see .ci/run)");
    let changes = String::from_utf8_lossy(&out.stdout);
    // The top folder too: its own metadata is part of the snapshot.
    let changes: Vec<&str> = changes.lines().collect();
    assert!(
        out.status.success() && changes.is_empty(),
        "rsync: {changes:?}"
    );
    // Read-only, whoever asks.
    let err = fs::write(dated.join("empty"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    assert_eq!(
        fs::metadata(env.mnt().join("10.0.0.5/nope"))
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::NotFound
    );
    // getxattr into a too-small buffer is ERANGE; a size-0 probe gives the length.
    let c = std::ffi::CString::new(dated.join("big.bin").as_os_str().as_encoded_bytes()).unwrap();
    let name = std::ffi::CString::new("user.bin").unwrap();
    let mut buf = [0u8; 1];
    // SAFETY: valid C strings and a buffer of the given size.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    assert_eq!(n, 3);
    // SAFETY: as above.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 1) };
    assert_eq!(
        (n, std::io::Error::last_os_error().raw_os_error()),
        (-1, Some(libc::ERANGE))
    );
    // `cp` looks for holes: all data, then the end.
    let f = fs::File::open(dated.join("big.bin")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: lseek on an open descriptor.
    let (data, hole) = unsafe {
        (
            libc::lseek(f.as_raw_fd(), 10, libc::SEEK_DATA),
            libc::lseek(f.as_raw_fd(), 10, libc::SEEK_HOLE),
        )
    };
    assert_eq!((data, hole), (10, 5 << 20));
    // Reads at odd offsets across chunk boundaries.
    let want = fs::read(src.join("big.bin")).unwrap();
    let mut f = fs::File::open(dated.join("big.bin")).unwrap();
    for off in [0usize, 1, 65_535, 1 << 20, (5 << 20) - 7] {
        let mut buf = vec![0; 300_000];
        f.seek(SeekFrom::Start(off as u64)).unwrap();
        let n = f.read(&mut buf).unwrap();
        assert!(n > 0 && buf[..n] == want[off..off + n], "read at {off}");
    }
}

#[test]
fn last_moves_without_remount_while_an_old_reader_stays_consistent() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("sub/f"), b"version 1");
    write(&src.join("top"), &bytes(1 << 20, 1));
    env.backup("10.0.0.5", "mail", &src);
    let _m = env.mount(MountOptions::default());
    let last = env.mnt().join("10.0.0.5/mail/last");
    let mut old_file = fs::File::open(last.join("top")).unwrap();
    let old_dir = fs::File::open(last.join("sub")).unwrap();
    // A shell whose cwd is inside the old `last`, reading after the switch.
    let mut reader = KillOnDrop(Some(
        Command::new("sh")
            .arg("-c")
            .arg("cd \"$1\" && while [ ! -e \"$2\" ]; do sleep 0.1; done; cat f")
            .args([
                "sh",
                last.join("sub").to_str().unwrap(),
                env.path("go").to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));

    write(&src.join("sub/f"), b"version 2");
    write(&src.join("top"), &bytes(1 << 20, 2));
    env.backup("10.0.0.5", "mail", &src);
    let t = Instant::now();
    while fs::read(last.join("sub/f")).unwrap() != b"version 2" {
        assert!(t.elapsed() < Duration::from_secs(10), "`last` did not move");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("`last` moved {:?} after the backup finished", t.elapsed());
    assert_eq!(
        fs::read_dir(env.mnt().join("10.0.0.5/mail"))
            .unwrap()
            .count(),
        3
    );

    fs::write(env.path("go"), b"").unwrap();
    let out = reader.0.take().unwrap().wait_with_output().unwrap();
    assert_eq!(
        out.stdout, b"version 1",
        "the cwd reader must stay in the old snapshot"
    );
    let mut data = Vec::new();
    old_file.read_to_end(&mut data).unwrap();
    assert!(
        data == bytes(1 << 20, 1),
        "the open file must keep the old content"
    );
    // Looking up a name relative to the old directory still resolves in the old snapshot.
    use std::os::fd::AsRawFd;
    let name = std::ffi::CString::new("f").unwrap();
    // SAFETY: valid fd and NUL-terminated name.
    let fd = unsafe { libc::openat(old_dir.as_raw_fd(), name.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    // SAFETY: fd was just opened and is owned here.
    let mut f = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "version 1");

    // A forgotten snapshot's folder goes away without remount; `last` stays.
    env.ok(&["forget", "--keep-last", "1"]);
    let part = env.mnt().join("10.0.0.5/mail");
    let t = Instant::now();
    while fs::read_dir(&part).unwrap().count() != 2 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "forgotten snapshot still shown"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fs::read(last.join("sub/f")).unwrap(), b"version 2");
}

fn inode_map(root: &Path) -> BTreeMap<PathBuf, u64> {
    let mut m: BTreeMap<PathBuf, u64> = walk(root)
        .into_iter()
        .map(|p| (p.clone(), fs::symlink_metadata(&p).unwrap().ino()))
        .collect();
    m.insert(root.to_path_buf(), fs::metadata(root).unwrap().ino());
    m
}

#[test]
fn inode_numbers_are_stable_across_remounts() {
    let env = Env::new();
    let src = env.path("src");
    varied_tree(&src);
    env.backup("10.0.0.5", "mail/imap", &src);
    env.backup("10.0.0.6", "db", &src);
    let first = {
        let _m = env.mount(MountOptions::default());
        inode_map(&env.mnt())
    };
    assert!(first.len() > 100);
    let _m = env.mount(MountOptions {
        threads: 1,
        ..MountOptions::default()
    });
    assert_eq!(first, inode_map(&env.mnt()));
}

#[test]
fn allow_other_still_enforces_file_permissions() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("secret"), b"for uid 1000 only");
    write(&src.join("public"), b"for everyone");
    sh(&format!(
        "chown 1000:1000 {0}/secret && chmod 600 {0}/secret && chmod 644 {0}/public",
        src.display()
    ));
    env.backup("10.0.0.5", "home", &src);
    let _m = env.mount(MountOptions {
        options: vec!["ro,allow_other,_netdev".into()],
        ..MountOptions::default()
    });
    let as_nobody = |file: &str| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
            .arg(env.mnt().join("10.0.0.5/home/last").join(file))
            .output()
            .unwrap()
    };
    let public = as_nobody("public");
    assert!(
        public.status.success(),
        "{}",
        String::from_utf8_lossy(&public.stderr)
    );
    assert_eq!(public.stdout, b"for everyone");
    let secret = as_nobody("secret");
    assert!(!secret.status.success());
    assert!(
        String::from_utf8_lossy(&secret.stderr).contains("Permission denied"),
        "{secret:?}"
    );
}

#[test]
fn nodes_the_kernel_forgets_are_dropped() {
    let env = Env::new();
    let src = env.path("src");
    for d in 0..20 {
        for f in 0..100 {
            write(
                &src.join(format!("d{d}/{f}.")),
                format!("{d}/{f}").as_bytes(),
            );
        }
    }
    env.backup("h", "p", &src);
    let vfs = Arc::new(Vfs::new(Arc::new(env.repo()), VfsConfig::default()).unwrap());
    let _m = env.mount_vfs(vfs.clone(), MountOptions::default());
    let seen = walk(&env.mnt().join("h/p/last")).len();
    assert_eq!(seen, 2020);
    let peak = vfs.node_count();
    assert!(peak > 2000, "{peak}");
    // Evicting the kernel's dentries and inodes sends FORGETs: the table shrinks with them.
    if let Err(e) = fs::write("/proc/sys/vm/drop_caches", "2") {
        eprintln!("skipped the FORGET check: cannot drop the kernel's caches here ({e})");
        return;
    }
    let t = Instant::now();
    while vfs.node_count() > 50 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} of {peak} nodes still held",
            vfs.node_count()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "node table: {peak} after a walk, {} after drop_caches",
        vfs.node_count()
    );
}

#[test]
fn files_are_read_without_open_and_warm_reads_stay_in_the_kernel() {
    let env = Env::new();
    let src = env.path("src");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    write(&src.join("big"), &big);
    for i in 0..10 {
        write(
            &src.join(format!("m/{i}.")),
            format!("message {i}").as_bytes(),
        );
    }
    env.backup("h", "p", &src);
    let vfs = Arc::new(Vfs::new(Arc::new(env.repo()), VfsConfig::default()).unwrap());
    let _m = env.mount_vfs(vfs.clone(), MountOptions::default());
    let root = env.mnt().join("h/p/last");
    for _ in 0..2 {
        assert!(fs::read(root.join("big")).unwrap() == big);
        for i in 0..10 {
            assert_eq!(
                fs::read(root.join(format!("m/{i}."))).unwrap(),
                format!("message {i}").as_bytes()
            );
        }
    }
    let (_, _, opens, reads) = vfs.ops.snapshot();
    // The first open answers ENOSYS; the kernel then opens files itself (reads come by inode).
    assert_eq!(opens, 1, "opens reached the filesystem");
    // The second pass was served from the page cache, kept across opens.
    for _ in 0..3 {
        assert!(fs::read(root.join("big")).unwrap() == big);
    }
    assert_eq!(
        vfs.ops.snapshot().3,
        reads,
        "warm reads reached the filesystem"
    );
    // Seeks and partial reads by inode, at chunk boundaries and past the end.
    let mut f = fs::File::open(root.join("big")).unwrap();
    let mut buf = vec![0u8; 1000];
    f.seek(SeekFrom::Start(299_500)).unwrap();
    assert_eq!(f.read(&mut buf).unwrap(), 500);
    assert_eq!(&buf[..500], &big[299_500..]);
    assert_eq!(f.read(&mut buf).unwrap(), 0);
}
