//! Real FUSE mounts of real stores (written by the `bmbackup` binary): content and metadata of
//! every file, `last` moving under a running reader, stable inode numbers across remounts,
//! permission checks under `allow_other`, damage as EIO, SIGTERM and stale-mount recovery.
//! Every mount is unmounted by a guard, also when an assertion fails.

use bmbackup::fuse::{mount_then, MountOptions};
use bmbackup::repo::Repository;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        // Other users must be able to reach the mount point (the allow_other test).
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let env = Env { dir };
        fs::create_dir(env.path("mnt")).unwrap();
        env.ok(&["init", env.store().to_str().unwrap()]);
        env
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn store(&self) -> PathBuf {
        self.path("store")
    }
    fn mnt(&self) -> PathBuf {
        self.path("mnt")
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bmbackup"))
            .args(args)
            .env("BMBACKUP_STORE", self.store())
            .env("BMBACKUP_CACHE", self.path("cache"))
            .env_remove("BMBACKUP_CONFIG")
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    fn backup(&self, host: &str, part: &str, src: &Path) {
        self.ok(&[
            "backup",
            "--host",
            host,
            "--part",
            &format!("{part}={}", src.display()),
        ]);
    }
    /// Mounts in this process (a real kernel mount; the server runs on a thread).
    fn mount(&self, opts: MountOptions) -> Mounted {
        let repo = Repository::open(&self.store(), Some(&self.path("cache"))).unwrap();
        let (tx, rx) = mpsc::channel();
        let mp = self.mnt();
        let mut guard = Mounted {
            mp: mp.clone(),
            thread: None,
        };
        let thread = std::thread::spawn(move || {
            mount_then(Arc::new(repo), &mp, &opts, move || {
                let _ = tx.send(());
            })
            .map_err(|e| e.to_string())
        });
        guard.thread = Some(thread);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("mount ready");
        guard
    }
}

/// Unmounts on drop: `fusermount3 -u`, then `-uz` if something still holds it.
struct Mounted {
    mp: PathBuf,
    thread: Option<JoinHandle<Result<(), String>>>,
}

fn unmount(mp: &Path) -> bool {
    let ok = Command::new("fusermount3")
        .arg("-u")
        .arg(mp)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(mp)
            .output();
    }
    ok
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if unmount(&self.mp) {
            if let Some(t) = self.thread.take() {
                let res = t.join().unwrap();
                if !std::thread::panicking() {
                    res.unwrap();
                }
            }
        }
    }
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every kind of entry a mail server has, with odd metadata.
fn varied_tree(root: &Path) {
    for u in 0..3 {
        for m in 1..=20 {
            write(
                &root.join(format!("user/u{u}/cur/{m}.")),
                format!("Subject: {m}\r\n\r\n{}", "x".repeat(m * 97)).as_bytes(),
            );
        }
    }
    write(&root.join("big.bin"), &pseudo_random(5 << 20, 3));
    write(&root.join("empty"), b"");
    write(&root.join("secret"), b"root only");
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    write(&root.join("setuid"), b"#!/bin/sh\n");
    fs::set_permissions(root.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(root.join("user/u0/cur/1."), root.join("hardlink")).unwrap();
    std::os::unix::fs::symlink("user/u0", root.join("link")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    write(&root.join("\u{e9}t\u{e9} \u{2603}"), b"utf8 name");
    write(
        &root.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9")),
        b"raw name",
    );
    let r = root.display();
    sh(&format!(
        "mkfifo {r}/fifo && mknod {r}/null c 1 3 && mknod {r}/disk b 8 1 && chown 1234:5678 {r}/user/u1/cur/2. \
         && setfattr -n user.mail -v seen {r}/user/u0/cur/3. && setfattr -n user.bin -v 0x00ff00 {r}/big.bin \
         && touch -h -d '2001-02-03 04:05:06.123456789' {r}/link {r}/user/u2/cur/4."
    ));
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out.sort();
    out
}

fn xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    bmbackup::vfs::memsource::read_xattrs(p)
        .unwrap()
        .into_iter()
        .map(|x| (x.name, x.value))
        .collect()
}

fn assert_same_tree(src: &Path, snap: &Path) {
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
            assert_eq!(b.blocks(), b.size().div_ceil(512), "blocks of {rel:?}");
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
    env.backup("10.0.0.5", "mail/imap", &src);
    let t = Instant::now();
    let _m = env.mount(MountOptions::default());
    eprintln!("mount ready after {:?}", t.elapsed());
    let part = env.mnt().join("10.0.0.5/mail/imap");
    let dated = only_dated(&part);
    let name = dated.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.len() == 17 && name.as_bytes()[10] == b'_', "{name}");
    let t = Instant::now();
    assert_same_tree(&src, &dated);
    eprintln!("compared the whole snapshot in {:?}", t.elapsed());
    assert_same_tree(&src, &part.join("last"));
    // Read-only, whoever asks.
    let err = fs::write(dated.join("empty"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    assert_eq!(
        fs::metadata(env.mnt().join("10.0.0.5/nope"))
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::NotFound
    );
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
    write(&src.join("top"), &pseudo_random(1 << 20, 1));
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
    write(&src.join("top"), &pseudo_random(1 << 20, 2));
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
        data == pseudo_random(1 << 20, 1),
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
}

/// Kills a helper process if the test fails before it is waited for.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
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
fn damaged_chunk_reads_fail_with_eio() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("good"), b"small and fine");
    write(&src.join("bad"), &pseudo_random(4 << 20, 9));
    env.backup("h", "p", &src);
    // Flip bytes in the middle of the biggest pack file: inside the random file's chunks.
    let biggest = walk(&env.store())
        .into_iter()
        .filter(|p| p.is_file())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut data = fs::read(&biggest).unwrap();
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 64] {
        *b ^= 0x55;
    }
    fs::write(&biggest, data).unwrap();
    let _m = env.mount(MountOptions::default());
    let last = env.mnt().join("h/p/last");
    let err = fs::read(last.join("bad")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        fs::symlink_metadata(last.join("bad")).is_ok(),
        "metadata stays readable"
    );
    assert_eq!(fs::read(last.join("good")).unwrap(), b"small and fine");
    drop(_m);

    // The daemon's log names the file by its snapshot path.
    let Some(prog) = mount_program() else { return };
    let log = env.path("log");
    let mut daemon = KillOnDrop(Some(
        Command::new(prog)
            .arg(env.store())
            .arg(env.mnt())
            .arg("--foreground")
            .env("BMBACKUP_CACHE", env.path("cache"))
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    ));
    let _guard = Mounted {
        mp: env.mnt(),
        thread: None,
    };
    let t = Instant::now();
    loop {
        match fs::read(last.join("bad")) {
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            _ => assert!(
                t.elapsed() < Duration::from_secs(10),
                "mount did not come up"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let child = daemon.0.take().unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait_with_output().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_default();
    eprintln!("daemon log: {line}");
    assert!(
        line.contains("h/p/") && line.contains("/bad: "),
        "no error naming the file in:\n{text}"
    );
}

/// The daemon as the CLI runs it; built by `cargo test` (examples are built with the tests).
fn mount_program() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("examples/mount_store");
    p.exists().then_some(p)
}

fn is_mounted(mp: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(mp.to_str().unwrap()))
}

#[test]
fn daemon_sigterm_and_stale_mounts() {
    let Some(prog) = mount_program() else {
        eprintln!("skipped: examples/mount_store is not built (run `cargo test` without --test)");
        return;
    };
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("f"), b"data");
    env.backup("h", "p", &src);
    let mp = env.mnt();
    let guard = Mounted {
        mp: mp.clone(),
        thread: None,
    };
    let daemon = |extra: &[&str]| {
        Command::new(&prog)
            .arg(env.store())
            .arg(&mp)
            .args(extra)
            .env("BMBACKUP_CACHE", env.path("cache"))
            .output()
            .unwrap()
    };
    // Background mode returns only once the mount is up.
    let t = Instant::now();
    let out = daemon(&["-o", "ro,_netdev"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("daemonized mount returned after {:?}", t.elapsed());
    assert_eq!(fs::read(mp.join("h/p/last/f")).unwrap(), b"data");
    assert!(
        !daemon(&["-o", "rw"]).status.success(),
        "rw must be refused"
    );

    // Kill the daemon hard: a stale mount, which the next mount clears.
    let pid = daemon_pid(&mp).expect("daemon pid");
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fs::read_dir(&mp).unwrap_err().raw_os_error(),
        Some(libc::ENOTCONN)
    );
    let mut fg = KillOnDrop(Some(
        Command::new(&prog)
            .arg(env.store())
            .arg(&mp)
            .arg("--foreground")
            .env("BMBACKUP_CACHE", env.path("cache"))
            .spawn()
            .unwrap(),
    ));
    let t = Instant::now();
    while !fs::read(mp.join("h/p/last/f")).is_ok_and(|d| d == b"data") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "remount over the stale mount"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGTERM unmounts cleanly and exits 0.
    // SAFETY: signalling our own child process.
    let mut child = fg.0.take().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!is_mounted(&mp));
    drop(guard);
}

/// The process serving `mp`, found through /proc (the daemon's parent has exited).
fn daemon_pid(mp: &Path) -> Option<i32> {
    for e in fs::read_dir("/proc").ok()? {
        let e = e.ok()?;
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"mount_store"))
            && args.contains(&mp.as_os_str().as_bytes())
        {
            return Some(pid);
        }
    }
    None
}
