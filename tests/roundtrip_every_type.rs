//! Every file type round-trips through backup and restore exactly: regular, empty, sparse,
//! multi-chunk, hard links, symlinks (also dangling), fifos, devices, sockets, non-UTF-8 and
//! 255-byte names, deep paths, xattrs, owners, setuid, nanosecond mtimes before 1970 and after 2038,
//! and the part folder's own owner, mode and mtime.

mod common;

use common::{assert_same_tree_with, CompareOptions};
use std::process::Command;

fn bin(cache: &std::path::Path, store: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bmbackup"));
    c.env("BMBACKUP_STORE", store)
        .env("BMBACKUP_CACHE", cache)
        .env_remove("BMBACKUP_CONFIG");
    c
}

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_file_type_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let store = dir.path().join("store");
    let cache = dir.path().join("cache");
    bmbackup::gen::generate_tree_with_every_file_type(&src).unwrap();
    ok(bin(&cache, &store).args(["init", store.to_str().unwrap()]));
    let part = format!("mail/imap={}", src.display());
    ok(bin(&cache, &store).args(["backup", "--host", "10.0.0.5", "--part", &part]));
    let out = dir.path().join("restored");
    ok(bin(&cache, &store).args(["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]));
    let opts = CompareOptions {
        sparse: true,
        ..CompareOptions::default()
    };
    assert_same_tree_with(&src, &out, &opts);

    // The second, unchanged backup reads nothing and still restores the same tree.
    let json = ok(bin(&cache, &store).args(["backup", "--host", "10.0.0.5", "--part", &part]));
    assert!(json.contains("read 0 B"), "{json}");
    let out2 = dir.path().join("restored2");
    ok(bin(&cache, &store).args(["restore", "10.0.0.5/mail/imap/last", out2.to_str().unwrap()]));
    assert_same_tree_with(&src, &out2, &opts);
}
