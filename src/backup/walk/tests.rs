//! The walk of a big folder holds one batch of entries, not the folder, and stays equal to a
//! walk that holds everything: the same tree ids with and without a parent, the parent's id
//! reused when nothing changed.

use super::super::{backup_part, BackupOptions, PartReport, PartSpec, Progress};
use super::stat::LSTAT_BATCH;
use crate::pages::PAGE_MAX;
use crate::repo::Repository;
use crate::store::lock::{LockKind, StoreLock};
use crate::store::Store;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Names in the big folder: three batches and more, so a walk holding it whole is caught.
const FILES: usize = 3 * LSTAT_BATCH + 123;

fn backup(repo: &Repository, src: &Path, host: &str) -> (PartReport, u64) {
    let lock = StoreLock::acquire(
        repo.store.shared_backend(),
        LockKind::Shared,
        "test",
        Duration::ZERO,
    )
    .unwrap();
    let part = PartSpec {
        name: "mail/imap".into(),
        path: src.to_path_buf(),
        compression_level: None,
    };
    let opts = BackupOptions {
        host: host.into(),
        compression_level: 1,
        threads: 2,
        started_at_ns: None,
        one_file_system: false,
        lock_wait: Duration::ZERO,
    };
    let progress = Progress::default();
    let report = backup_part(repo, &part, &opts, &progress, &lock).unwrap();
    (report, progress.entries_held_peak.load(Ordering::Relaxed))
}

#[test]
fn a_big_folder_is_walked_a_batch_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    Store::init(&store, crate::chunker::ChunkParams::DEFAULT).unwrap();
    let repo = Repository::open(&store, Some(&dir.path().join("cache"))).unwrap();
    let src = dir.path().join("src");
    let big = src.join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..FILES {
        std::fs::write(big.join(format!("{i}.")), format!("message {i}")).unwrap();
    }
    std::fs::write(src.join("small"), b"x").unwrap();

    let (first, held) = backup(&repo, &src, "a");
    // One batch of entries and the page being built, not the folder's FILES entries.
    assert!(
        held <= (LSTAT_BATCH + PAGE_MAX + 1) as u64,
        "{held} entries held at once for a folder of {FILES}"
    );
    assert!(held > 0);

    // Nothing changed: the parent's ids are reused and no tree is written.
    let (same, held) = backup(&repo, &src, "a");
    assert_eq!(same.manifest.root, first.manifest.root);
    assert_eq!(same.manifest.bytes_added, 0);
    assert!(held <= (LSTAT_BATCH + PAGE_MAX + 1) as u64);

    // One change in the third batch, one file gone from the first: the entries held back as
    // equal to the parent's are replayed, and the folder is the one a walk without parent makes.
    std::fs::write(big.join(format!("{}.", 2 * LSTAT_BATCH + 7)), b"changed!").unwrap();
    std::fs::remove_file(big.join("5.")).unwrap();
    let (changed, _) = backup(&repo, &src, "a");
    assert_ne!(changed.manifest.root, first.manifest.root);
    let (fresh, _) = backup(&repo, &src, "b");
    assert_eq!(changed.manifest.root, fresh.manifest.root);
    let root = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .find(|s| s.id == changed.id)
        .unwrap()
        .root;
    let tree = repo.read_tree(root).unwrap();
    let big_id = tree.find(b"big").unwrap().subtree().unwrap();
    assert_eq!(repo.read_folder(big_id).unwrap().len(), (FILES - 1) as u64);

    // A file gone and nothing else: as many entries short, so not the parent's folder.
    std::fs::remove_file(big.join("6.")).unwrap();
    let (fewer, _) = backup(&repo, &src, "a");
    let (fresh, _) = backup(&repo, &src, "c");
    assert_eq!(fewer.manifest.root, fresh.manifest.root);
    assert_ne!(fewer.manifest.root, changed.manifest.root);
}
