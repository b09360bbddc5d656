//! Stores written by earlier formats stay readable: `tests/fixtures/store-v1.0` was written by
//! bmbackup's format 1.0 (two snapshots of a small spool) and is read, checked, restored and
//! backed up into by this version; `store-v1.1` (made by `fixtures/make-store-v1.1.sh` with format
//! 1.1) is restored and compared with its source tree rebuilt by that script, and so is
//! `store-v1.2` (`fixtures/make-store-v1.2.sh`: the last format before paged folders). Keep every shipped
//! format's fixture here.

mod common;

use common::{assert_same_tree_with, copy_tree, sh, CompareOptions, Env};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[test]
fn format_1_0_store_reads_restores_and_takes_new_backups() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let env = Env::uninit();
    copy_tree(&fixtures.join("store-v1.0"), &env.store());

    let snaps: serde_json::Value = serde_json::from_str(&env.ok(&["snapshots", "--json"])).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert!(snaps
        .iter()
        .all(|s| s["status"] == "complete" && s["host"] == "10.0.0.5"));
    // Older versions left the store open to other users (0755/0644 under umask 022): check
    // says so, and `repair --fix-modes` makes it private.
    let (ok, v) = env.check_json(false);
    assert!(
        !ok && !v["loose_modes"].as_array().unwrap().is_empty(),
        "{v}"
    );
    assert!(v["bad_blobs"].as_array().unwrap().is_empty(), "{v}");
    env.ok(&["repair", "--fix-modes"]);
    env.ok(&["check", "--read-data"]);

    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    let expected: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(fixtures.join("store-v1.0-expected-last.json")).unwrap(),
    )
    .unwrap();
    for (rel, want) in expected.as_object().unwrap() {
        let p = out.join(rel);
        if let Some(target) = want.get("symlink") {
            assert_eq!(
                fs::read_link(&p).unwrap().to_str().unwrap(),
                target.as_str().unwrap()
            );
            continue;
        }
        let md = fs::symlink_metadata(&p).unwrap();
        let data = fs::read(&p).unwrap();
        assert_eq!(md.len(), want["size"].as_u64().unwrap(), "{rel}");
        assert_eq!(
            blake3::hash(&data).to_hex().as_str(),
            want["blake3"].as_str().unwrap(),
            "{rel}"
        );
        let mtime_ns = md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128;
        assert_eq!(
            mtime_ns,
            want["mtime_ns"].as_i64().unwrap() as i128,
            "{rel}"
        );
        assert_eq!(
            md.mode() & 0o7777,
            want["mode"].as_u64().unwrap() as u32,
            "{rel}"
        );
    }
    let a = fs::metadata(out.join("hardlink")).unwrap();
    let b = fs::metadata(out.join("example.com/user/jdoe/1.")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard links restored as links");

    // A new backup into the old store keeps working and dedups against its data.
    fs::create_dir_all(env.path("new")).unwrap();
    fs::copy(out.join("dump.sql"), env.path("new/dump-copy.sql")).unwrap();
    let part = format!("mail/imap={}", env.path("new").display());
    env.ok(&["backup", "--host", "10.0.0.6", "--part", &part]);
    let snaps: serde_json::Value =
        serde_json::from_str(&env.ok(&["snapshots", "--json", "--host", "10.0.0.6"])).unwrap();
    let added = snaps[0]["bytes_added"].as_u64().unwrap();
    assert!(
        added < 4096,
        "the old store's chunking is kept, so the copy dedups: {added}"
    );
    env.ok(&["check", "--read-data"]);
}

/// A fixture store written by format `version` (`tests/fixtures/store-vVERSION`, one complete
/// snapshot of `files` files made by `make-store-vVERSION.sh`) restores exactly the tree the
/// script rebuilds; then a backup of that tree by this version, after which `after_backup`
/// checks what this fixture is about, is checked and restores the same.
fn old_store_round_trip(version: &str, files: u64, after_backup: impl FnOnce(&Env)) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let env = Env::uninit();
    copy_tree(&fixtures.join(format!("store-v{version}")), &env.store());
    // The tree that was backed up, rebuilt by the script that made the fixture.
    let src = env.path("src");
    sh(&format!(
        "sh {} {}",
        fixtures.join(format!("make-store-v{version}.sh")).display(),
        src.display()
    ));
    let same = CompareOptions {
        sparse: true,
        ..CompareOptions::ignore_root()
    };

    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["status"], "complete");
    assert_eq!(snaps[0]["files"], files);
    // Checked out by git 0644/0755, as an older bmbackup left stores: made private first.
    env.ok(&["repair", "--fix-modes"]);
    env.ok(&["check", "--read-data"]);
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_same_tree_with(&src, &out, &same);

    // A new backup of the same tree into the old store is complete and restores the same.
    let m = env.backup("10.0.0.5", "mail/imap", &src);
    assert_eq!(m["status"], "complete");
    after_backup(&env);
    env.ok(&["check", "--read-data"]);
    let again = env.path("again");
    env.ok(&[
        "restore",
        "10.0.0.5/mail/imap/last",
        again.to_str().unwrap(),
    ]);
    assert_same_tree_with(&src, &again, &same);
}

#[test]
fn format_1_1_store_reads_and_restores_identically() {
    old_store_round_trip("1.1", 6, |_| {});
}

#[test]
fn format_1_2_store_reads_restores_and_takes_paged_backups() {
    // A 1.3 backup of the rebuilt tree (new ctimes: every file is read) over the 1.2 snapshot
    // writes the big folder in pages.
    old_store_round_trip("1.2", 5006, |env| {
        let repo = env.repo();
        let snap = repo.resolve("10.0.0.5/mail/imap/last").unwrap();
        let root = repo.read_folder(snap.root).unwrap();
        let big = root.lookup(&repo, b"big").unwrap().unwrap();
        let big = repo.read_folder(big.subtree().unwrap()).unwrap();
        assert!(big.page_count() > 1 && big.len() == 5000);
    });
}
