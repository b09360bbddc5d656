//! The command line as restic and borg users expect it: exit codes, errors said once, plurals,
//! the same counts across commands, a missing store that points at the mount.

mod common;
use common::*;
use std::fs;

#[test]
fn a_bad_when_is_bad_usage_exit_2() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a"), b"a");
    env.backup(HOST, "p", &src);
    let dest = env.path("dest");
    let d = dest.to_str().unwrap();
    let msg = env.code(
        &[
            "restore", "--host", HOST, "--part", "p", "--at", "garbage", "", d,
        ],
        2,
    );
    assert!(msg.contains("cannot read \"garbage\" as a date"), "{msg}");
    env.code(&["restore", "--host", HOST, "", d], 2);
    // A missing required value is clap's usage error.
    env.code(&["restore", "x"], 2);
    // An error that is not about usage stays 1.
    env.code(&["restore", "ffffffffffff", d], 1);
}

#[test]
fn an_error_does_not_repeat_its_cause() {
    let env = Env::new();
    let out = env
        .cmd(&["snapshots"])
        .env("BMBACKUP_CONFIG", env.path("no-such-config.toml"))
        .output()
        .unwrap();
    let err = expect_exit(&out, 1, "cannot read config");
    let cause = "No such file or directory";
    assert_eq!(err.matches(cause).count(), 1, "{err}");
    let part = format!("p={}", env.path("nosrc").display());
    let err = env.code(&["backup", "--host", HOST, "--part", &part], 1);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert_eq!(err.matches("part").count(), 1, "{err}");
}

#[test]
fn backup_and_restore_count_files_alike_with_right_plurals() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("d/one"), b"1");
    write(&src.join("d/two"), b"22");
    std::os::unix::fs::symlink("one", src.join("d/link")).unwrap();
    let out = env.ok(&[
        "backup",
        "--host",
        HOST,
        "--part",
        &format!("p={}", src.display()),
    ]);
    assert!(out.contains(": 2 files, "), "{out}");
    let dest = env.path("dest");
    let out = env.ok(&["restore", &format!("{HOST}/p/last"), dest.to_str().unwrap()]);
    assert!(
        out.contains("restored 2 files, 1 symlink or special file and 1 folder ("),
        "{out}"
    );
    let one = env.path("one");
    let out = env.ok(&[
        "restore",
        &format!("{HOST}/p/last:d/one"),
        one.to_str().unwrap(),
    ]);
    assert!(out.contains("restored 1 file and 0 folders ("), "{out}");
}

#[test]
fn a_missing_or_empty_store_asks_about_the_mount() {
    let env = Env::uninit();
    let empty = env.path("empty");
    fs::create_dir(&empty).unwrap();
    for store in [env.path("missing"), empty] {
        let err = env.code(&["--store", store.to_str().unwrap(), "snapshots"], 1);
        assert!(err.contains("is not a bmbackup store"), "{err}");
        assert!(err.contains("is the NFS share mounted?"), "{err}");
        assert!(!err.contains("bmbackup init"), "{err}");
    }
}

#[test]
fn init_on_a_store_says_it_is_one() {
    let env = Env::new();
    let err = env.code(&["init", env.store().to_str().unwrap()], 1);
    assert!(err.contains("is already a bmbackup store"), "{err}");
    assert!(!err.contains("not empty"), "{err}");
}

#[test]
fn a_file_not_backed_up_is_reported_once() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to run the backup as another user");
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("public"), b"anyone");
    write(&src.join("secret"), b"root only");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(src.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.backup_as_nobody(&format!("p={}", src.display()));
    let err = expect_exit(&out, 3, "1 file not backed up");
    assert_eq!(err.matches("secret").count(), 1, "{err}");
}

#[test]
fn restore_of_one_file_into_a_folder_or_as_a_named_file() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("dir/file"), b"content");
    env.backup(HOST, "p", &src);
    let spec = format!("{HOST}/p/last:dir/file");
    let help = env.ok(&["restore", "--help"]);
    assert!(help.contains("goes into DEST under its own name"), "{help}");
    let into = env.path("into");
    env.ok(&["restore", &spec, into.to_str().unwrap()]);
    assert_eq!(fs::read(into.join("file")).unwrap(), b"content");
    let named = env.path("elsewhere/renamed.txt");
    fs::create_dir_all(named.parent().unwrap()).unwrap();
    let n = named.to_str().unwrap();
    let out = env.ok(&["restore", &spec, "--to-file", n]);
    assert!(out.contains("restored 1 file"), "{out}");
    assert_eq!(fs::read(&named).unwrap(), b"content");
    // Nothing else left beside it.
    assert_eq!(names(named.parent().unwrap()), ["renamed.txt"]);
    let err = env.code(&["restore", &spec, "--to-file", n], 1);
    assert!(err.contains("already exists"), "{err}");
    fs::write(&named, b"changed").unwrap();
    env.ok(&["restore", &spec, "--to-file", n, "--overwrite"]);
    assert_eq!(fs::read(&named).unwrap(), b"content");
    let err = env.code(
        &[
            "restore",
            &format!("{HOST}/p/last:dir"),
            "--to-file",
            n,
            "--overwrite",
        ],
        1,
    );
    assert!(err.contains("is a folder"), "{err}");
}

#[test]
fn restore_server_takes_the_host_of_the_config() {
    let env = Env::new();
    env.write_config("");
    let src = env.path("srv/data");
    write(&src.join("f"), b"x");
    env.backup("10.0.0.5", "data", &src);
    let root = env.path("root");
    let out = env.ok(&[
        "restore-server",
        "--at",
        "last",
        "--target",
        root.to_str().unwrap(),
    ]);
    assert!(out.contains("restored 1 file"), "{out}");
    assert_eq!(
        fs::read(root.join(src.strip_prefix("/").unwrap()).join("f")).unwrap(),
        b"x"
    );
}

#[test]
fn restore_user_in_place_asks_first() {
    let env = Env::new();
    let spool = env.backup_demo_spool("spool");
    let (local, domain) = users(&spool)[0].clone();
    let user = format!("{local}@{domain}");
    let live = spool.join(&domain).join("user").join(&local);
    write(&live.join("stray"), b"x");
    let args = restore_user_last(&user, HOST, &["--in-place"]);
    // No terminal and no --yes: refused, nothing removed.
    let err = env.code(&args, 2);
    assert!(
        err.contains("--yes") && err.contains(live.to_str().unwrap()),
        "{err}"
    );
    assert!(live.join("stray").exists());
    // On a terminal (script(1) gives it one), the admin is asked; only `yes` goes on.
    let line = format!("{BIN} restore-user {user} --at last --host {HOST} --in-place");
    let tty = |answer: &str| {
        use std::io::Write;
        let mut child = env
            .command("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = tty("no\n");
    assert!(
        text.contains("removes:") && text.contains("stopped"),
        "{text}"
    );
    assert!(live.join("stray").exists());
    let text = tty("yes\n");
    assert!(text.contains("IN PLACE"), "{text}");
    assert!(!live.join("stray").exists());
    write(&live.join("stray"), b"x");
    env.ok(&[&args[..], &["--yes"]].concat());
    assert!(!live.join("stray").exists());
}
