//! End-to-end tests of choosing snapshots: `--at` with every accepted form against snapshots one
//! second apart and in the same second (restore, find, restore-user, restore-server).

mod restore_env;

use restore_env::*;
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
