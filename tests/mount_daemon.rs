//! The mount as a process: damaged data is EIO with a log line naming the file, the daemon
//! returns once the mount is up, SIGTERM unmounts, and a stale mount left by a killed daemon is
//! cleared by the next mount.

mod common;

use bmbackup::fuse::MountOptions;
use common::*;
use std::fs;
use std::time::{Duration, Instant};

#[test]
fn damaged_chunk_reads_fail_with_eio() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("good"), b"small and fine");
    write(&src.join("bad"), &bytes(4 << 20, 9));
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
    let log = env.path("log");
    let mut daemon = KillOnDrop(Some(
        env.mount_command()
            .arg("--foreground")
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    ));
    let _guard = MountGuard::new(&env.mnt());
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
        .find(|l| l.contains("bmbackup: error: "))
        .unwrap_or_default();
    eprintln!("daemon log: {line}");
    assert!(
        line.contains("h/p/") && line.contains("/bad: "),
        "no error naming the file in:\n{text}"
    );
}

#[test]
fn daemon_sigterm_and_stale_mounts() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("f"), b"data");
    env.backup("h", "p", &src);
    let mp = env.mnt();
    let guard = MountGuard::new(&mp);
    let daemon = |extra: &[&str]| env.mount_command().args(extra).output().unwrap();
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

    // A daemon that fails after the fork makes the waiting parent fail too, with its message.
    let out = mount_command(&env.path("no-store"), &env.path("src"), &env.cache())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty());

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
        env.mount_command().arg("--foreground").spawn().unwrap(),
    ));
    let t = Instant::now();
    // Listing the root proves the new daemon answers: the dead mount's kernel caches may still
    // serve `f` (files open without a request, and its pages are cached), but an opendir
    // always reaches the server.
    let serves = || {
        fs::read_dir(&mp).is_ok_and(|mut d| d.next().is_some())
            && fs::read(mp.join("h/p/last/f")).is_ok_and(|d| d == b"data")
    };
    while !serves() {
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

/// Tools probe opened files with ioctls; the daemon answers ENOTTY without a log line (fuser's
/// default logged a WARN per ioctl: three per file `cat` opened).
#[test]
fn ioctls_are_answered_quietly() {
    use std::os::fd::AsRawFd;
    let env = Env::new();
    let src = env.path("src");
    const FILES: usize = 20;
    for i in 0..FILES {
        write(&src.join(format!("f{i}")), format!("mail {i}").as_bytes());
    }
    env.backup("h", "p", &src);
    let log = env.path("log");
    let mut daemon = KillOnDrop(Some(
        env.mount_command()
            .arg("--foreground")
            .env("RUST_LOG", "warn")
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    ));
    let _guard = MountGuard::new(&env.mnt());
    let last = env.mnt().join("h/p/last");
    let t = Instant::now();
    while fs::read(last.join("f0")).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "mount did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut answered = 0;
    for i in 0..FILES {
        let f = fs::File::open(last.join(format!("f{i}"))).unwrap();
        let mut flags: libc::c_long = 0;
        // SAFETY: FS_IOC_GETFLAGS writes one long into `flags`, which outlives the call.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        let err = std::io::Error::last_os_error().raw_os_error();
        assert_eq!((rc, err), (-1, Some(libc::ENOTTY)), "f{i}");
        answered += 1;
        // And what `cat` does, which probes too.
        let out = std::process::Command::new("cat")
            .arg(last.join(format!("f{i}")))
            .output()
            .unwrap();
        assert_eq!(out.stdout, format!("mail {i}").as_bytes());
    }
    let child = daemon.0.take().unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait_with_output().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    let warns = text.lines().filter(|l| l.contains("WARN")).count();
    assert_eq!(warns, 0, "{answered} files opened; daemon log:\n{text}");
}
