//! End-to-end tests of deleting on purpose and of what deleting frees: `stats` says what `prune`
//! frees (one computation) and `prune --dry-run` speaks in the conditional; explicit `forget`.

mod common;

use common::*;
use serde_json::Value;
use std::fs;

fn store_stats(env: &Env) -> Value {
    let s: Value = serde_json::from_str(&env.ok(&["stats", "--json"])).unwrap();
    s["store"].clone()
}

/// `stats`' "freeable by prune", then what a dry run says, then what prune really frees.
fn freeable_then_prune(env: &Env) -> (u64, u64) {
    let before = store_stats(env);
    let freeable = before["prune_freeable_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no prune_freeable_bytes: {before}"));
    let text = env.ok(&["stats"]);
    let line = text
        .lines()
        .find(|l| l.contains("freeable by prune"))
        .unwrap()
        .to_string();
    let dry = env.ok(&["prune", "--dry-run"]);
    assert!(
        dry.contains("would delete") && !dry.contains("deleted ") && !dry.contains("rewrote"),
        "{dry}"
    );
    let dry_json: Value = serde_json::from_str(&env.ok(&["prune", "--dry-run", "--json"])).unwrap();
    assert_eq!(
        dry_json["bytes_freed"].as_u64(),
        Some(freeable),
        "dry run and stats disagree: {dry_json} / {line}"
    );
    let stored = |s: &Value| s["stored_bytes"].as_u64().unwrap();
    env.ok(&["prune"]);
    let after = store_stats(env);
    (freeable, stored(&before) - stored(&after))
}

#[test]
fn stats_says_what_prune_frees() {
    let env = Env::new();
    let src = env.path("src");
    let part = format!("p={}", src.display());
    let backup = || env.ok(&["backup", "--host", HOST, "--part", &part]);
    write(&src.join("big"), &bytes(2 << 20, 1));
    write(&src.join("s"), &bytes(3000, 2));
    write(&src.join("t"), &bytes(3000, 3));
    backup();
    write(&src.join("s"), &bytes(3000, 4));
    backup();
    env.ok(&["forget", "--keep-last", "1"]);
    // Only the old `s` and a folder are unused, in a pack still mostly used: prune keeps it.
    let (freeable, freed) = freeable_then_prune(&env);
    assert_eq!((freeable, freed), (0, 0));
    let kept = store_stats(&env)["unused_kept_bytes"].as_u64().unwrap();
    assert!(kept > 0, "{kept}");
    let dry = env.ok(&["prune", "--dry-run"]);
    assert!(dry.contains("removing 0 unused blobs"), "{dry}");
    let dry: Value = serde_json::from_str(&env.ok(&["prune", "--dry-run", "--json"])).unwrap();
    assert_eq!(dry["unused_kept_bytes"].as_u64(), Some(kept), "{dry}");

    // `big` goes: its pack is rewritten around `t`, and the old `s` goes with it.
    fs::remove_file(src.join("big")).unwrap();
    backup();
    env.ok(&["forget", "--keep-last", "1"]);
    let (freeable, freed) = freeable_then_prune(&env);
    assert!(freeable > 2 << 20, "{freeable}");
    assert_eq!(freeable, freed);

    // Nothing more to free.
    let (freeable, freed) = freeable_then_prune(&env);
    assert_eq!((freeable, freed), (0, 0));
}

fn names_of(env: &Env) -> Vec<String> {
    let snaps: Value = serde_json::from_str(&env.ok(&["snapshots", "--json"])).unwrap();
    snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["part"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// Runs `bmbackup ARGS` on a pseudo-terminal (util-linux `script`), typing `answer`.
fn on_terminal(env: &Env, args: &[&str], answer: &str) -> (bool, String) {
    use std::io::Write;
    let cmd = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let child = env
        .command("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn forget_deletes_named_snapshots_on_purpose_after_confirmation() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("f"), b"x");
    for (part, at) in [
        ("p", "2026-11-21T10:00:00Z"),
        ("p", "2026-11-22T10:00:00Z"),
        ("p", "2026-11-23T10:00:00Z"),
        ("typo", "2026-11-23T10:00:00Z"),
        ("typo", "2026-11-24T10:00:00Z"),
    ] {
        env.ok(&[
            "backup",
            "--host",
            HOST,
            "--part",
            &format!("{part}={}", src.display()),
            "--simulate-time",
            at,
        ]);
    }
    let all = names_of(&env);
    assert_eq!(all.len(), 5);
    let first = format!("{HOST}/p/2026-11-21_100000");
    let newest = format!("{HOST}/p/last");

    // No terminal, no --yes: refused, nothing deleted.
    let out = env.run(&["forget", &first]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no terminal") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(names_of(&env), all);
    // A dry run lists and deletes nothing.
    let dry = env.ok(&["forget", &first, &newest, "--dry-run"]);
    assert!(
        dry.contains("would delete 2 snapshots") && dry.contains("newest snapshot of 10.9.9.9/p"),
        "{dry}"
    );
    assert_eq!(names_of(&env), all);
    // One name that matches nothing: nothing is deleted.
    let err = env.fails(&[
        "forget",
        &first,
        &format!("{HOST}/p/2026-11-21_100000_2"),
        "--yes",
    ]);
    assert!(err.contains("2026-11-21_100000_2"), "{err}");
    assert_eq!(names_of(&env), all);

    // On a terminal: "n" keeps, "y" deletes (the newest too: explicit deletion may).
    let (ok, out) = on_terminal(&env, &["forget", &first, &newest], "n");
    assert!(
        ok && out.contains("newest included") && out.contains("nothing was deleted"),
        "{out}"
    );
    assert_eq!(names_of(&env), all);
    let (ok, out) = on_terminal(&env, &["forget", &first, &newest], "y");
    assert!(ok && out.contains("deleted 2 snapshots"), "{out}");
    assert_eq!(
        names_of(&env),
        [
            "p/2026-11-22_100000",
            "typo/2026-11-23_100000",
            "typo/2026-11-24_100000"
        ]
    );

    // A whole part by --all (an id prefix works too), then prune frees its data.
    let out = env.ok(&["forget", "--host", HOST, "--part", "typo", "--all", "--yes"]);
    assert!(out.contains("EVERY snapshot of 10.9.9.9/typo"), "{out}");
    assert_eq!(names_of(&env), ["p/2026-11-22_100000"]);
    let snaps: Value = serde_json::from_str(&env.ok(&["snapshots", "--json"])).unwrap();
    let id = snaps[0]["id"].as_str().unwrap()[..8].to_string();
    env.ok(&["forget", &id, "--yes", "--prune"]);
    assert!(names_of(&env).is_empty());
    // Policy flags and explicit names do not mix.
    let out = env.run(&["forget", &first, "--keep-last", "1"]);
    assert_eq!(out.status.code(), Some(2));
}
