//! Every file type round-trips through backup and restore exactly: regular, empty, sparse,
//! multi-chunk, hard links, symlinks (also dangling), fifos, devices, sockets, non-UTF-8 and
//! 255-byte names, deep paths, xattrs, owners, setuid, nanosecond mtimes before 1970 and after 2038,
//! and the part folder's own owner, mode and mtime.

mod common;

use common::{assert_same_tree_with, CompareOptions, Env};

#[test]
fn every_file_type_round_trips_exactly() {
    let env = Env::new();
    let src = env.path("src");
    bmbackup::gen::generate_tree_with_every_file_type(&src).unwrap();
    let part = format!("mail/imap={}", src.display());
    env.ok(&["backup", "--host", "10.0.0.5", "--part", &part]);
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    let opts = CompareOptions {
        sparse: true,
        ..CompareOptions::default()
    };
    assert_same_tree_with(&src, &out, &opts);

    // The second, unchanged backup reads nothing and still restores the same tree.
    let json = env.ok(&["backup", "--host", "10.0.0.5", "--part", &part]);
    assert!(json.contains("read 0 B"), "{json}");
    let out2 = env.path("restored2");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out2.to_str().unwrap()]);
    assert_same_tree_with(&src, &out2, &opts);
}
