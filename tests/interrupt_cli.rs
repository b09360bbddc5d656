//! Ctrl-C and SIGTERM during a backup or a restore: "interrupted", exit 130 or 143, no lock file
//! and no temp file of the run left behind, and the next run works and reuses what was written.

mod common;
use common::*;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// `n` incompressible files of 1 MiB: slow enough to interrupt in the middle.
fn big_source(root: &Path, n: usize) {
    for i in 0..n {
        write(
            &root.join(format!("d{}/f{i}", i % 8)),
            &bytes(1 << 20, i as u64 + 1),
        );
    }
}

/// Every file under `dir` (recursively) whose name satisfies `f`.
fn files_named(dir: &Path, f: &dyn Fn(&str) -> bool) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    walk(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .filter(|p| f(&p.file_name().unwrap().to_string_lossy()))
        .map(|p| p.display().to_string())
        .collect()
}

/// Runs `args`, waits until `ready()`, sends `sig`, and returns the output.
fn interrupt(env: &Env, args: &[&str], ready: &dyn Fn() -> bool, sig: i32) -> Output {
    let mut child = env
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} ended before it could be interrupted"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{args:?}: never ready"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    child.wait_with_output().unwrap()
}

#[test]
fn an_interrupted_backup_removes_its_locks_and_the_next_one_reuses_its_packs() {
    let env = Env::new();
    let src = env.path("src");
    big_source(&src, 160);
    let part = format!("p={}", src.display());
    let store = env.store();
    let packs = store.join("packs");
    let out = interrupt(
        &env,
        &["backup", "--host", HOST, "--part", &part, "--threads", "1"],
        &|| files_named(&packs, &|n| n.ends_with(".pack")).len() >= 2,
        libc::SIGINT,
    );
    let err = expect_exit(&out, 130, "interrupted (SIGINT)");
    assert!(err.contains("removed 2 lock files"), "{err}");
    assert_eq!(
        files_named(&store.join("locks"), &|_| true),
        Vec::<String>::new()
    );
    assert_eq!(
        files_named(&store, &|n| n.starts_with(".tmp-")),
        Vec::<String>::new()
    );
    assert!(env.snapshots().is_empty());
    // The next backup commits, and reads but does not store again what the first one wrote.
    let snap = env.backup(HOST, "p", &src);
    let added = snap["bytes_added"].as_u64().unwrap();
    assert!(added < snap["bytes"].as_u64().unwrap(), "{snap}");
    env.assert_check_passes();
}

#[test]
fn an_interrupted_restore_leaves_no_half_written_file_and_a_rerun_completes() {
    let env = Env::new();
    let src = env.path("src");
    big_source(&src, 96);
    env.backup(HOST, "p", &src);
    let dest = env.path("dest");
    let d = dest.to_str().unwrap();
    let out = interrupt(
        &env,
        &["restore", "--host", HOST, "--part", "p", "", d],
        &|| files_named(&dest, &|n| n.starts_with('f')).len() >= 4,
        libc::SIGTERM,
    );
    expect_exit(&out, 143, "interrupted (SIGTERM)");
    assert_eq!(
        files_named(&dest, &|n| n.starts_with(".bmbackup-partial-")),
        Vec::<String>::new()
    );
    env.ok(&[
        "restore",
        "--host",
        HOST,
        "--part",
        "p",
        "--overwrite",
        "",
        d,
    ]);
    assert_restored(&src, &dest);
}
