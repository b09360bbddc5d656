//! Damaged stores end to end: bit rot in a pack and in a manifest, a lost catalog, a truncated
//! pack, a deleted pack and half-written temp files. Each time `check` must name exactly the
//! affected snapshots and files, restore must restore the rest, prune must refuse to act on a
//! store it cannot fully read, and `repair` followed by a backup must heal what the source still
//! has. Stores use 1 MiB average chunks (`--chunk-avg 1M`): the damage scenarios count one chunk
//! per small file.

mod common;

use bmbackup::id::Digest;
use common::{bytes, copy_tree, flip, Env};
use std::fs;

fn ids(env: &Env) -> Vec<String> {
    env.snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// (kind, state, [(snapshot, path)]) of one lost blob.
type Lost = (String, String, Vec<(String, String)>);

/// Every lost blob in a check report.
fn lost(v: &serde_json::Value) -> Vec<Lost> {
    v["bad_blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let mut uses: Vec<(String, String)> = b["uses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| {
                    (
                        u["snapshot"].as_str().unwrap().to_string(),
                        u["path"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            uses.sort();
            (
                b["kind"].as_str().unwrap().to_string(),
                b["state"].as_str().unwrap().to_string(),
                uses,
            )
        })
        .collect()
}

#[test]
fn bit_rot_is_named_restored_around_and_healed() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a"), bytes(100_000, 1)).unwrap();
    fs::write(src.join("sub/c"), bytes(100_000, 3)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let e_data = bytes(120_000, 5);
    fs::write(src.join("sub/e"), &e_data).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let snap2 = env.path("snap2");
    copy_tree(&src, &snap2);
    fs::write(src.join("f"), bytes(10_000, 6)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let [s1, s2, s3] = <[String; 3]>::try_from(ids(&env)).unwrap();
    env.assert_check_passes();

    // Rot one byte of sub/e's chunk (in snapshots 2 and 3) and the first byte of manifest 3.
    let (pack, entry) = env.find_blob(&Digest::of(&e_data));
    flip(&pack, entry.offset + u64::from(entry.stored_len) / 2);
    let m3 = env.store().join(format!("snapshots/{s3}.json"));
    flip(&m3, 0);

    let (ok, v) = env.check_json(true);
    assert!(!ok);
    let bad_manifests: Vec<&str> = v["damaged_manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(bad_manifests, vec![m3.to_str().unwrap()]);
    // Snapshot 3 is unreadable, so only snapshot 2 is known to use the rotten chunk.
    assert_eq!(
        lost(&v),
        vec![(
            "chunk".into(),
            "damaged".into(),
            vec![(s2.clone(), "sub/e".into())]
        )]
    );
    let text = env.code(&["check", "--read-data"], 1);
    assert!(text.contains("sub/e") && text.contains(&s2[..12]), "{text}");

    // Restore reports the damaged file and restores the rest exactly.
    let out = env.path("r2");
    let msg = env.code(&["restore", &s2, out.to_str().unwrap()], 3);
    assert!(msg.contains("sub/e"), "{msg}");
    let sub_mtime = fs::metadata(snap2.join("sub")).unwrap().modified().unwrap();
    let e_mtime = fs::metadata(snap2.join("sub/e"))
        .unwrap()
        .modified()
        .unwrap();
    fs::remove_file(snap2.join("sub/e")).unwrap();
    fs::File::open(snap2.join("sub"))
        .unwrap()
        .set_modified(sub_mtime)
        .unwrap();
    common::assert_restored(&snap2, &out);

    // Prune must not act on a store with an unreadable manifest.
    let msg = env.code(&["prune"], 1);
    assert!(msg.contains("cannot be read"), "{msg}");

    let msg = env.ok(&["repair"]);
    assert!(msg.contains("set aside"), "{msg}");
    assert!(env
        .store()
        .join("damaged/snapshots")
        .join(format!("{s3}.json"))
        .exists());
    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 2, "the unreadable manifest is set aside");
    assert_eq!(snaps[0]["status"], "complete");
    assert_eq!(snaps[1]["status"], "damaged");
    assert_eq!(snaps[1]["damaged_files"][0]["path"], "sub/e");
    assert_eq!(snaps[0]["id"], s1.as_str());

    // The source still has sub/e: the next backup stores its chunk again.
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    env.assert_check_passes();
    let last = ids(&env).pop().unwrap();
    env.restore_matches(&last, &src);
    fs::write(snap2.join("sub/e"), &e_data).unwrap();
    fs::File::options()
        .write(true)
        .open(snap2.join("sub/e"))
        .unwrap()
        .set_modified(e_mtime)
        .unwrap();
    fs::File::open(snap2.join("sub"))
        .unwrap()
        .set_modified(sub_mtime)
        .unwrap();
    env.restore_matches(&s2, &snap2);
    // A second repair clears the mark of the healed snapshot; prune works again.
    let msg = env.ok(&["repair"]);
    assert!(msg.contains("complete again"), "{msg}");
    assert!(env.snapshots().iter().all(|s| s["status"] == "complete"));
    env.ok(&["prune"]);
    env.assert_check_passes();
}

#[test]
fn lost_catalog_is_rebuilt() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), bytes(300_000, 1)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    fs::remove_dir_all(env.path("cache")).unwrap();
    env.assert_check_passes();
    env.restore_matches("h/mail/imap/last", &src);
    fs::remove_dir_all(env.path("cache")).unwrap();
    env.ok(&["repair"]);
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    env.assert_check_passes();
}

#[test]
fn truncated_pack_is_set_aside_and_healed() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = env.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/a"), bytes(200_000, 1)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let s1 = ids(&env).pop().unwrap();
    let packs = env.pack_files();
    assert_eq!(packs.len(), 1);
    let len = fs::metadata(&packs[0]).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&packs[0])
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let (ok, v) = env.check_json(false);
    assert!(!ok);
    assert_eq!(
        v["damaged_packs"][0]["path"].as_str().unwrap(),
        packs[0].to_str().unwrap()
    );
    assert_eq!(
        lost(&v),
        vec![(
            "tree".into(),
            "missing".into(),
            vec![(s1.clone(), "/".into())]
        )]
    );
    env.ok(&["repair"]);
    assert!(!packs[0].exists());
    assert_eq!(env.snapshots()[0]["status"], "damaged");
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    env.assert_check_passes();
    env.restore_matches(&s1, &src);
}

#[test]
fn deleted_pack_is_reported_per_file_and_unchanged_files_are_read_again() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), bytes(100_000, 1)).unwrap();
    fs::write(src.join("b"), bytes(100_000, 2)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let first_pack = env.pack_files();
    fs::write(src.join("c"), bytes(100_000, 3)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let [s1, s2] = <[String; 2]>::try_from(ids(&env)).unwrap();
    fs::remove_file(&first_pack[0]).unwrap();
    let (ok, v) = env.check_json(false);
    assert!(!ok);
    let mut got = lost(&v);
    got.sort();
    let mut want = vec![
        (
            "chunk".to_string(),
            "missing".to_string(),
            vec![(s2.clone(), "a".to_string())],
        ),
        (
            "chunk".into(),
            "missing".into(),
            vec![(s2.clone(), "b".into())],
        ),
        (
            "tree".into(),
            "missing".into(),
            vec![(s1.clone(), "/".into())],
        ),
    ];
    want.sort();
    assert_eq!(got, want);
    env.ok(&["repair"]);
    // a and b are unchanged since snapshot 2, but their chunks are gone: they must be read again.
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    env.restore_matches("h/mail/imap/last", &src);
    // Snapshot 2 is whole again; snapshot 1's root tree ({a, b}) is gone for good.
    env.restore_matches(&s2, &src);
    let (ok, v) = env.check_json(true);
    assert!(!ok);
    assert_eq!(
        lost(&v),
        vec![(
            "tree".into(),
            "missing".into(),
            vec![(s1.clone(), "/".into())]
        )]
    );
    // Once the lost snapshot is forgotten, prune runs and the store is clean.
    fs::remove_file(env.store().join(format!("snapshots/{s1}.json"))).unwrap();
    env.ok(&["prune"]);
    env.assert_check_passes();
}

#[test]
fn half_written_temp_files_are_ignored_then_removed() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), bytes(50_000, 1)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let pack_dir = env.pack_files()[0].parent().unwrap().to_path_buf();
    let young = pack_dir.join(".tmp-1-abc-young.pack");
    let old = env.store().join("snapshots/.tmp-1-abc-old.json");
    fs::write(&young, b"BMPACK\0\x01half").unwrap();
    fs::write(&old, b"{\"host\":").unwrap();
    for p in [&young, &old] {
        // As bmbackup makes them (check would report a file open to others).
        fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    env.assert_check_passes();
    env.restore_matches("h/mail/imap/last", &src);
    env.ok(&["repair"]);
    assert!(!old.exists(), "an old temp file is removed");
    assert!(young.exists(), "a young one may belong to a running backup");
    env.ok(&["repair", "--now"]);
    assert!(!young.exists());
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    env.assert_check_passes();
}

#[test]
fn prune_keeps_the_good_copy_of_a_blob_stored_twice() {
    use bmbackup::store::pack::{Frame, PackBuilder};
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let data = bytes(150_000, 1);
    fs::write(src.join("a"), &data).unwrap();
    fs::write(src.join("b"), bytes(150_000, 2)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    // A second pack holding the same blobs in another order (as two hosts writing at once, or
    // an interrupted prune, leave behind).
    let store = env.open_store();
    let p1 = store.list_packs().unwrap()[0];
    let (_, entries) = store.read_pack_index(&p1).unwrap();
    let mut b = PackBuilder::new();
    for e in entries.iter().rev() {
        let frame = store.read_frame(&p1, e).unwrap();
        b.add(
            e.kind,
            e.id,
            &Frame {
                bytes: frame,
                raw_len: e.raw_len,
            },
        );
    }
    let (bytes, id, _) = b.finish();
    let p2 = bmbackup::id::PackId(id);
    store.write_pack(&p2, &bytes).unwrap();
    // Rot the copy in the pack prune looks at first (lowest id).
    let first = if p1.0 < p2.0 { p1 } else { p2 };
    let (_, first_entries) = store.read_pack_index(&first).unwrap();
    let e = first_entries
        .iter()
        .find(|e| e.id == Digest::of(&data))
        .unwrap();
    flip(
        std::path::Path::new(&store.describe_pack(&first)),
        e.offset + 10,
    );
    env.ok(&["prune", "--repack-below", "100"]);
    env.restore_matches("h/mail/imap/last", &src);
    env.ok(&["repair"]);
    env.assert_check_passes();
    env.restore_matches("h/mail/imap/last", &src);
}

#[test]
fn read_data_percent_verifies_a_sample() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..40u64 {
        fs::write(src.join(format!("f{i}")), bytes(20_000, i)).unwrap();
    }
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let run = |arg: &str| -> serde_json::Value {
        serde_json::from_str(&env.ok(&["check", "--json", arg])).unwrap()
    };
    let all = run("--read-data");
    assert_eq!(all["chunks_verified"], 40);
    let some = run("--read-data=25");
    let n = some["chunks_verified"].as_u64().unwrap();
    assert!(n < 40, "{some}");
    assert!(some["bytes_read"].as_u64().unwrap() < all["bytes_read"].as_u64().unwrap());
    assert_eq!(run("--read-data=0")["chunks_verified"], 0);
}

#[test]
fn a_rotten_manifest_that_still_parses_is_rewritten_by_repair() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), bytes(50_000, 1)).unwrap();
    env.backup_with("h", "mail/imap", &src, &["--threads", "2"]);
    let m = env.manifest_files().remove(0);
    let text = fs::read(&m).unwrap();
    // A flipped bit inside the source path: still JSON, no longer matching its name.
    let at = text.windows(4).position(|w| w == b"/src").unwrap() as u64 + 1;
    flip(&m, at);
    let (ok, v) = env.check_json(false);
    assert!(
        !ok && v["damaged_manifests"][0]["path"] == m.to_str().unwrap(),
        "{v}"
    );
    let msg = env.ok(&["repair"]);
    assert!(msg.contains("rewrote readable damaged manifest"), "{msg}");
    assert_eq!(env.snapshots().len(), 1);
    env.assert_check_passes();
    env.restore_matches("h/mail/imap/last", &src);
}

/// A backup killed on this host leaves temp files; the next backup removes those whose writer is
/// gone, and leaves those of a live writer, of another host, and of older versions to `repair`.
#[test]
fn next_backup_removes_temp_files_of_killed_writers() {
    use bmbackup::store::backend::temp_name;
    use bmbackup::store::lock::hostname;
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"first").unwrap();
    env.backup("h", "mail/imap", &src);
    let store = env.store();
    let pack_dir = env.pack_files()[0].parent().unwrap().to_path_buf();
    // Above the kernel's PID_MAX_LIMIT: a writer that is certainly gone.
    let dead = 4_194_305;
    let me = std::process::id();
    let host = hostname();
    let orphans = [
        pack_dir.join(temp_name("00.pack", &host, dead)),
        store
            .join("snapshots")
            .join(temp_name("11.json", &host, dead)),
        store
            .join("locks")
            .join(temp_name("h-1-x.lock", &host, dead)),
    ];
    let kept = [
        pack_dir.join(temp_name("22.pack", &host, me)),
        pack_dir.join(temp_name("33.pack", "another-host", dead)),
        pack_dir.join(".tmp-4194305-0123456789ab-44.pack"),
    ];
    for p in orphans.iter().chain(&kept) {
        fs::write(p, b"half a pack").unwrap();
        // As bmbackup makes them (check would report a file open to others).
        fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    fs::write(src.join("b"), b"second").unwrap();
    env.backup("h", "mail/imap", &src);
    for p in &orphans {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    for p in &kept {
        assert!(p.exists(), "{} removed", p.display());
    }
    env.assert_check_passes();
}
