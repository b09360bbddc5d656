//! Shared set-up for the real-mount tests: a store written by the `bmbackup` binary, mounts that
//! are always unmounted (guards), generated source trees and process helpers.
#![allow(dead_code)] // each test crate uses a different part

use bmbackup::fuse::{mount_vfs, MountOptions};
use bmbackup::repo::Repository;
use bmbackup::vfs::{Vfs, VfsConfig};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        // Other users must be able to reach the mount point (the allow_other test).
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let env = Env { dir };
        fs::create_dir(env.path("mnt")).unwrap();
        env.ok(&["init", env.store().to_str().unwrap()]);
        env
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    pub fn store(&self) -> PathBuf {
        self.path("store")
    }
    pub fn mnt(&self) -> PathBuf {
        self.path("mnt")
    }
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bmbackup"))
            .args(args)
            .env("BMBACKUP_STORE", self.store())
            .env("BMBACKUP_CACHE", self.path("cache"))
            .env_remove("BMBACKUP_CONFIG")
            .output()
            .unwrap()
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    pub fn backup(&self, host: &str, part: &str, src: &Path) {
        self.ok(&[
            "backup",
            "--host",
            host,
            "--part",
            &format!("{part}={}", src.display()),
        ]);
    }
    pub fn repo(&self) -> Repository {
        Repository::open(&self.store(), Some(&self.path("cache"))).unwrap()
    }
    /// Mounts in this process (a real kernel mount; the server runs on threads).
    pub fn mount(&self, opts: MountOptions) -> Mounted {
        let vfs = Vfs::new(Arc::new(self.repo()), VfsConfig::default()).unwrap();
        self.mount_vfs(Arc::new(vfs), opts)
    }
    pub fn mount_vfs(&self, vfs: Arc<Vfs>, opts: MountOptions) -> Mounted {
        let (tx, rx) = mpsc::channel();
        let mp = self.mnt();
        let mut guard = Mounted {
            mp: mp.clone(),
            thread: None,
        };
        let thread = std::thread::spawn(move || {
            mount_vfs(vfs, &mp, &opts, move || {
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
pub struct Mounted {
    pub mp: PathBuf,
    pub thread: Option<JoinHandle<Result<(), String>>>,
}

pub fn unmount(mp: &Path) -> bool {
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

pub fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
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

pub fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every kind of entry a mail server has, with odd metadata.
pub fn varied_tree(root: &Path) {
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

pub fn walk(root: &Path) -> Vec<PathBuf> {
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

pub fn xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    bmbackup::vfs::memsource::read_xattrs(p)
        .unwrap()
        .into_iter()
        .map(|x| (x.name, x.value))
        .collect()
}

/// Kills a helper process if the test fails before it is waited for.
pub struct KillOnDrop(pub Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The mount daemon as admins run it: `bmbackup mount`.
pub fn mount_program() -> MountProgram {
    MountProgram {
        program: PathBuf::from(env!("CARGO_BIN_EXE_bmbackup")),
        sub: Some("mount"),
    }
}

/// How to start `bmbackup mount` with the test's paths.
pub struct MountProgram {
    program: PathBuf,
    sub: Option<&'static str>,
}

impl MountProgram {
    /// `… STORE MOUNTPOINT`, with the test's catalog folder.
    pub fn command(&self, env: &Env) -> Command {
        self.command_with(&env.store(), &env.mnt(), &env.path("cache"))
    }
    pub fn command_with(&self, store: &Path, mountpoint: &Path, cache: &Path) -> Command {
        let mut c = Command::new(&self.program);
        c.args(self.sub)
            .arg(store)
            .arg(mountpoint)
            .env("BMBACKUP_CACHE", cache)
            .env_remove("BMBACKUP_CONFIG");
        c
    }
}

pub fn is_mounted(mp: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(mp.to_str().unwrap()))
}

/// The process serving `mp`, found through /proc (the daemon's parent has exited).
pub fn daemon_pid(mp: &Path) -> Option<i32> {
    for e in fs::read_dir("/proc").ok()? {
        let e = e.ok()?;
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        let ours = |a: &&[u8]| a.ends_with(b"bmbackup");
        if args.first().is_some_and(ours) && args.contains(&mp.as_os_str().as_bytes()) {
            return Some(pid);
        }
    }
    None
}
