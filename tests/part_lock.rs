//! One part is backed up by one process at a time (a `HOST/PART` lock in the store): a second
//! backup of it waits for the first (`--lock-wait`) or refuses, saying who holds it; other parts
//! and hosts run side by side.

mod common;

use bmbackup::store::lock::{LockKind, StoreLock};
use common::{bytes, write, Env};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn backup_cmd(env: &Env, host: &str, part: &str, src: &std::path::Path, wait: u64) -> Command {
    let part = format!("{part}={}", src.display());
    let wait = wait.to_string();
    env.cmd(&[
        "backup",
        "--host",
        host,
        "--part",
        &part,
        "--lock-wait",
        &wait,
    ])
}

/// Every snapshot, oldest first.
fn snapshots(env: &Env) -> Vec<serde_json::Value> {
    let mut all = env.snapshots();
    all.sort_by_key(|s| s["started_ns"].as_i64().unwrap());
    all
}

#[test]
fn a_part_being_backed_up_is_not_backed_up_again_at_the_same_time() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("f"), b"data");
    // Another process backing up h/p holds its lock.
    let store = env.open_store();
    let held = StoreLock::acquire_scoped(
        store.shared_backend(),
        LockKind::Shared,
        "backup of h/p",
        Some("h/p"),
        Duration::ZERO,
    )
    .unwrap();

    let out = backup_cmd(&env, "h", "p", &src, 0).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("part p of host h is being backed up by another backup (pid"),
        "{err}"
    );
    // The part is named once, not again as "part p:" nor in the holder's command.
    assert_eq!(err.matches("part p").count(), 1, "{err}");
    assert!(!err.contains("h/p"), "{err}");
    assert!(snapshots(&env).is_empty());

    // Other parts and other hosts are not held up.
    assert!(backup_cmd(&env, "h", "q", &src, 0)
        .status()
        .unwrap()
        .success());
    assert!(backup_cmd(&env, "g", "p", &src, 0)
        .status()
        .unwrap()
        .success());

    // With time to wait, the second waits for the first and then backs up.
    let mut waiting = backup_cmd(&env, "h", "p", &src, 60)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(waiting.try_wait().unwrap().is_none(), "it waits");
    drop(held);
    let out = waiting.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("waiting up to 60 s"), "{err}");
    let parts: Vec<String> = snapshots(&env)
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["host"].as_str().unwrap(),
                s["part"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(parts, ["h/q", "g/p", "h/p"]);
}

#[test]
fn two_backups_of_one_part_at_once_run_one_after_the_other() {
    let env = Env::new();
    let src = env.path("src");
    for i in 0..16 {
        write(&src.join(format!("f{i}")), &bytes(4 << 20, i));
    }
    let start = Instant::now();
    let children: Vec<_> = (0..2)
        .map(|_| {
            backup_cmd(&env, "h", "p", &src, 300)
                .arg("--threads")
                .arg("1")
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let snaps = snapshots(&env);
    assert_eq!(snaps.len(), 2);
    let (first, second) = (&snaps[0], &snaps[1]);
    assert!(
        second["started_ns"].as_i64().unwrap() >= first["finished_ns"].as_i64().unwrap(),
        "never both reading at once: {first} {second}"
    );
    assert_eq!(first["bytes_read"], 64 << 20);
    assert_eq!(
        second["bytes_read"], 0,
        "the second compares with the first's snapshot and reads nothing"
    );
    eprintln!("two backups in {:?}", start.elapsed());
}
