//! A mistake is an error, never an empty answer with exit 0 (issue 25): a host or part the store
//! does not have, for every command taking one; `--at` before the first snapshot or naming no
//! snapshot; `diff` across parts; `find` patterns that match nothing (with what was probably
//! meant); an unknown user (with the close names); a missing `metrics_dir`.

mod common;
use common::*;

/// One part `mail/imap` of HOST with two snapshots, and `db` of HOST with one.
fn store() -> Env {
    let env = Env::new();
    let src = env.path("src");
    write(
        &src.join("domain/e/example.org/a/user/alice/Sent/1."),
        b"m1",
    );
    write(
        &src.join("domain/e/example.org/a/user/alice/cyrus.header"),
        b"h",
    );
    env.backup(HOST, "mail/imap", &src);
    env.backup(HOST, "mail/imap", &src);
    env.backup(HOST, "db", &src);
    env
}

#[test]
fn a_host_or_part_the_store_lacks_is_an_error_in_every_command() {
    let env = store();
    let dest = env.path("dest");
    let d = dest.to_str().unwrap();
    // Every command that takes --part (or a HOST/PART/NAME), with a typo'd part, then host.
    type Case<'a> = (&'static str, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        ("snapshots", vec!["snapshots", "--part", "mail/imapp"]),
        (
            "snapshots json",
            vec![
                "snapshots",
                "--json",
                "--host",
                HOST,
                "--part",
                "mail/imapp",
            ],
        ),
        (
            "forget policy",
            vec!["forget", "--part", "mail/imapp", "--keep-last", "1"],
        ),
        (
            "forget dry run",
            vec![
                "forget",
                "--part",
                "mail/imapp",
                "--keep-last",
                "1",
                "--dry-run",
            ],
        ),
        (
            "forget json",
            vec![
                "forget",
                "--part",
                "mail/imapp",
                "--keep-last",
                "1",
                "--json",
            ],
        ),
        (
            "forget all",
            vec![
                "forget",
                "--host",
                HOST,
                "--part",
                "mail/imapp",
                "--all",
                "--yes",
            ],
        ),
        ("find", vec!["find", "--part", "mail/imapp", "*"]),
        (
            "find at",
            vec!["find", "--part", "mail/imapp", "--at", "last", "*"],
        ),
        (
            "history",
            vec!["history", "--host", HOST, "--part", "mail/imapp", "domain"],
        ),
        (
            "restore",
            vec!["restore", "--host", HOST, "--part", "mail/imapp", "", d],
        ),
        ("ls", vec!["ls", "10.9.9.9/mail/imapp/last"]),
        (
            "diff",
            vec![
                "diff",
                "10.9.9.9/mail/imapp/last",
                "10.9.9.9/mail/imap/last",
            ],
        ),
    ];
    for (what, args) in &cases {
        let err = env.expect_fail(args, 1, "mail/imapp");
        assert!(
            err.contains("10.9.9.9/mail/imap, 10.9.9.9/db")
                || err.contains("10.9.9.9/db, 10.9.9.9/mail/imap"),
            "{what}: {err}"
        );
        assert!(!dest.exists(), "{what}");
    }
    let host_cases: Vec<Case> = vec![
        ("snapshots", vec!["snapshots", "--host", "10.9.9.8"]),
        (
            "forget",
            vec!["forget", "--host", "10.9.9.8", "--keep-last", "1"],
        ),
        ("find", vec!["find", "--host", "10.9.9.8", "*"]),
        (
            "history",
            vec!["history", "--host", "10.9.9.8", "--part", "db", "domain"],
        ),
        (
            "restore",
            vec!["restore", "--host", "10.9.9.8", "--part", "db", "", d],
        ),
        ("entities", vec!["entities", "--host", "10.9.9.8"]),
        (
            "restore-server",
            vec![
                "restore-server",
                "--host",
                "10.9.9.8",
                "--at",
                "last",
                "--dry-run",
            ],
        ),
        (
            "restore-user",
            vec![
                "restore-user",
                "alice@example.org",
                "--host",
                "10.9.9.8",
                "--at",
                "last",
                "--dry-run",
            ],
        ),
    ];
    for (what, args) in &host_cases {
        let err = env.expect_fail(args, 1, "10.9.9.8");
        assert!(err.contains("10.9.9.9"), "{what}: {err}");
    }
    // The right names still work, and a configured part not yet backed up is no typo.
    env.ok(&["snapshots", "--part", "mail/imap"]);
    env.write_config("[parts.\"mail/archive\"]\npath = \"/nonexistent\"\n");
    env.ok(&["forget", "--part", "mail/archive", "--keep-last", "1"]);
}

#[test]
fn at_before_the_first_snapshot_or_no_such_name_is_an_error() {
    let env = store();
    for at in ["2020-01-01", "1d", "-1d", "D-1"] {
        env.expect_fail(&["find", "--at", at, "*"], 1, "oldest are");
        env.expect_fail(&["find", "--part", "db", "--at", at, "1."], 1, "oldest are");
    }
    let snaps = env.snapshots();
    let name = snaps.iter().find(|s| s["part"] == "mail/imap").unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let missing = format!("{name}_7");
    env.expect_fail(
        &["find", "--part", "mail/imap", "--at", &missing, "*"],
        1,
        "has no snapshot named",
    );
    // The forms copied from the mount select that snapshot.
    for at in [
        format!("{name}/"),
        format!("{HOST}/mail/imap/{name}"),
        format!("/var/backups/bluemind/{HOST}/mail/imap/{name}/domain"),
    ] {
        let out = env.ok(&["find", "--part", "mail/imap", "--at", &at, "1."]);
        assert_eq!(out.lines().count(), 1, "{at}: {out}");
        assert!(out.contains(&name), "{at}: {out}");
    }
}

#[test]
fn diff_of_two_parts_says_so() {
    let env = store();
    env.expect_fail(
        &["diff", "10.9.9.9/db/last", "10.9.9.9/mail/imap/last"],
        1,
        "two snapshots of one part",
    );
}

#[test]
fn find_crosses_folders_with_double_stars_and_suggests_when_nothing_matches() {
    let env = store();
    let out = env.ok(&[
        "find",
        "--part",
        "mail/imap",
        "--at",
        "last",
        "**/user/alice/Sent/*",
    ]);
    assert!(
        out.trim()
            .ends_with("domain/e/example.org/a/user/alice/Sent/1."),
        "{out}"
    );
    // A name pattern matches at any depth.
    let out = env.ok(&[
        "find",
        "--part",
        "mail/imap",
        "--at",
        "last",
        "cyrus.header",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    // The README's old anchored form matches nothing: exit 1 and the ** form offered.
    env.expect_fail(
        &["find", "--part", "mail/imap", "*/user/alice/Sent/*"],
        1,
        "did you mean '**/user/alice/Sent/*' (2 matches)",
    );
    // A typo: the closest existing paths.
    let err = env.expect_fail(
        &["find", "--part", "mail/imap", "cyrus.headr"],
        1,
        "0 matches — did you mean",
    );
    assert!(
        err.contains("domain/e/example.org/a/user/alice/cyrus.header"),
        "{err}"
    );
    let err = env.expect_fail(&["find", "zzzzzzzzzz"], 1, "0 matches");
    assert!(err.contains("no path is close"), "{err}");
}

#[test]
fn restore_user_offers_names_that_extend_the_one_given() {
    let env = Env::new();
    env.backup_demo_spool("spool");
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["entities", "--host", HOST, "--json"])).unwrap();
    let user = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .find(|n| n.split('@').next().unwrap().contains('.'))
        .expect("a user first.last@domain");
    let (local, domain) = user.split_once('@').unwrap();
    let first = local.split('.').next().unwrap();
    let typo = format!("{first}@{domain}");
    let err = env.fails(&restore_user_last(&typo, HOST, &["--dry-run"]));
    assert!(err.contains("did you mean") && err.contains(&user), "{err}");
}

#[test]
fn a_missing_metrics_dir_is_an_error_naming_it() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a"), b"a");
    let missing = env.path("no-such-metrics");
    env.write_config(&format!(
        "metrics_dir = \"{}\"\n[parts.p]\npath = \"{}\"\n",
        missing.display(),
        src.display()
    ));
    let err = env.expect_fail(&["backup"], 1, "no-such-metrics");
    assert!(err.contains("create it"), "{err}");
    // The snapshot itself was written.
    assert_eq!(env.snapshots().len(), 1);
}
