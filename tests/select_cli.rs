//! End-to-end tests of choosing snapshots: `--at` with every accepted form against snapshots one
//! second apart and in the same second (restore, find, restore-user, restore-server).

mod common;

use common::*;
use serde_json::Value;
use std::fs;

/// A spool with one user mail file, backed up three times as part mail/imap: at 10:13:46.4
/// ("A"), 10:13:47.3 ("B") and 10:13:47.8 ("C"), named …_101346, …_101347 and …_101347_2.
fn three_snapshots() -> Env {
    let env = Env::new();
    let spool = env.path("spool");
    let mail = spool.join("example.com/user/jdoe/1.");
    for (content, at) in [
        ("A", "2026-11-30T10:13:46.4Z"),
        ("B", "2026-11-30T10:13:47.3Z"),
        ("C", "2026-11-30T10:13:47.8Z"),
    ] {
        write(&mail, content.as_bytes());
        env.ok(&[
            "backup",
            "--host",
            HOST,
            "--part",
            &format!("mail/imap={}", spool.display()),
            "--simulate-time",
            at,
        ]);
    }
    let snaps: Value = serde_json::from_str(&env.ok(&["snapshots", "--json"])).unwrap();
    let names: Vec<&str> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "2026-11-30_101346",
            "2026-11-30_101347",
            "2026-11-30_101347_2"
        ]
    );
    env
}

/// Every accepted form of WHEN and the content of the snapshot it must select.
const FORMS: &[(&str, &str)] = &[
    ("2026-11-30_101346", "A"),
    ("2026-11-30_101347", "B"),
    ("2026-11-30_101347_2", "C"),
    ("2026-11-30 10:13:46", "A"),
    ("2026-11-30 10:13:47", "C"),
    ("2026-11-30T10:13:46Z", "A"),
    ("2026-11-30T10:13:47Z", "C"),
    ("2026-11-30T10:13:47", "C"),
    ("2026-11-30T10:13", "C"),
    ("2026-11-30", "C"),
    ("last", "C"),
];

#[test]
fn at_selects_the_named_snapshot_and_a_second_includes_its_fraction() {
    let env = three_snapshots();
    for (i, (when, want)) in FORMS.iter().enumerate() {
        let out = env.path(&format!("out{i}"));
        env.ok(&[
            "restore",
            "--host",
            HOST,
            "--part",
            "mail/imap",
            "--at",
            when,
            "example.com/user/jdoe/1.",
            out.to_str().unwrap(),
        ]);
        let got = fs::read_to_string(out.join("1.")).unwrap();
        assert_eq!(&got, want, "restore --at {when:?}");
    }
    // A `_N` name no snapshot has is an error naming those of that second.
    let e = env.fails(&[
        "restore",
        "--host",
        HOST,
        "--part",
        "mail/imap",
        "--at",
        "2026-11-30_101347_3",
        "",
        env.path("bad").to_str().unwrap(),
    ]);
    assert!(
        e.contains("no snapshot named 2026-11-30_101347_3")
            && e.contains("2026-11-30_101347, 2026-11-30_101347_2"),
        "{e}"
    );
    // Before the first snapshot's second: nothing.
    let e = env.fails(&[
        "restore",
        "--host",
        HOST,
        "--part",
        "mail/imap",
        "--at",
        "2026-11-30 10:13:45",
        "",
        env.path("early").to_str().unwrap(),
    ]);
    assert!(e.contains("oldest are"), "{e}");
}

#[test]
fn find_restore_user_and_restore_server_select_the_same_snapshot() {
    let env = three_snapshots();
    let name_of = |want: &str| match want {
        "A" => "2026-11-30_101346",
        "B" => "2026-11-30_101347",
        _ => "2026-11-30_101347_2",
    };
    for (i, (when, want)) in FORMS.iter().enumerate() {
        let found: Value = serde_json::from_str(&env.ok(&[
            "find",
            "--host",
            HOST,
            "--part",
            "mail/imap",
            "--at",
            when,
            "1.",
            "--json",
        ]))
        .unwrap();
        let names: Vec<&str> = found
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [name_of(want)], "find --at {when:?}");

        let to = env.path(&format!("user{i}"));
        env.ok(&[
            "restore-user",
            "jdoe@example.com",
            "--host",
            HOST,
            "--at",
            when,
            "--to",
            to.to_str().unwrap(),
        ]);
        let got = fs::read_to_string(to.join("jdoe@example.com/mail/imap/1.")).unwrap();
        assert_eq!(&got, want, "restore-user --at {when:?}");

        let root = env.path(&format!("server{i}"));
        env.ok(&[
            "restore-server",
            "--host",
            HOST,
            "--at",
            when,
            "--target",
            root.to_str().unwrap(),
        ]);
        let spool = fs::canonicalize(env.path("spool")).unwrap();
        let restored = root.join(spool.strip_prefix("/").unwrap());
        let got = fs::read_to_string(restored.join("example.com/user/jdoe/1.")).unwrap();
        assert_eq!(&got, want, "restore-server --at {when:?}");
    }
}

fn snapshot_names(env: &Env) -> Vec<String> {
    let snaps: Value = serde_json::from_str(&env.ok(&["snapshots", "--json"])).unwrap();
    snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn names_do_not_change_when_other_snapshots_are_forgotten() {
    let env = Env::new();
    let src = env.path("src");
    for (content, at) in [
        ("X", "2026-11-30T09:46:26.2Z"),
        ("Y", "2026-11-30T09:46:26.6Z"),
        ("Z", "2026-11-30T09:46:30Z"),
    ] {
        write(&src.join("f"), content.as_bytes());
        env.ok(&[
            "backup",
            "--host",
            HOST,
            "--part",
            &format!("p={}", src.display()),
            "--simulate-time",
            at,
        ]);
    }
    assert_eq!(
        snapshot_names(&env),
        [
            "2026-11-30_094626",
            "2026-11-30_094626_2",
            "2026-11-30_094630"
        ]
    );
    // The policy keeps the two newest: `…_094626` goes, `…_094626_2` keeps its name.
    let out = env.ok(&["forget", "--keep-last", "2"]);
    assert!(
        out.lines()
            .any(|l| l.contains("remove") && l.contains("2026-11-30_094626 ")),
        "{out}"
    );
    assert_eq!(
        snapshot_names(&env),
        ["2026-11-30_094626_2", "2026-11-30_094630"]
    );
    let out = env.ok(&["forget", "--keep-last", "2", "--dry-run"]);
    assert!(out.contains("2026-11-30_094626_2"), "{out}");
    let got = env.path("got");
    env.ok(&[
        "restore",
        &format!("{HOST}/p/2026-11-30_094626_2:f"),
        got.to_str().unwrap(),
    ]);
    assert_eq!(fs::read_to_string(got.join("f")).unwrap(), "Y");
    let at = env.path("at");
    env.ok(&[
        "restore",
        "--host",
        HOST,
        "--part",
        "p",
        "--at",
        "2026-11-30_094626_2",
        "f",
        at.to_str().unwrap(),
    ]);
    assert_eq!(fs::read_to_string(at.join("f")).unwrap(), "Y");

    // The mount shows the same folders.
    let mnt = env.mnt();
    let _guard = MountGuard::new(&mnt);
    env.ok(&[
        "mount",
        env.store().to_str().unwrap(),
        mnt.to_str().unwrap(),
    ]);
    assert_eq!(
        names(&mnt.join(HOST).join("p")),
        ["2026-11-30_094626_2", "2026-11-30_094630", "last"]
    );
    assert_eq!(
        fs::read_to_string(mnt.join(HOST).join("p/2026-11-30_094626_2/f")).unwrap(),
        "Y"
    );
}

/// `tests/fixtures/store-v1.1-names` was written by format 1.1, whose manifests record no name:
/// its snapshots keep the names 1.1 showed, and a new backup in the same second takes the next
/// free one.
#[test]
fn format_1_1_snapshots_keep_their_computed_names() {
    let env = Env::uninit();
    copy_tree(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1.1-names"),
        &env.store(),
    );
    let old = [
        "2026-11-30_094626",
        "2026-11-30_094626_2",
        "2026-11-30_094630",
    ];
    assert_eq!(snapshot_names(&env), old);
    let src = env.path("src");
    write(&src.join("f"), b"four");
    env.ok(&[
        "backup",
        "--host",
        "10.0.0.5",
        "--part",
        &format!("p={}", src.display()),
        "--simulate-time",
        "2026-11-30T09:46:26.5Z",
    ]);
    let mut want = old.to_vec();
    want.insert(2, "2026-11-30_094626_3");
    assert_eq!(snapshot_names(&env), want);
    // A fixture checked out by git is 0644/0755: what an older bmbackup left.
    env.ok(&["repair", "--fix-modes"]);
    env.ok(&["check", "--read-data"]);
    for (name, content) in [
        ("2026-11-30_094626_2", "two\n"),
        ("2026-11-30_094626_3", "four"),
    ] {
        let out = env.path(name);
        env.ok(&[
            "restore",
            &format!("10.0.0.5/p/{name}:f"),
            out.to_str().unwrap(),
        ]);
        assert_eq!(
            fs::read_to_string(out.join("f")).unwrap(),
            content,
            "{name}"
        );
    }
}

fn history(env: &Env, path: &str) -> std::process::Output {
    env.run(&["history", "--host", HOST, "--part", "p", path])
}

#[test]
fn history_of_a_path_that_never_existed_is_an_error_naming_the_closest() {
    let env = Env::new();
    let src = env.path("src");
    let f = src.join("example.com/user/jdoe/Sent/12.");
    write(&f, b"one");
    write(&src.join("example.com/user/jdoe/Sent/13."), b"x");
    write(&src.join("example.com/user/jdoe/Trash/1."), b"x");
    env.backup(HOST, "p", &src);
    env.backup(HOST, "p", &src);
    write(&f, b"two");
    env.backup(HOST, "p", &src);
    fs::remove_file(&f).unwrap();
    env.backup(HOST, "p", &src);
    env.backup(HOST, "p", &src);

    for (typo, want) in [
        (
            "example.com/user/jdoe/Sent/21.",
            "example.com/user/jdoe/Sent/12.",
        ),
        (
            "example.com/user/jdoe/Snet/12.",
            "example.com/user/jdoe/Sent",
        ),
        ("example.com/user/jdo/Sent/12.", "example.com/user/jdoe"),
    ] {
        let out = history(&env, typo);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{typo}: {err}");
        assert!(
            err.contains("in none of the 5 snapshots") && err.contains("closest existing"),
            "{err}"
        );
        let closest = err.split("closest existing: ").nth(1).unwrap();
        assert!(closest.starts_with(want), "{typo}: {err}");
    }

    // Real changes only: appeared, changed, disappeared (the two snapshots where it stays
    // absent, and the unchanged one, are not changes).
    let out = history(&env, "example.com/user/jdoe/Sent/12.");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("5 snapshots, 3 changes, 2 distinct versions"),
        "{err}"
    );
}

/// The post-backup hook names the new snapshot as the mount does, also when the run's retention
/// just forgot an older snapshot of the same second.
#[test]
fn post_backup_hook_gets_the_recorded_name_after_retention() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("f"), b"x");
    let hook_env = env.path("hook-env");
    fs::write(
        env.config(),
        format!(
            "host = \"{HOST}\"\npost_backup_hook = \"env > {}\"\n[retention]\nkeep_last = 1\n[parts.p]\npath = \"{}\"\n",
            hook_env.display(),
            src.display()
        ),
    )
    .unwrap();
    for at in ["2026-11-30T09:46:26.2Z", "2026-11-30T09:46:26.6Z"] {
        env.ok(&["backup", "--simulate-time", at]);
    }
    let vars = fs::read_to_string(&hook_env).unwrap();
    assert!(
        vars.lines()
            .any(|l| l == "BMBACKUP_SNAPSHOT_1_DATE=2026-11-30_094626_2"),
        "{vars}"
    );
    assert_eq!(snapshot_names(&env), ["2026-11-30_094626_2"]);
}
