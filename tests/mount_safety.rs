//! The mount as a well-kept filesystem: a daemon only ever unmounts its own mount, a mount whose
//! mount point is taken away from outside exits non-zero under systemd (0 when started by
//! hand), mounts do not stack, a file or a full folder is refused as mount point, and the
//! kernel's table names the type `fuse.bmbackup` and the store as source.

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A store with one snapshot (host `h`, part `p`) of a small folder, and an empty mount point.
fn setup() -> Env {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("d/f"), b"hello");
    env.backup("h", "p", &src);
    env.mnt();
    env
}

fn mount_args(env: &Env) -> Vec<String> {
    vec![
        "mount".into(),
        env.store().display().to_string(),
        env.mnt().display().to_string(),
    ]
}

/// `bmbackup mount STORE MNT --foreground` as a child with its log in a file.
fn foreground(env: &Env, log: &str) -> Child {
    let mut args = mount_args(env);
    args.push("--foreground".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = std::fs::File::create(env.path(log)).unwrap();
    env.cmd(&args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Kills a child daemon when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The mountinfo lines whose mount point is `mp`: (type, source).
fn mounts_at(mp: &Path) -> Vec<(String, String)> {
    let canon = std::fs::canonicalize(mp).unwrap_or_else(|_| mp.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let (ty, source) = (r.next()?, r.next()?);
            (Path::new(point) == canon).then(|| (ty.to_string(), source.to_string()))
        })
        .collect()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn shows_snapshot(mnt: &Path) -> bool {
    mnt.join("h/p/last/d/f").exists()
}

#[test]
fn an_old_daemon_never_unmounts_a_new_mount() {
    let s = setup();
    let _u = MountGuard::new(&s.mnt());
    let a = Kill(foreground(&s, "a.log"));
    wait_until("the first mount answers", || shows_snapshot(&s.mnt()));
    // A shell inside the first mount keeps it alive after a lazy unmount.
    let mut shell = Kill(
        Command::new("sh")
            .arg("-c")
            .arg("sleep 3")
            .current_dir(s.mnt().join("h/p"))
            .spawn()
            .unwrap(),
    );
    let out = Command::new("fusermount3")
        .arg("-uz")
        .arg(s.mnt())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let mut b = Kill(foreground(&s, "b.log"));
    wait_until("the second mount answers", || shows_snapshot(&s.mnt()));
    // The shell leaves: the first daemon's mount ends; it must not take the second one along.
    shell.0.wait().unwrap();
    let mut a = a;
    let _ = a.0.wait();
    std::thread::sleep(Duration::from_millis(500));
    assert!(shows_snapshot(&s.mnt()), "the new mount is gone");
    assert!(b.0.try_wait().unwrap().is_none(), "the new daemon exited");
    // SIGTERM: the new daemon unmounts its own mount and exits 0.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(b.0.id() as i32, libc::SIGTERM) };
    let status = b.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(mounts_at(&s.mnt()).is_empty(), "{:?}", mounts_at(&s.mnt()));
}

#[test]
fn a_mount_taken_away_from_outside_exits_non_zero_under_a_supervisor_only() {
    let s = setup();
    let _u = MountGuard::new(&s.mnt());
    // Under systemd (NOTIFY_SOCKET set): non-zero, so Restart=on-failure mounts it again.
    let mut args = mount_args(&s);
    args.push("--foreground".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = std::fs::File::create(s.path("d.log")).unwrap();
    let mut d = Kill(
        s.cmd(&args)
            .env("RUST_LOG", "info")
            .env("NOTIFY_SOCKET", s.path("no-such-notify-socket"))
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_until("the mount answers", || shows_snapshot(&s.mnt()));
    let out = Command::new("umount").arg(s.mnt()).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let status = d.0.wait().unwrap();
    assert!(!status.success(), "{status:?}");
    let log = std::fs::read_to_string(s.path("d.log")).unwrap();
    assert!(log.contains("unmounted from outside"), "{log}");
    // Started by hand: the admin's umount ends it quietly, exit 0.
    let mut d = Kill(foreground(&s, "e.log"));
    wait_until("the mount answers", || shows_snapshot(&s.mnt()));
    let out = Command::new("umount").arg(s.mnt()).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let status = d.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(s.path("e.log")).unwrap();
    assert!(!log.contains("ERROR") && !log.contains("error"), "{log}");
}

#[test]
fn the_kernel_names_the_type_and_the_store() {
    let s = setup();
    let _u = MountGuard::new(&s.mnt());
    let args = mount_args(&s);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.ok(&args);
    let m = mounts_at(&s.mnt());
    assert_eq!(
        m,
        vec![("fuse.bmbackup".to_string(), s.store().display().to_string())]
    );
    let found = Command::new("findmnt")
        .args(["-n", "-t", "fuse.bmbackup", "-o", "SOURCE"])
        .arg(s.mnt())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&found.stdout).trim(),
        s.store().display().to_string()
    );
}

#[test]
fn mounts_do_not_stack_and_odd_mount_points_are_refused() {
    let s = setup();
    let _u = MountGuard::new(&s.mnt());
    let args = mount_args(&s);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.ok(&args);
    let again = s.run(&args);
    assert!(!again.status.success());
    assert!(show(&again).contains("already mounted"), "{}", show(&again));
    assert_eq!(mounts_at(&s.mnt()).len(), 1, "{:?}", mounts_at(&s.mnt()));

    let file = s.path("a-file");
    std::fs::write(&file, b"keep me readable").unwrap();
    let out = s.run(&["mount", s.store().to_str().unwrap(), file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(show(&out).contains("not a folder"), "{}", show(&out));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me readable");

    let full = s.path("src");
    let out = s.run(&["mount", s.store().to_str().unwrap(), full.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(show(&out).contains("not empty"), "{}", show(&out));
    assert!(mounts_at(&full).is_empty());
}

#[test]
fn host_and_part_folders_keep_the_newest_snapshots_time_and_count_their_folders() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("f"), b"x");
    env.backup_with("h", "p", &src, &["--simulate-time", "2026-11-20 10:00:05"]);
    env.backup_with("h", "p", &src, &["--simulate-time", "2026-11-21 10:00:07"]);
    env.backup_with("h", "q", &src, &["--simulate-time", "2026-11-19 09:00:00"]);
    let newest = 1_795_255_207; // 2026-11-21 10:00:07 UTC
    let look = |mnt: &Path| {
        use std::os::unix::fs::MetadataExt;
        let md = |p: &str| std::fs::metadata(mnt.join(p)).unwrap();
        (
            [md("h").mtime(), md("h/p").mtime(), md("h/q").mtime()],
            [md("h").nlink(), md("h/p").nlink(), md("h/q").nlink()],
        )
    };
    let (times, links) = {
        let _m = env.mount(Default::default());
        look(&env.mnt())
    };
    assert_eq!(times, [newest, newest, 1_795_078_800]);
    // h: p and q; p: two dated folders and last; q: one and last.
    assert_eq!(links, [4, 5, 4]);
    // A remount a second later shows the same times.
    std::thread::sleep(Duration::from_millis(1100));
    let _m = env.mount(Default::default());
    assert_eq!(look(&env.mnt()).0, times);
    // df: the store's size, all of it used.
    let out = Command::new("df")
        .args(["-B1", "--output=size,used"])
        .arg(env.mnt())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(nums[0] > 0 && nums[0] == nums[1], "{text}");
}

/// `bmbackup mount --foreground` with nothing on the command line: the store, the cache and a
/// mount point that does not exist yet come from the config file, and systemd (a notify socket
/// here) hears READY=1 with the number of snapshots, then STOPPING=1 on SIGTERM.
#[test]
fn mount_takes_everything_from_the_config_and_speaks_sd_notify() {
    use std::os::unix::net::UnixDatagram;
    let env = setup();
    let cache = env.path("config-cache");
    let mp = env.path("from-config/mnt");
    env.write_config(&format!(
        "store = {:?}\ncache_dir = {:?}\nmountpoint = {:?}\n",
        env.store(),
        cache,
        mp
    ));
    let socket_path = env.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _u = MountGuard::new(&mp);
    let child = Command::new(BIN)
        .args(["mount", "--foreground"])
        .env_remove("BMBACKUP_STORE")
        .env_remove("BMBACKUP_CACHE")
        .env("BMBACKUP_CONFIG", env.config())
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut d = Kill(child);
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).unwrap();
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    assert!(ready.contains("STATUS=showing 1 snapshot at "), "{ready}");
    // READY means it answers, with no polling.
    assert!(shows_snapshot(&mp));
    assert!(
        std::fs::read_dir(&cache).unwrap().next().is_some(),
        "the catalog is in the configured cache folder"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(d.0.id() as i32, libc::SIGTERM) };
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(d.0.wait().unwrap().success());
    assert!(mounts_at(&mp).is_empty());
}
