//! End-to-end tests of `init`, `backup`, `snapshots` and `restore` with the real binary on
//! generated trees: round trips, incremental reads, dedup across parts and hosts, and a catalog
//! rebuilt from the store.

mod common;

use common::{assert_restored, bytes, mail_tree, write, Env};
use std::fs;
use std::path::Path;

#[test]
fn round_trip_and_incremental_reads() {
    let env = Env::new();
    let src = env.path("spool");
    let files = mail_tree(&src);
    let first = env.backup("10.0.0.5", "mail/imap", &src);
    assert_eq!(first["status"], "complete");
    let total: u64 = files
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .sum::<u64>()
        + (6 << 20);
    assert_eq!(first["bytes_read"].as_u64().unwrap(), total);

    let second = env.backup("10.0.0.5", "mail/imap", &src);
    assert_eq!(second["bytes_read"], 0, "a no-change backup reads nothing");
    assert!(second["bytes_added"].as_u64().unwrap() == 0, "{second}");

    // Change 1% of the files (2 of 204): only they are read.
    let changed = [&files[3], &files[100]];
    let mut expected = 0;
    for f in changed {
        let mut data = fs::read(f).unwrap();
        data.extend_from_slice(b"\r\nappended line\r\n");
        fs::write(f, &data).unwrap();
        expected += data.len() as u64;
    }
    let third = env.backup("10.0.0.5", "mail/imap", &src);
    assert_eq!(third["bytes_read"].as_u64().unwrap(), expected);

    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_restored(&src, &out);

    // The first snapshot still restores as it was (by id prefix), not as the source is now.
    let old = env.path("old");
    let id = first["id"].as_str().unwrap();
    env.ok(&["restore", &id[..10], old.to_str().unwrap()]);
    assert_ne!(
        fs::read(old.join(files[3].strip_prefix(&src).unwrap())).unwrap(),
        fs::read(&files[3]).unwrap()
    );
}

#[test]
fn identical_files_in_other_parts_and_hosts_are_stored_once() {
    let env = Env::new();
    let a = env.path("a");
    let b = env.path("b");
    let big = bytes(3 << 20, 42);
    write(&a.join("x/file"), &big);
    write(&b.join("elsewhere/copy"), &big);
    let first = env.backup("10.0.0.5", "mail/imap", &a);
    assert!(first["bytes_added"].as_u64().unwrap() >= 3 << 20);
    let other_part = env.backup("10.0.0.5", "mail/archive", &b);
    let other_host = env.backup("10.0.0.6", "mail/imap", &b);
    for s in [&other_part, &other_host] {
        assert_eq!(
            s["bytes_read"].as_u64().unwrap(),
            3 << 20,
            "read, since no parent"
        );
        assert!(
            s["bytes_added"].as_u64().unwrap() < 4096,
            "only trees are new: {s}"
        );
    }
}

#[test]
fn catalog_rebuilt_from_store_gives_same_answers() {
    let env = Env::new();
    let src = env.path("spool");
    mail_tree(&src);
    env.backup("10.0.0.5", "mail/imap", &src);
    fs::write(src.join("example.com/user/u1/new."), b"new message").unwrap();
    env.backup("10.0.0.5", "mail/imap", &src);
    let before = env.ok(&["snapshots", "--json"]);
    fs::remove_dir_all(env.path("cache")).unwrap();
    let after = env.ok(&["snapshots", "--json"]);
    assert_eq!(before, after);
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_restored(&src, &out);
}

#[test]
fn restore_of_a_subtree_and_a_single_file() {
    let env = Env::new();
    let src = env.path("spool");
    mail_tree(&src);
    env.backup("10.0.0.5", "mail/imap", &src);
    let out = env.path("u2");
    env.ok(&[
        "restore",
        "10.0.0.5/mail/imap/last:example.com/user/u2",
        out.to_str().unwrap(),
    ]);
    assert_restored(&src.join("example.com/user/u2"), &out);
    let one = env.path("one");
    env.ok(&[
        "restore",
        "10.0.0.5/mail/imap/last:example.com/user/u0/Sent/3.",
        one.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read(one.join("3.")).unwrap(),
        fs::read(src.join("example.com/user/u0/Sent/3.")).unwrap()
    );
    // Refuses to overwrite, says so, and exits non-zero.
    let again = env.run(&[
        "restore",
        "10.0.0.5/mail/imap/last:example.com/user/u0/Sent/3.",
        one.to_str().unwrap(),
    ]);
    assert!(
        again.status.success(),
        "identical file is skipped, not an error"
    );
    fs::write(one.join("3."), b"local edit").unwrap();
    let clash = env.run(&[
        "restore",
        "10.0.0.5/mail/imap/last:example.com/user/u0/Sent/3.",
        one.to_str().unwrap(),
    ]);
    assert_eq!(clash.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&clash.stderr).contains("--overwrite"));
}

#[test]
fn bad_input_gets_clear_errors() {
    let env = Env::new();
    let out = env.run(&["backup", "--host", "h", "--part", "mail/imap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=PATH"));
    let out = env.run(&[
        "backup",
        "--host",
        "h",
        "--part",
        &format!("p={}", env.path("missing").display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    let out = env.run(&["init", env.store().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already a bmbackup store"));
    let out = env.run(&["snapshots", "--store", env.path("nope").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a bmbackup store"));
    let out = env.run(&["restore", "h/p/last", "/tmp/x"]);
    assert!(!out.status.success());
}

#[test]
fn concurrent_backups_of_two_hosts_share_one_store() {
    let env = Env::new();
    let a = env.path("a");
    let b = env.path("b");
    let shared = bytes(5 << 20, 9);
    for (root, seed) in [(&a, 1), (&b, 2)] {
        mail_tree(root);
        write(&root.join("shared/attachment"), &shared);
        write(&root.join("own/data"), &bytes(2 << 20, seed));
    }
    let spawn = |host: &str, src: &Path| {
        env.cmd(&[
            "backup",
            "--host",
            host,
            "--part",
            &format!("mail/imap={}", src.display()),
        ])
        .spawn()
        .unwrap()
    };
    let mut one = spawn("10.0.0.5", &a);
    let mut two = spawn("10.0.0.6", &b);
    assert!(one.wait().unwrap().success());
    assert!(two.wait().unwrap().success());
    for (host, src) in [("10.0.0.5", &a), ("10.0.0.6", &b)] {
        let out = env.path(&format!("out-{host}"));
        env.ok(&[
            "restore",
            &format!("{host}/mail/imap/last"),
            out.to_str().unwrap(),
        ]);
        assert_restored(src, &out);
    }
    // A third host with the same data, run alone, finds everything already stored.
    let c = env.backup("10.0.0.7", "mail/imap", &a);
    assert!(c["bytes_added"].as_u64().unwrap() < 64 << 10, "{c}");
}

#[test]
fn config_file_gives_store_host_and_parts() {
    let env = Env::new();
    let spool = env.path("spool");
    let archive = env.path("archive");
    mail_tree(&spool);
    write(&archive.join("old/1."), b"archived mail");
    let config = env.path("bmbackup.toml");
    fs::write(
        &config,
        format!(
            "store = \"{}\"\nhost = \"192.168.1.10\"\ncompression_level = 5\n\
             [parts.\"mail/imap\"]\npath = \"{}\"\n\
             [parts.\"mail/archive\"]\npath = \"{}\"\nenabled = false\n",
            env.store().display(),
            spool.display(),
            archive.display()
        ),
    )
    .unwrap();
    let out = env
        .cmd(&["backup", "--config", config.to_str().unwrap()])
        .env_remove("BMBACKUP_STORE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 1, "the disabled part is skipped");
    assert_eq!(snaps[0]["host"], "192.168.1.10");
    assert_eq!(snaps[0]["part"], "mail/imap");
    // A typo in the config is an error that names the key, not a silently skipped part.
    fs::write(&config, "stroe = \"/x\"\n").unwrap();
    let out = env.run(&["backup", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stroe"));
}

#[test]
fn backup_finishes_every_part_when_its_output_pipe_is_closed() {
    let env = Env::new();
    let a = env.path("a");
    let b = env.path("b");
    write(&a.join("x"), b"first part");
    write(&b.join("y"), b"second part");
    let mut child = env
        .cmd(&["backup", "--host", "h", "--part"])
        .arg(format!("one={}", a.display()))
        .arg("--part")
        .arg(format!("two={}", b.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away at once, like `bmbackup backup | head -0`.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let parts: Vec<String> = env
        .snapshots()
        .iter()
        .map(|s| s["part"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(parts, vec!["one", "two"]);
}
