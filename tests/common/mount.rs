//! Real FUSE mounts in tests: a guard that always unmounts on drop (also when the test panics),
//! mounting a test's store in this process or through `bmbackup mount`, and finding mounts and
//! the daemon serving them.

use super::Env;
use bmbackup::fuse::{mount_vfs, MountOptions};
use bmbackup::vfs::{Vfs, VfsConfig};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// Unmounts `mp` on drop: `fusermount3 -u`, then `-uz` if something still holds it. A mount
/// served by a thread of this process joins that thread once unmounted (and reports its error
/// unless the test is already failing).
pub struct MountGuard {
    mp: PathBuf,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl MountGuard {
    /// Guards whatever gets mounted at `mp` (by a daemon, a demo, `mount -T …`).
    pub fn new(mp: &Path) -> MountGuard {
        MountGuard {
            mp: mp.to_path_buf(),
            thread: None,
        }
    }
}

impl Drop for MountGuard {
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

/// `fusermount3 -u MP`, then a lazy `-uz` if that failed; whether the first one succeeded.
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

impl Env {
    /// Mounts the store at `mnt()` in this process (a real kernel mount; the server runs on
    /// threads) and returns once it is up.
    pub fn mount(&self, opts: MountOptions) -> MountGuard {
        let vfs = Vfs::new(Arc::new(self.repo()), VfsConfig::default()).unwrap();
        self.mount_vfs(Arc::new(vfs), opts)
    }

    pub fn mount_vfs(&self, vfs: Arc<Vfs>, opts: MountOptions) -> MountGuard {
        let (tx, rx) = mpsc::channel();
        let mp = self.mnt();
        let mut guard = MountGuard::new(&mp);
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

    /// `bmbackup mount STORE MNT` as admins run it, with this environment's cache.
    pub fn mount_command(&self) -> Command {
        mount_command(&self.store(), &self.mnt(), &self.cache())
    }
}

/// `bmbackup mount STORE MOUNTPOINT` with the catalog cache `cache` and no config.
pub fn mount_command(store: &Path, mountpoint: &Path, cache: &Path) -> Command {
    let mut c = Command::new(super::BIN);
    c.arg("mount")
        .arg(store)
        .arg(mountpoint)
        .env("BMBACKUP_CACHE", cache)
        .env_remove("BMBACKUP_CONFIG");
    c
}

/// A tmpfs mounted for one test, unmounted when dropped (also when the test fails).
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .ok()?;
        st.success().then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Kills a helper process if the test fails before it is waited for.
pub struct KillOnDrop(pub Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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
