//! Faults around a running backup: a full disk under the store, and a backup frozen (`kill -STOP`)
//! while another process forgets and prunes.

mod common;

use common::{bytes, Env, Tmpfs};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn full_disk_fails_clearly_and_loses_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let mnt = scratch.path().join("small");
    let Some(_fs) = Tmpfs::mount(&mnt, "20m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs (not root?)");
        return;
    };
    let env = Env::with_store_at(&mnt.join("store"), &["--chunk-avg", "1M"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("small"), bytes(500_000, 1)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let first = env.snapshots()[0]["id"].as_str().unwrap().to_string();
    let first_copy = env.path("first");
    fs::create_dir_all(&first_copy).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(src.join("small"))
        .arg(&first_copy)
        .status()
        .unwrap();
    assert!(st.success());
    // Leave ~11 MiB free, then back up 16 MiB that does not compress.
    let filler = mnt.join("filler");
    fs::write(&filler, vec![1u8; 8 << 20]).unwrap();
    fs::write(src.join("big"), bytes(16 << 20, 2)).unwrap();
    let part = format!("mail/imap={}", src.display());
    let msg = env.code(&["backup", "--host", "h", "--part", &part], 1);
    assert!(
        msg.contains("No space left on device")
            && msg.contains(&format!("{}/packs/", env.store().display())),
        "the error names the store file: {msg}"
    );
    assert_eq!(env.snapshots().len(), 1);
    env.assert_check_passes();
    env.restore_matches(&first, &first_copy);
    fs::remove_file(&filler).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    env.assert_check_passes();
    env.restore_matches("h/mail/imap/last", &src);
}

fn spawn_backup(env: &Env, src: &Path) -> Child {
    let part = format!("mail/imap={}", src.display());
    env.cmd(&["backup", "--host", "h", "--part", &part, "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Waits until the backup holds its lock (it is then past its catalog sync and writing).
fn wait_for_lock(env: &Env) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = fs::read_dir(env.store().join("locks"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.ends_with(".lock") && !name.starts_with(".tmp-")
            })
        {
            return e;
        }
        assert!(Instant::now() < deadline, "backup never took its lock");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn forget_all_but_newest(env: &Env) {
    let snaps = env.snapshots();
    for s in snaps.iter().rev().skip(1) {
        let id = s["id"].as_str().unwrap();
        fs::remove_file(env.store().join(format!("snapshots/{id}.json"))).unwrap();
    }
}

fn setup(env: &Env) -> PathBuf {
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..4u64 {
        fs::write(src.join(format!("f{i}")), bytes(1 << 20, i)).unwrap();
    }
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    for i in 0..24u64 {
        fs::write(src.join(format!("f{i}")), bytes(1 << 20, 100 + i)).unwrap();
    }
    src
}

#[test]
fn prune_beside_a_frozen_backup_is_refused_and_the_backup_completes() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = setup(&env);
    let child = spawn_backup(&env, &src);
    wait_for_lock(&env);
    signal(&child, libc::SIGSTOP);
    forget_all_but_newest(&env);
    let out = env.run(&["prune"]);
    signal(&child, libc::SIGCONT);
    let msg = common::show(&out);
    assert!(
        !out.status.success() && msg.contains("store is busy"),
        "{msg}"
    );
    let b = child.wait_with_output().unwrap();
    assert!(b.status.success(), "{}", common::show(&b));
    env.assert_check_passes();
    env.restore_matches("h/mail/imap/last", &src);
}

#[test]
fn prune_after_a_frozen_backups_lock_went_stale_makes_the_backup_abort() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = setup(&env);
    let child = spawn_backup(&env, &src);
    wait_for_lock(&env);
    signal(&child, libc::SIGSTOP);
    // Age the frozen holder's locks (the store's and its part's) as 15 minutes without
    // heartbeat would.
    for lock in fs::read_dir(env.store().join("locks")).unwrap() {
        let lock = lock.unwrap().path();
        if !lock.to_string_lossy().ends_with(".lock")
            || lock
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
        {
            continue;
        }
        let mut info: serde_json::Value =
            serde_json::from_slice(&fs::read(&lock).unwrap()).unwrap();
        info["refreshed_ns"] = serde_json::json!(1);
        fs::write(&lock, serde_json::to_vec(&info).unwrap()).unwrap();
    }
    forget_all_but_newest(&env);
    env.ok(&["prune", "--repack-below", "100"]);
    signal(&child, libc::SIGCONT);
    let b = child.wait_with_output().unwrap();
    let msg = common::show(&b);
    assert!(
        !b.status.success() && msg.contains("removed by another process"),
        "{msg}"
    );
    env.assert_check_passes();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    env.assert_check_passes();
    env.restore_matches("h/mail/imap/last", &src);
}
