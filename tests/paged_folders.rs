//! Paged folders (format 1.3): a folder of more than 4096 entries is stored as pages behind a
//! tree index. Backed up, it reads back the same through every reader (restore, mount, check,
//! ls), an unchanged backup reads no file, one new file rewrites one or two pages, and prune
//! keeps the pages that snapshots still use.

mod common;

use bmbackup::id::TreeId;
use bmbackup::model::Entry;
use bmbackup::pages::TreeBlob;
use bmbackup::repo::Repository;
use common::{assert_same_tree, Env};
use std::fs;
use std::path::Path;

const BIG: usize = 10_000;

/// A part with a folder of BIG files (every 97th holds a few bytes) beside small ones.
fn big_part(src: &Path) -> Vec<Vec<u8>> {
    let big = src.join("user/big");
    fs::create_dir_all(&big).unwrap();
    fs::create_dir_all(src.join("user/small")).unwrap();
    fs::write(src.join("user/small/a"), b"small").unwrap();
    let mut names = Vec::new();
    for i in 0..BIG {
        let name = format!("{i}.");
        let body = if i % 97 == 0 {
            format!("mail {i}\n")
        } else {
            String::new()
        };
        fs::write(big.join(&name), body).unwrap();
        names.push(name.into_bytes());
    }
    names.sort();
    names
}

/// The big folder of the newest snapshot, as stored.
fn big_folder(repo: &Repository) -> bmbackup::repo::folder::Folder {
    let snap = repo.resolve("10.0.0.5/mail/imap/last").unwrap();
    let root = repo.read_folder(snap.root).unwrap();
    let user = root.lookup(repo, b"user").unwrap().unwrap();
    let user = repo.read_folder(user.subtree().unwrap()).unwrap();
    let big = user.lookup(repo, b"big").unwrap().unwrap();
    repo.read_folder(big.subtree().unwrap()).unwrap()
}

fn page_ids(repo: &Repository) -> Vec<TreeId> {
    big_folder(repo).page_refs().iter().map(|p| p.id).collect()
}

#[test]
fn a_big_folder_is_paged_and_reads_back_through_every_reader() {
    let env = Env::new();
    let src = env.path("src");
    let names = big_part(&src);
    env.backup("10.0.0.5", "mail/imap", &src);

    let repo = env.repo();
    let big = big_folder(&repo);
    assert!(
        matches!(big.blob, TreeBlob::Index(_)),
        "a {BIG}-entry folder is paged"
    );
    assert_eq!(big.len(), BIG as u64, "entry count without reading pages");
    assert!(big.page_count() >= 3);
    for pos in [0, 1, 4095, 4096, 7777, BIG - 1] {
        let e: Entry = big.entry_at(&repo, pos as u64).unwrap().unwrap();
        assert_eq!(e.name, names[pos], "entry at {pos}");
        let found = big.lookup(&repo, &names[pos]).unwrap().unwrap();
        assert_eq!(found, e);
    }
    assert!(big.lookup(&repo, b"nope").unwrap().is_none());
    assert!(big.entry_at(&repo, BIG as u64).unwrap().is_none());
    let mut listed = Vec::new();
    big.for_each_entry(&repo, |e| {
        listed.push(e.name.clone());
        Ok::<_, bmbackup::repo::RepoError>(())
    })
    .unwrap();
    assert_eq!(listed, names);
    drop(repo);

    env.ok(&["check", "--read-data"]);
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
    let ls = env.ok(&["ls", "10.0.0.5/mail/imap/last:user/big"]);
    assert_eq!(ls.lines().count(), BIG, "ls lists every entry");

    // find and history reach entries in any page.
    let found = env.ok(&["find", "9999."]);
    assert!(found.contains("user/big/9999."), "{found}");
    let hist: serde_json::Value = serde_json::from_str(&env.ok(&[
        "history",
        "--json",
        "--host",
        "10.0.0.5",
        "--part",
        "mail/imap",
        "user/big/97.",
    ]))
    .unwrap();
    assert_eq!(hist[0]["size"], 8, "{hist}");
    let near = env.run(&[
        "history",
        "--host",
        "10.0.0.5",
        "--part",
        "mail/imap",
        "user/big/99999.",
    ]);
    assert!(
        String::from_utf8_lossy(&near.stderr).contains("user/big/9999."),
        "nearest names are offered from the paged folder: {}",
        String::from_utf8_lossy(&near.stderr)
    );

    let _m = env.mount(bmbackup::fuse::MountOptions::default());
    let shown = env.mnt().join("10.0.0.5/mail/imap/last/user/big");
    let mut via_mount: Vec<Vec<u8>> = fs::read_dir(&shown)
        .unwrap()
        .map(|e| {
            use std::os::unix::ffi::OsStrExt;
            e.unwrap().file_name().as_bytes().to_vec()
        })
        .collect();
    via_mount.sort();
    assert_eq!(via_mount, names);
    assert_eq!(fs::read(shown.join("97.")).unwrap(), b"mail 97\n");
    assert!(fs::metadata(shown.join("nope")).is_err());
    assert_same_tree(&src, &env.mnt().join("10.0.0.5/mail/imap/last"));
}

#[test]
fn one_new_file_rewrites_one_or_two_pages_and_prune_keeps_live_pages() {
    let env = Env::new();
    let src = env.path("src");
    big_part(&src);
    env.backup("10.0.0.5", "mail/imap", &src);
    let before = page_ids(&env.repo());

    // Nothing changed: the paged parent finds every file, so none is read.
    let same = env.backup("10.0.0.5", "mail/imap", &src);
    assert_eq!(same["bytes_read"], 0, "{same}");
    assert_eq!(page_ids(&env.repo()), before);

    fs::write(src.join("user/big/5000.x"), b"new mail\n").unwrap();
    let m = env.backup("10.0.0.5", "mail/imap", &src);
    assert_eq!(m["bytes_read"], 9, "only the new file is read: {m}");
    let after = page_ids(&env.repo());
    let changed = after.iter().filter(|p| !before.contains(p)).count();
    assert!(
        (1..=2).contains(&changed),
        "{changed} of {} pages changed",
        after.len()
    );

    // diff skips the pages both snapshots share: roots, `user` and the two indexes, then at
    // most the two changed pages on each side.
    let (old, new) = (same["id"].as_str().unwrap(), m["id"].as_str().unwrap());
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["diff", "--json", old, new])).unwrap();
    let diffs = v["differences"].as_array().unwrap();
    assert!(
        diffs
            .iter()
            .any(|d| d["path"] == "user/big/5000.x" && d["change"] == "added"),
        "{v}"
    );
    let read = v["trees_read"].as_u64().unwrap();
    assert!(
        read <= 6 + 2 * 2,
        "{read} trees read for {} pages",
        after.len()
    );

    // Forget the older snapshots and prune: pages shared with the kept one stay.
    env.ok(&["forget", "--keep-last", "1", "--prune"]);
    env.ok(&["check", "--read-data"]);
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
}

#[test]
fn listing_names_only_creates_no_node_per_entry() {
    let env = Env::new();
    let src = env.path("src");
    let names = big_part(&src);
    env.backup("10.0.0.5", "mail/imap", &src);
    let vfs = std::sync::Arc::new(
        bmbackup::vfs::Vfs::new(
            std::sync::Arc::new(env.repo()),
            bmbackup::vfs::VfsConfig::default(),
        )
        .unwrap(),
    );
    let _m = env.mount_vfs(vfs.clone(), bmbackup::fuse::MountOptions::default());
    let big = env.mnt().join("10.0.0.5/mail/imap/last/user/big");
    // Names only (as `ls -f`): the kernel must not ask for every entry's attributes.
    let listed = fs::read_dir(&big).unwrap().count();
    assert_eq!(listed, names.len());
    let nodes = vfs.node_count();
    assert!(nodes < 1000, "{nodes} nodes after listing names only");
}
