//! End-to-end tests of `history` (the versions of a path across a scripted series of edits) and
//! `find` (globs across snapshots, memoized per unchanged subtree).

mod common;

use bmbackup::gen::{generate_spool, SpoolSpec};
use common::*;
use serde_json::Value;
use std::fs;

#[test]
fn history_lists_each_version_and_find_searches_names() {
    let env = Env::new();
    let src = env.path("src");
    let f = src.join("dir/file.txt");
    let hist = |env: &Env| -> Vec<(String, Option<u64>)> {
        let out = env.ok(&[
            "history",
            "--host",
            HOST,
            "--part",
            "p",
            "dir/file.txt",
            "--json",
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["state"].as_str().unwrap().to_string(),
                    r["version"].as_u64(),
                )
            })
            .collect()
    };
    write(&f, b"one");
    write(&src.join("other"), b"x");
    env.backup(HOST, "p", &src);
    write(&f, b"two!");
    env.backup(HOST, "p", &src);
    env.backup(HOST, "p", &src); // no change
    write(&f, b"one"); // edited back
    env.backup(HOST, "p", &src);
    fs::remove_file(&f).unwrap();
    env.backup(HOST, "p", &src);
    write(&f, b"three");
    env.backup(HOST, "p", &src);
    let want: Vec<(String, Option<u64>)> = [
        ("new", Some(1)),
        ("changed", Some(2)),
        ("unchanged", Some(2)),
        ("changed", Some(1)),
        ("absent", None),
        ("new", Some(3)),
    ]
    .iter()
    .map(|(s, v)| (s.to_string(), *v))
    .collect();
    assert_eq!(hist(&env), want);
    let text = env.ok(&["history", "--host", HOST, "--part", "p", "dir/file.txt"]);
    assert_eq!(
        text.lines().filter(|l| l.contains("absent")).count(),
        1,
        "{text}"
    );
    // A folder's history follows its subtree.
    let dir: Value =
        serde_json::from_str(&env.ok(&["history", "--host", HOST, "--part", "p", "dir", "--json"]))
            .unwrap();
    let states: Vec<&str> = dir
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "new",
            "changed",
            "unchanged",
            "changed",
            "changed",
            "changed"
        ]
    );

    // find: a name pattern over the six snapshots, with --at and a path pattern.
    let found: Value = serde_json::from_str(&env.ok(&["find", "--json", "file.*"])).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 5);
    let out = env.run(&[
        "find",
        "--host",
        HOST,
        "--part",
        "p",
        "--at",
        "last",
        "*/file.txt",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.trim().ends_with("/dir/file.txt") && text.lines().count() == 1,
        "{text}"
    );
    let text = env.ok(&["find", "oth?r"]);
    assert_eq!(text.lines().count(), 6, "{text}");
    // Nothing found is exit 1 (as grep), with the ** form that matches.
    let err = env.expect_fail(&["find", "*/other"], 1, "did you mean '**/other'");
    assert!(err.contains("0 matches in 6 snapshots"), "{err}");
}

#[test]
fn find_searches_a_subtree_shared_by_snapshots_once() {
    let env = Env::new();
    let spool = env.path("spool");
    generate_spool(&spool, &SpoolSpec::demo()).unwrap();
    env.backup(HOST, "mail/imap", &spool);
    let searched = |env: &Env, pat: &str| -> (usize, String) {
        let out = env.run(&["find", pat]);
        assert!(out.status.success());
        (
            String::from_utf8_lossy(&out.stdout).lines().count(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (one, err_one) = searched(&env, "cyrus.header");
    env.backup(HOST, "mail/imap", &spool);
    env.backup(HOST, "mail/imap", &spool);
    let (three, err_three) = searched(&env, "cyrus.header");
    assert_eq!(three, 3 * one);
    let folders = |s: &str| {
        s.split('(')
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        folders(&err_one),
        folders(&err_three),
        "{err_one} / {err_three}"
    );
    let (sent, _) = searched(&env, "*/user/*/Sent/cyrus.header");
    assert_eq!(sent * 3, three);
}
