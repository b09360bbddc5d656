//! What restic users expect (issue 25): a backup's progress on the bytes it still has to read,
//! `backup --part NAME` of a configured part, `backup --dry-run`, `backup --json`'s snapshot
//! names and dates.

mod common;
use common::*;
use serde_json::Value;

/// The JSON status lines of `backup --json` on stderr.
fn status_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "status")
        .collect()
}

#[test]
fn progress_is_not_done_while_new_data_is_still_read() {
    let env = Env::new();
    let src = env.path("src");
    // 24 MiB backed up once and unchanged, then 24 MiB of new files walked after them.
    for i in 0..24 {
        write(&src.join(format!("a/f{i}")), &bytes(1 << 20, i + 1));
    }
    env.backup(HOST, "p", &src);
    for i in 0..24 {
        write(&src.join(format!("b/f{i}")), &bytes(1 << 20, i + 100));
    }
    let part = format!("p={}", src.display());
    let out = env
        .cmd(&[
            "backup",
            "--json",
            "--threads",
            "1",
            "--host",
            HOST,
            "--part",
            &part,
        ])
        .env("BMBACKUP_PROGRESS_MS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let total_read = 24u64 << 20;
    let lines = status_lines(&out);
    assert!(!lines.is_empty());
    for l in &lines {
        let read = l["bytes_read"].as_u64().unwrap();
        if let Some(p) = l["percent_done"].as_f64() {
            // Never ahead of the bytes actually read (unchanged files are not "done" reading).
            assert!(
                p <= 100.0 * read as f64 / total_read as f64 + 1.0,
                "{p}% with {read} of {total_read} read: {l}"
            );
        }
    }
}

#[test]
fn backup_part_name_takes_the_configured_part_and_json_gives_names_and_dates() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a"), b"a");
    env.write_config(&format!(
        "[parts.\"mail/imap\"]\npath = \"{}\"\n[parts.db]\npath = \"/nonexistent\"\n",
        src.display()
    ));
    let out = env.ok(&["backup", "--json", "--part", "mail/imap"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let snaps = doc["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1, "only the part named: {doc}");
    let s = &snaps[0];
    assert_eq!(s["part"], "mail/imap");
    let listed = env.snapshots();
    assert_eq!(s["name"], listed[0]["name"], "{s}");
    assert_eq!(s["date"], listed[0]["date"], "{s}");
    assert!(s["name"].as_str().unwrap().len() >= 17, "{s}");
    let err = env.expect_fail(&["backup", "--part", "mail/imapp"], 1, "mail/imapp");
    assert!(err.contains("it has db, mail/imap"), "{err}");
}

#[test]
fn init_takes_the_store_of_the_config_and_usage_errors_exit_2() {
    let env = Env::uninit();
    let store = env.path("from-config");
    env.write_config(&format!("store = \"{}\"\n", store.display()));
    let out = env
        .cmd(&["init"])
        .env_remove("BMBACKUP_STORE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(store.join("bmbackup-store.json").exists());
    // A misspelt mount option is bad usage, as clap's own errors are.
    let mnt = env.mnt();
    env.expect_fail(
        &[
            "mount",
            "-o",
            "allow_othr",
            store.to_str().unwrap(),
            mnt.to_str().unwrap(),
        ],
        2,
        "allow_othr",
    );
}

#[test]
fn prune_and_check_speak_in_plurals_and_human_sizes() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a"), &bytes(3 << 20, 1));
    env.backup(HOST, "p", &src);
    let out = env.ok(&["prune", "--dry-run"]);
    assert!(out.contains("1 snapshot kept; 1 pack (3.0 MiB)"), "{out}");
    let out = env.ok(&["check"]);
    assert!(out.contains("checked 1 pack, 1 snapshot, 1 tree,"), "{out}");
    assert!(out.contains("0 B read"), "{out}");
}

#[test]
fn backup_dry_run_lists_what_would_be_read_and_writes_nothing() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("old"), &bytes(5000, 1));
    write(&src.join("d/changed"), &bytes(3000, 2));
    env.backup(HOST, "p", &src);
    write(&src.join("d/changed"), &bytes(4000, 3));
    write(&src.join("d/new"), &bytes(2048, 4));
    let part = format!("p={}", src.display());
    let packs = env.pack_files().len();
    let out = env.ok(&["backup", "--dry-run", "--host", HOST, "--part", &part]);
    assert!(out.contains("+ p/d/new  (2.0 KiB)"), "{out}");
    assert!(out.contains("M p/d/changed  (3.9 KiB)"), "{out}");
    assert!(!out.contains("old"), "{out}");
    assert!(
        out.contains("p: would read 2 files (5.9 KiB) of 3 files"),
        "{out}"
    );
    assert_eq!(env.snapshots().len(), 1);
    assert_eq!(env.pack_files().len(), packs);
    let doc: Value = serde_json::from_str(&env.ok(&[
        "backup",
        "--dry-run",
        "--json",
        "--host",
        HOST,
        "--part",
        &part,
    ]))
    .unwrap();
    assert_eq!(doc["parts"][0]["bytes_to_read"], 6048, "{doc}");
}

#[test]
fn bash_completion_offers_the_store_s_parts_and_snapshots() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a"), b"a");
    env.backup(HOST, "mail/imap", &src);
    env.write_config("[parts.\"mail/archive\"]\npath = \"/nonexistent\"\n");
    let docs = env.path("docs");
    env.ok(&["docs", docs.to_str().unwrap()]);
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let complete = |words: &str| {
        let script = format!(
            "source {}/bash/bmbackup; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _bmbackup_names bmbackup \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            docs.display()
        );
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
        command_ok(env.command("bash").env("PATH", path).args(["-c", &script]))
    };
    assert_eq!(
        complete("bmbackup snapshots --part mail/"),
        "mail/archive\nmail/imap\n"
    );
    let name = env.snapshots()[0]["name"].as_str().unwrap().to_string();
    assert_eq!(complete("bmbackup find --at 20"), format!("{name}\n"));
    let snaps = complete("bmbackup ls 10.9.9.9/mail/imap/");
    assert!(
        snaps.contains(&format!("10.9.9.9/mail/imap/{name}\n")),
        "{snaps}"
    );
    assert!(snaps.contains("10.9.9.9/mail/imap/last\n"), "{snaps}");
    // Elsewhere clap's own completion: the commands.
    assert!(complete("bmbackup snap").contains("snapshots"));
}
