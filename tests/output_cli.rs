//! Output for scripts, logs and terminals: `--json` documents and JSON-lines progress, `-v` and
//! `-q`, syslog priorities under systemd, progress with a percentage and an ETA.

mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::process::Output;

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(out)))
}

fn part_arg(src: &std::path::Path) -> String {
    format!("p={}", src.display())
}

#[test]
fn json_documents_of_backup_restore_prune_and_forget() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a"), &bytes(3_000_000, 1));
    write(&src.join("d/b"), b"bb");
    let out = env
        .cmd(&[
            "backup",
            "--json",
            "--host",
            HOST,
            "--part",
            &part_arg(&src),
        ])
        .env("BMBACKUP_PROGRESS_MS", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = stdout_json(&out);
    assert_eq!(doc["status"], "complete");
    assert_eq!(doc["snapshots"][0]["files"], 2);
    assert_eq!(doc["snapshots"][0]["bytes"], 3_000_002);
    let id = doc["snapshots"][0]["id"].as_str().unwrap().to_string();
    // stderr: JSON lines only (progress and events).
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.iter().any(|l| l["type"] == "snapshot"), "{err}");

    let dest = env.path("dest");
    let out = env.run(&["restore", "--json", &id, dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = stdout_json(&out);
    assert_eq!(doc["files"], 2);
    assert_eq!(doc["dirs"], 1);
    assert_eq!(doc["failed"], Value::Array(vec![]));

    env.backup(HOST, "p", &src);
    let doc: Value =
        serde_json::from_str(&env.ok(&["forget", "--json", "--keep-last", "1", "--dry-run"]))
            .unwrap();
    assert_eq!(doc["would_remove"], 1, "{doc}");
    assert_eq!(doc["snapshots"].as_array().unwrap().len(), 2);
    let doc: Value =
        serde_json::from_str(&env.ok(&["forget", "--json", "--keep-last", "1", "--prune"]))
            .unwrap();
    assert_eq!(doc["removed"], 1, "{doc}");
    assert_eq!(doc["prune"]["snapshots"], 1, "{doc}");
    let doc: Value = serde_json::from_str(&env.ok(&["prune", "--json"])).unwrap();
    assert_eq!(doc["snapshots"], 1, "{doc}");
    assert_eq!(doc["dry_run"], false);

    // Deleting by name: --json cannot ask, so it needs --yes (or --dry-run).
    let last = format!("{HOST}/p/last");
    let doc: Value =
        serde_json::from_str(&env.ok(&["forget", "--json", "--dry-run", &last])).unwrap();
    assert_eq!(doc["would_remove"], 1, "{doc}");
    assert_eq!(doc["newest_removed"][0]["every_snapshot"], true, "{doc}");
    let err = env.code(&["forget", "--json", &last], 2);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(env.snapshots().len(), 1);
    let doc: Value = serde_json::from_str(&env.ok(&["forget", "--json", "--yes", &last])).unwrap();
    assert_eq!(doc["removed"], 1, "{doc}");
    assert!(env.snapshots().is_empty());
}

#[test]
fn verbose_lists_each_file_read_and_quiet_prints_nothing() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("keep"), b"k");
    write(&src.join("edit"), b"1");
    let part = part_arg(&src);
    // RUST_LOG (which the harness sets) would override -v.
    let run = |args: &[&str]| env.cmd(args).env_remove("RUST_LOG").output().unwrap();
    let out = run(&["-v", "backup", "--host", HOST, "--part", &part]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().any(|l| l == "A edit") && err.lines().any(|l| l == "A keep"),
        "{err}"
    );
    fs::write(src.join("edit"), b"22").unwrap();
    write(&src.join("new"), b"n");
    let out = run(&["backup", "-v", "--host", HOST, "--part", &part]);
    let err = String::from_utf8_lossy(&out.stderr);
    let listed: Vec<&str> = err
        .lines()
        .filter(|l| l.len() > 2 && l.as_bytes()[1] == b' ')
        .collect();
    assert_eq!(listed, ["M edit", "A new"], "{err}");
    // Without -v: no list.
    let out = env.run(&["backup", "--host", HOST, "--part", &part]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("A new"));
    assert!(!out.stdout.is_empty());
    // -q: nothing on a success, the error on a failure.
    let out = env.run(&["-q", "backup", "--host", HOST, "--part", &part]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        show(&out)
    );
    let dest = env.path("dest");
    let out = env.run(&[
        "restore",
        "-q",
        &format!("{HOST}/p/last"),
        dest.to_str().unwrap(),
    ]);
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        show(&out)
    );
    let bad = format!("p={}", env.path("missing").display());
    let out = env.run(&["-q", "backup", "--host", HOST, "--part", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    env.code(&["-q", "-v", "snapshots"], 2);
}

#[test]
fn under_systemd_lines_carry_syslog_priorities() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a"), b"a");
    env.write_config(&format!(
        "backup_archived_emails = true\n[parts.p]\npath = \"{}\"\n[parts.q]\npath = \"{}\"\n",
        src.display(),
        env.path("missing").display()
    ));
    // systemd sets JOURNAL_STREAM to the device:inode of the stderr it gives; a variable that
    // does not match stderr (inherited by a redirected child) is not the journal.
    let run = |stream: &str| {
        // fd 3: the pipe the test reads, which becomes the binary's stderr.
        let script = format!(
            "exec 3>&1; export JOURNAL_STREAM={stream}; exec {BIN} backup 2>&3 >/dev/null 3>&-"
        );
        let out = env.command("sh").args(["-c", &script]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let err = run("$(stat -L -c %d:%i /proc/self/fd/3)");
    assert!(
        err.lines().any(|l| l.starts_with("<3>bmbackup: error: ")),
        "{err}"
    );
    // The archive switch without an archive part: a warning.
    assert!(
        err.lines().any(|l| l.starts_with("<4>bmbackup: warning: ")),
        "{err}"
    );
    assert!(err.lines().all(|l| l.starts_with('<')), "{err}");
    let err = run("1:2");
    assert!(
        !err.contains("<3>") && err.contains("bmbackup: error: "),
        "{err}"
    );
}

#[test]
fn progress_on_a_terminal_shows_a_percentage_and_an_eta() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("big"), &bytes(40 << 20, 7));
    env.backup(HOST, "p", &src);
    // The same size again, all of it to read: the parent's size is the expected total.
    write(&src.join("big"), &bytes(40 << 20, 8));
    let on_tty = |cmd: String| {
        let out = env
            .command("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("BMBACKUP_PROGRESS_MS", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = on_tty(format!(
        "{BIN} backup --host {HOST} --part p={}",
        src.display()
    ));
    assert!(text.contains("% ETA "), "{text}");
    let dest = env.path("dest");
    let text = on_tty(format!("{BIN} restore {HOST}/p/last {}", dest.display()));
    assert!(
        text.contains("restoring: ") && text.contains("% ETA "),
        "{text}"
    );
}
