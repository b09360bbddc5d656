//! End-to-end tests of the backup policy with the real binary: `forget` (dry run, keep-last,
//! selection), the config's vendor switches, pre/post hooks and the post-backup hook with their
//! environment, retention applied by `backup`, and `stats`. Retention rules over long synthetic
//! histories are table-tested in `src/retention/tests.rs` (the CLI only makes "now" snapshots).

mod common;

use common::{bytes, write, Env};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

fn spool(root: &Path) {
    for m in 1..=20 {
        write(
            &root.join(format!("example.com/user/u{}/{m}.", m % 3)),
            format!("Subject: {m}\r\n\r\n{}", "text ".repeat(100 * m)).as_bytes(),
        );
    }
    write(&root.join("big.bin"), &bytes(1 << 20, 3));
}

/// Every file under `root`, relative, with its content.
fn contents(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Parses the output of `env` as written by a hook.
fn env_file(path: &Path) -> HashMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (did the hook run?)", path.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn forget_dry_run_then_keep_last() {
    let env = Env::new();
    env.write_config("");
    let src = env.path("spool");
    spool(&src);
    env.backup_part("mail/imap", &src);
    write(&src.join("example.com/user/u1/new."), b"a new message");
    env.backup_part("mail/imap", &src);
    write(&src.join("example.com/user/u2/newer."), b"another one");
    env.backup_part("mail/imap", &src);
    env.backup_part("bm/pgsql", &src.join("example.com"));
    assert_eq!(env.snapshots().len(), 4);

    // No rule, or rules that keep nothing: a usage error that deletes nothing.
    for args in [&["forget"][..], &["forget", "--keep-last", "0"]] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("keeps nothing"));
    }

    let out = env.ok(&["forget", "--keep-last", "1", "--dry-run"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.trim_start().starts_with("remove"))
            .count(),
        2,
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("keep") && l.ends_with("newest, keep-last 1")),
        "{out}"
    );
    assert!(
        out.contains("10.0.0.5/mail/imap:") && out.contains("10.0.0.5/bm/pgsql:"),
        "{out}"
    );
    assert!(out.contains("nothing was deleted"), "{out}");
    assert_eq!(env.manifest_files().len(), 4, "a dry run deletes nothing");
    assert_eq!(env.snapshots().len(), 4);

    // --part limits forget to that part: bm/pgsql is left alone even by a strict rule.
    env.ok(&["forget", "--keep-last", "1", "--part", "mail/imap"]);
    let left = env.snapshots();
    assert_eq!(left.len(), 2);
    assert_eq!(env.manifest_files().len(), 2);
    let imap: Vec<_> = left.iter().filter(|s| s["part"] == "mail/imap").collect();
    assert_eq!(imap.len(), 1);

    // The kept snapshot is the newest and still restores byte for byte.
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_eq!(contents(&src), contents(&out));
}

#[test]
fn hooks_run_with_their_environment() {
    let env = Env::new();
    let imap = env.path("imap");
    let db = env.path("db");
    spool(&imap);
    write(&db.join("dump/t1"), b"table one");
    let hooks = env.path("hooks");
    fs::create_dir_all(&hooks).unwrap();
    let h = hooks.display();
    env.write_config(&format!(
        r#"post_backup_hook = "env > {h}/post-backup"
[parts."mail/imap"]
path = "{imap}"
pre = "env > {h}/imap-pre"
post = "env > {h}/imap-post"
[parts."bm/pgsql"]
path = "{db}"
post = "env > {h}/db-post"
"#,
        imap = imap.display(),
        db = db.display()
    ));
    env.ok(&["backup"]);
    let snaps = env.snapshots();
    let snap = |part: &str| snaps.iter().find(|s| s["part"] == part).unwrap().clone();

    let pre = env_file(&hooks.join("imap-pre"));
    assert_eq!(pre["BMBACKUP_PART"], "mail/imap");
    assert_eq!(pre["BMBACKUP_PATH"], imap.display().to_string());
    assert_eq!(pre["BMBACKUP_HOST"], "10.0.0.5");
    assert_eq!(pre["BMBACKUP_STORE"], env.store().display().to_string());
    assert!(!pre.contains_key("BMBACKUP_SNAPSHOT_ID"));
    let post = env_file(&hooks.join("imap-post"));
    assert_eq!(post["BMBACKUP_SNAPSHOT_ID"], snap("mail/imap")["id"]);
    assert_eq!(post["BMBACKUP_STATUS"], "complete");
    assert_eq!(
        env_file(&hooks.join("db-post"))["BMBACKUP_PART"],
        "bm/pgsql"
    );

    let all = env_file(&hooks.join("post-backup"));
    assert_eq!(all["BMBACKUP_STATUS"], "complete");
    assert_eq!(all["BMBACKUP_STORE"], env.store().display().to_string());
    assert_eq!(all["BMBACKUP_SNAPSHOTS"], "2");
    assert_eq!(all["BMBACKUP_FAILED_PARTS"], "");
    // Parts run in config order (sorted by name): bm/pgsql first.
    for (i, part) in [(1, "bm/pgsql"), (2, "mail/imap")] {
        let s = snap(part);
        assert_eq!(all[&format!("BMBACKUP_SNAPSHOT_{i}_PART")], part);
        assert_eq!(all[&format!("BMBACKUP_SNAPSHOT_{i}_HOST")], "10.0.0.5");
        assert_eq!(all[&format!("BMBACKUP_SNAPSHOT_{i}_ID")], s["id"]);
        assert_eq!(all[&format!("BMBACKUP_SNAPSHOT_{i}_DATE")], s["name"]);
        assert_eq!(all[&format!("BMBACKUP_SNAPSHOT_{i}_STATUS")], "complete");
    }
    let json: serde_json::Value = serde_json::from_str(&all["BMBACKUP_SNAPSHOTS_JSON"]).unwrap();
    assert_eq!(json[1]["part"], "mail/imap");
    assert_eq!(json[1]["date"], snap("mail/imap")["name"]);
}

#[test]
fn failing_pre_hook_skips_its_part_only() {
    let env = Env::new();
    let a = env.path("a");
    let b = env.path("b");
    write(&a.join("f"), b"part a");
    write(&b.join("g"), b"part b");
    let hooks = env.path("hooks");
    fs::create_dir_all(&hooks).unwrap();
    let h = hooks.display();
    env.write_config(&format!(
        r#"post_backup_hook = "env > {h}/post-backup"
[parts."bm/pgsql"]
path = "{a}"
pre = "echo dump failed >&2; exit 4"
post = "env > {h}/pgsql-post"
[parts."mail/imap"]
path = "{b}"
"#,
        a = a.display(),
        b = b.display()
    ));
    let out = env.run(&["backup"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pre hook of part bm/pgsql") && stderr.contains("skipped"),
        "{stderr}"
    );
    let parts: Vec<_> = env.snapshots().iter().map(|s| s["part"].clone()).collect();
    assert_eq!(parts, ["mail/imap"], "the other part still ran");
    // The part's post hook still runs, to clean up, and is told the part failed.
    let post = env_file(&hooks.join("pgsql-post"));
    assert_eq!(post["BMBACKUP_STATUS"], "failed");
    assert_eq!(post["BMBACKUP_SNAPSHOT_ID"], "");
    let all = env_file(&hooks.join("post-backup"));
    assert_eq!(all["BMBACKUP_STATUS"], "partial");
    assert_eq!(all["BMBACKUP_SNAPSHOTS"], "1");
    assert_eq!(all["BMBACKUP_SNAPSHOT_1_PART"], "mail/imap");
    assert_eq!(all["BMBACKUP_FAILED_PARTS"], "bm/pgsql");
}

#[test]
fn failing_post_backup_hook_fails_the_run_but_keeps_snapshots() {
    let env = Env::new();
    let a = env.path("a");
    write(&a.join("f"), b"data");
    env.write_config(&format!(
        "post_backup_hook = \"exit 9\"\n[parts.\"mail/imap\"]\npath = \"{}\"\n",
        a.display()
    ));
    let out = env.run(&["backup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("post-backup hook `exit 9` failed"));
    assert_eq!(env.snapshots().len(), 1);
}

#[test]
fn archived_emails_are_off_by_default() {
    let env = Env::new();
    let imap = env.path("imap");
    let hsm = env.path("hsm");
    write(&imap.join("1."), b"mail");
    write(&hsm.join("archived"), b"old mail");
    let parts = format!(
        "[parts.\"mail/imap\"]\npath = \"{}\"\n[parts.\"mail/archive\"]\npath = \"{}\"\n",
        imap.display(),
        hsm.display()
    );
    env.write_config(&parts);
    let out = env.ok(&["backup"]);
    assert!(
        out.contains("mail/archive: skipped (backup_archived_emails"),
        "{out}"
    );
    let parts_of = |env: &Env| -> Vec<String> {
        let mut p: Vec<String> = env
            .snapshots()
            .iter()
            .map(|s| s["part"].as_str().unwrap().to_string())
            .collect();
        p.sort();
        p.dedup();
        p
    };
    assert_eq!(parts_of(&env), ["mail/imap"]);

    env.write_config(&format!(
        "backup_archived_emails = true\nbackup_emails = false\n{parts}"
    ));
    let out = env.ok(&["backup"]);
    assert!(
        out.contains("mail/imap: skipped (backup_emails = false)"),
        "{out}"
    );
    assert_eq!(parts_of(&env), ["mail/archive", "mail/imap"]);
    assert_eq!(
        env.snapshots().len(),
        2,
        "mail/imap was not backed up again"
    );
}

#[test]
fn backup_applies_configured_retention() {
    let env = Env::new();
    let a = env.path("a");
    write(&a.join("f"), b"data");
    env.write_config(&format!(
        "[retention]\nkeep_last = 2\n[parts.\"mail/imap\"]\npath = \"{}\"\n",
        a.display()
    ));
    env.ok(&["backup"]);
    env.ok(&["backup"]);
    // Another host's snapshots of the same part are not this run's business.
    env.ok(&[
        "backup",
        "--host",
        "10.0.0.9",
        "--part",
        &format!("mail/imap={}", a.display()),
    ]);
    let out = env.ok(&["backup"]);
    assert!(out.contains("retention: forgot 1 snapshot"), "{out}");
    assert!(out.contains("prune: "), "retention prunes too: {out}");
    let snaps = env.snapshots();
    let mine = snaps.iter().filter(|s| s["host"] == "10.0.0.5").count();
    assert_eq!((snaps.len(), mine), (3, 2));
}

#[test]
fn stats_figures_are_consistent() {
    let env = Env::new();
    env.write_config("");
    let a = env.path("a");
    let b = env.path("b");
    spool(&a);
    spool(&b);
    env.backup_part("mail/imap", &a);
    env.backup_part("mail/imap", &a);
    env.backup_part("mail/archive", &b);
    let stats: serde_json::Value = serde_json::from_str(&env.ok(&["stats", "--json"])).unwrap();
    let snaps = env.snapshots();
    let s = &stats["store"];
    let u = |v: &serde_json::Value| v.as_u64().unwrap();
    let logical: u64 = snaps.iter().map(|x| u(&x["bytes"])).sum();
    assert_eq!(u(&s["logical_bytes"]), logical);
    assert_eq!(u(&s["snapshots"]), 3);
    // Three snapshots of the same files: stored once.
    assert_eq!(u(&s["unique_bytes"]) * 3, logical);
    assert!(
        (s["dedup_ratio"].as_f64().unwrap() - 3.0).abs() < 1e-9,
        "{s}"
    );
    let on_disk: u64 = fs::read_dir(env.store().join("packs"))
        .unwrap()
        .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(u(&s["stored_bytes"]), on_disk);
    assert!(u(&s["referenced_stored_bytes"]) <= on_disk);
    let c = s["compression_ratio"].as_f64().unwrap();
    assert!((c - u(&s["unique_bytes"]) as f64 / on_disk as f64).abs() < 1e-9);
    assert_eq!((u(&s["unreadable_trees"]), u(&s["missing_chunks"])), (0, 0));

    let parts = stats["parts"].as_array().unwrap();
    let imap = parts.iter().find(|p| p["part"] == "mail/imap").unwrap();
    assert_eq!(u(&imap["snapshots"]), 2);
    assert_eq!(
        u(&imap["total_logical_bytes"]),
        2 * u(&imap["newest_logical_bytes"])
    );
    assert_eq!(stats["snapshots"].as_array().unwrap().len(), 3);

    // Forgetting leaves the data until a prune: referenced data shrinks, stored does not.
    env.ok(&["forget", "--keep-last", "1"]);
    let after: serde_json::Value = serde_json::from_str(&env.ok(&["stats", "--json"])).unwrap();
    assert_eq!(u(&after["store"]["stored_bytes"]), on_disk);
    assert_eq!(u(&after["store"]["snapshots"]), 2);
    let text = env.ok(&["stats"]);
    assert!(
        text.contains("dedup ratio") && text.contains("mail/archive"),
        "{text}"
    );
}

fn stored(env: &Env) -> u64 {
    let stats: serde_json::Value = serde_json::from_str(&env.ok(&["stats", "--json"])).unwrap();
    stats["store"]["stored_bytes"].as_u64().unwrap()
}

#[test]
fn forget_with_prune_frees_the_space_of_forgotten_data() {
    let env = Env::new();
    env.write_config("");
    let src = env.path("spool");
    spool(&src);
    write(&src.join("gone.bin"), &bytes(2 << 20, 9));
    env.backup_part("mail/imap", &src);
    fs::remove_file(src.join("gone.bin")).unwrap();
    env.backup_part("mail/imap", &src);
    let before = stored(&env);

    let out = env.ok(&["forget", "--keep-last", "1", "--prune", "--dry-run"]);
    assert!(out.contains("not run in a dry run"), "{out}");
    assert_eq!(stored(&env), before);

    let out = env.ok(&["forget", "--keep-last", "1", "--prune"]);
    assert!(out.contains("prune: "), "{out}");
    let after = stored(&env);
    assert!(
        after + (2 << 20) <= before,
        "the 2 MiB only the forgotten snapshot had are freed: {before} -> {after}"
    );
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_eq!(contents(&src), contents(&out));
}

/// A simulated history of daily snapshots (recorded at past dates) forgotten by the vendor's
/// policy: every snapshot of the last 3 days plus the ones closest to D-7, kept and no other.
#[test]
fn forget_keep_days_and_ages_over_a_simulated_history() {
    let env = Env::new();
    env.write_config("");
    let src = env.path("spool");
    spool(&src);
    let part = format!("mail/imap={}", src.display());
    for age in (0..=11).rev() {
        write(
            &src.join(format!("day{age}")),
            format!("mail of D-{age}").as_bytes(),
        );
        env.ok(&[
            "backup",
            "--host",
            "10.0.0.5",
            "--part",
            &part,
            "--simulate-time",
            &format!("{age}d"),
        ]);
    }
    assert_eq!(env.snapshots().len(), 12);
    let dry = env.ok(&[
        "forget",
        "--keep-days",
        "3",
        "--keep-ages",
        "7",
        "--dry-run",
    ]);
    assert_eq!(env.snapshots().len(), 12, "dry run deletes nothing:\n{dry}");
    env.ok(&["forget", "--keep-days", "3", "--keep-ages", "7", "--prune"]);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut ages: Vec<i64> = env
        .snapshots()
        .iter()
        .map(|s| {
            (now_ns - s["started_ns"].as_i64().unwrap() + 43_200_000_000_000) / 86_400_000_000_000
        })
        .collect();
    ages.sort();
    // D-0..D-2 are within 3 days (D-3, taken a few seconds more than 3 days ago, is not);
    // D-7 is the one closest to seven days back.
    assert_eq!(ages, vec![0, 1, 2, 7], "{dry}");
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_eq!(contents(&src), contents(&out));
}
