//! End-to-end tests of the backup's content pipeline and nightly shortcuts: the snapshot does
//! not depend on the number of threads, and a folder whose own times did not change is still
//! looked into (a file rewritten in place under it is backed up).

mod common;

use common::{assert_restored, bytes, write, Env};
use std::fs;
use std::path::Path;

/// A tree with a many-chunk compressible file, a many-chunk incompressible one, small files and
/// nested folders.
fn mixed_tree(src: &Path) {
    let mut text = Vec::new();
    let mut i = 0u64;
    while text.len() < 3 << 20 {
        text.extend_from_slice(
            format!("{i}\tuser{}@example.test\tsubject {}\n", i % 97, i % 13).as_bytes(),
        );
        i += 1;
    }
    write(&src.join("pgsql/dump.sql"), &text);
    write(&src.join("pgsql/blob.bin"), &bytes(2 << 20, 7));
    for u in 0..5 {
        for m in 0..40 {
            let body = format!(
                "Subject: message {m} of user {u}\r\n\r\n{}",
                "line\r\n".repeat(m * 7)
            );
            write(&src.join(format!("spool/user{u}/{m}.")), body.as_bytes());
        }
        write(
            &src.join(format!("spool/user{u}/Sent/1.")),
            &bytes(5000 + u, u as u64),
        );
    }
}

#[test]
fn snapshot_is_the_same_whatever_the_thread_count() {
    let one = Env::new();
    let src = one.path("src");
    mixed_tree(&src);
    let many = Env::new();
    let a = one.backup_with("10.0.0.5", "mail/imap", &src, &["--threads", "1"]);
    let b = many.backup_with("10.0.0.5", "mail/imap", &src, &["--threads", "4"]);
    assert_eq!(
        a["root"], b["root"],
        "tree ids differ between 1 and 4 threads"
    );
    assert_eq!(a["bytes_added"], b["bytes_added"]);
    for env in [&one, &many] {
        let out = env.path("restored");
        env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
        assert_restored(&src, &out);
        env.assert_check_passes();
    }
}

#[test]
fn a_file_rewritten_in_place_under_an_unchanged_folder_is_backed_up() {
    let env = Env::new();
    let src = env.path("src");
    mixed_tree(&src);
    let first = env.backup("10.0.0.5", "mail/imap", &src);
    let same = env.backup("10.0.0.5", "mail/imap", &src);
    assert_eq!(first["root"], same["root"], "nothing changed, same tree");
    assert_eq!(same["bytes_read"], 0);

    // Same size, same mtime (set back), same folder: only the file's ctime tells.
    let f = src.join("spool/user3/12.");
    let folder_before = fs::metadata(f.parent().unwrap()).unwrap();
    let old = fs::metadata(&f).unwrap();
    let mut data = fs::read(&f).unwrap();
    data[0] = b's';
    fs::write(&f, &data).unwrap();
    fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(old.modified().unwrap())
        .unwrap();
    let folder_after = fs::metadata(f.parent().unwrap()).unwrap();
    assert_eq!(
        folder_before.modified().unwrap(),
        folder_after.modified().unwrap()
    );
    let third = env.backup("10.0.0.5", "mail/imap", &src);
    assert_ne!(third["root"], first["root"]);
    assert_eq!(third["bytes_read"].as_u64().unwrap(), data.len() as u64);
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_restored(&src, &out);
}
