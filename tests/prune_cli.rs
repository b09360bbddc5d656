//! End-to-end tests of `prune`: data of forgotten snapshots goes, kept snapshots still restore
//! byte-identical, and prune racing a backup never leaves a snapshot pointing at deleted data.

mod common;

use common::{assert_restored, bytes, Env};
use std::fs;

use std::process::Stdio;

#[test]
fn forgotten_data_is_pruned_and_kept_snapshots_restore() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/keep"), bytes(2 << 20, 1)).unwrap();
    fs::write(src.join("d/old"), bytes(8 << 20, 2)).unwrap();
    let part = format!("mail/imap={}", src.display());
    env.ok(&["backup", "--host", "h", "--part", &part]);
    let old_copy = env.path("old-copy");
    env.ok(&["restore", "h/mail/imap/last", old_copy.to_str().unwrap()]);
    fs::remove_file(src.join("d/old")).unwrap();
    fs::write(src.join("d/new"), bytes(1 << 20, 3)).unwrap();
    env.ok(&["backup", "--host", "h", "--part", &part]);
    let before = env.store_size();

    // Nothing is forgotten yet: prune deletes nothing, even when asked to rewrite every pack
    // (a pack rewritten with nothing dropped would have the same name as its copy).
    env.ok(&["prune", "--repack-below", "100"]);
    assert_eq!(env.store_size(), before);
    let check = env.path("check-all-live");
    env.ok(&["restore", "h/mail/imap/last", check.to_str().unwrap()]);
    assert_restored(&src, &check);

    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 2);
    let first = snaps[0]["id"].as_str().unwrap();
    fs::remove_file(env.store().join(format!("snapshots/{first}.json"))).unwrap();
    let report = env.ok(&["prune", "--repack-below", "90"]);
    assert!(report.contains("rewrote"), "{report}");
    let after = env.store_size();
    assert!(
        after < before - (7 << 20),
        "store shrank from {before} to {after}"
    );

    let out = env.path("restored");
    env.ok(&["restore", "h/mail/imap/last", out.to_str().unwrap()]);
    assert_restored(&src, &out);
    // Even with the catalog rebuilt from the pruned store.
    fs::remove_dir_all(env.path("cache")).unwrap();
    let out2 = env.path("restored2");
    env.ok(&["restore", "h/mail/imap/last", out2.to_str().unwrap()]);
    assert_restored(&src, &out2);
}

#[test]
fn prune_racing_a_backup_never_breaks_a_snapshot() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let part = format!("mail/imap={}", src.display());
    let rounds = std::env::var("BMBACKUP_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    for round in 0..rounds {
        // Each round replaces most of the data, so the previous snapshot's chunks become garbage
        // once its manifest is gone.
        for i in 0..6u64 {
            fs::write(src.join(format!("f{i}")), bytes(600 << 10, round * 100 + i)).unwrap();
        }
        let backup = env
            .cmd(&[
                "backup",
                "--host",
                "h",
                "--part",
                &part,
                "--lock-wait",
                "60",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Forget all but the newest snapshot (what `forget --keep-last 1` does), then prune.
        let snaps = env.snapshots();
        for s in snaps.iter().rev().skip(1) {
            let _ = fs::remove_file(
                env.store()
                    .join(format!("snapshots/{}.json", s["id"].as_str().unwrap())),
            );
        }
        let prune = env.run(&["prune", "--repack-below", "100"]);
        let stderr = String::from_utf8_lossy(&prune.stderr).to_string();
        assert!(
            prune.status.success() || stderr.contains("store is busy"),
            "prune failed for another reason: {stderr}"
        );
        let b = backup.wait_with_output().unwrap();
        assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
        // The snapshot just made restores exactly the data it saw.
        let out = env.path(&format!("r{round}"));
        env.ok(&["restore", "h/mail/imap/last", out.to_str().unwrap()]);
        assert_restored(&src, &out);
    }
    // A final prune with no backup running succeeds.
    env.ok(&["prune"]);
}
