//! End-to-end tests of the point-in-time restores (`restore --at`, `restore-user`,
//! `restore-server`) and of an interrupted restore resumed, with the real binary on generated
//! spools, checked with the exact tree comparer. Also the throughput report against `cp -a`.

mod common;

use bmbackup::gen::{generate_spool, generate_tree_with_every_file_type, SpoolSpec};
use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Everything below the roots (the restore target is created by the test).
fn exact() -> CompareOptions {
    CompareOptions::ignore_root()
}

#[test]
fn restore_at_a_date_between_two_snapshots_gives_the_older() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a/keep.txt"), b"kept");
    write(&src.join("a/sub/f.txt"), b"version one");
    let one = env.backup(HOST, "data", &src);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(&src.join("a/sub/f.txt"), b"version two, longer");
    write(&src.join("a/sub/new.txt"), b"new");
    let two = env.backup(HOST, "data", &src);
    let (t1, t2) = (
        one["started_ns"].as_i64().unwrap(),
        two["started_ns"].as_i64().unwrap(),
    );
    // The second the first snapshot started in: `--at` that second means up to its end, which
    // includes the first snapshot and is before the second one (started 1.1 s later).
    let between = t1 / 1_000_000_000 * 1_000_000_000;
    assert!(between <= t1 && between + 1_000_000_000 <= t2);

    let out = env.path("out");
    let o = out.to_str().unwrap();
    let at = iso(between);
    env.ok(&[
        "restore", "--host", HOST, "--part", "data", "--at", &at, "a/sub", o,
    ]);
    assert_eq!(names(&out), ["f.txt"]);
    assert_eq!(fs::read(out.join("f.txt")).unwrap(), b"version one");

    let out2 = env.path("out2");
    env.ok(&[
        "restore",
        "--host",
        HOST,
        "--part",
        "data",
        "--at",
        "last",
        "a",
        out2.to_str().unwrap(),
    ]);
    assert_same_tree_with(&src.join("a"), &out2, &exact());

    // Dry run writes nothing; the old SNAPSHOT:PATH form still works.
    let listed = env.ok(&[
        "restore",
        "--dry-run",
        "--part",
        "data",
        "--host",
        HOST,
        "a",
        env.path("dry").to_str().unwrap(),
    ]);
    assert!(
        listed.contains("new.txt") && !env.path("dry").exists(),
        "{listed}"
    );
    let out3 = env.path("out3");
    env.ok(&[
        "restore",
        &format!("{}:a/sub/f.txt", one["short_id"].as_str().unwrap()),
        out3.to_str().unwrap(),
    ]);
    assert_eq!(fs::read(out3.join("f.txt")).unwrap(), b"version one");

    // Existing files are not overwritten without --overwrite.
    let e = env.run(&["restore", "--part", "data", "--host", HOST, "a/sub", o]);
    assert_eq!(e.status.code(), Some(3), "{e:?}");
    assert_eq!(fs::read(out.join("f.txt")).unwrap(), b"version one");

    let at_restore = |at| {
        [
            "restore", "--part", "data", "--host", HOST, "--at", at, "a", o,
        ]
    };
    let e = env.fails_with(&at_restore("2001-01-01"), "oldest are");
    assert!(e.contains("2001-01-01"), "{e}");
    env.fails_with(
        &at_restore("yesterday"),
        "cannot read \"yesterday\" as a date",
    );
    env.fails_with(
        &["restore", "--part", "nope", "--host", HOST, "a", o],
        &format!("{HOST}/data"),
    );
}

#[test]
fn restore_user_restores_exactly_that_user() {
    let env = Env::new();
    let spool = env.backup_demo_spool("spool");
    let orig = env.path("orig");
    generate_spool(&orig, &SpoolSpec::demo()).unwrap();
    let all = users(&spool);
    let (local, domain) = all[3].clone();
    let user = format!("{local}@{domain}");
    let user_dir = |root: &Path| root.join(&domain).join("user").join(&local);

    // --to: exactly that user's folders, byte-identical with their metadata, nothing else.
    let to = env.path("to");
    env.ok(&restore_user_last(
        &user,
        HOST,
        &["--to", to.to_str().unwrap()],
    ));
    assert_eq!(names(&to), std::slice::from_ref(&user));
    assert_eq!(names(&to.join(&user)), ["mail"]);
    assert_same_tree_with(
        &user_dir(&orig),
        &to.join(&user).join("mail/imap"),
        &CompareOptions::default(),
    );
    env.fails_with(
        &restore_user_last(&user, HOST, &["--to", to.to_str().unwrap()]),
        "--overwrite",
    );
    env.ok(&restore_user_last(
        &user,
        HOST,
        &["--to", to.to_str().unwrap(), "--overwrite"],
    ));

    // --what all without an archive part: the archive is skipped, not an error.
    let to2 = env.path("to2");
    let out = env.run(&restore_user_last(
        &user,
        HOST,
        &["--what", "all", "--to", to2.to_str().unwrap()],
    ));
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped archive"));
    env.fails_with(
        &restore_user_last(
            &user,
            HOST,
            &["--what", "archive", "--to", to2.to_str().unwrap()],
        ),
        "mail/archive",
    );

    // Default: a new Restored-<date> folder beside the live mail, without Cyrus' index files.
    let out = env.ok(&restore_user_last(&user, HOST, &[]));
    // The separator and the tool's folder come from the machine's imapd.conf and Cyrus install.
    assert!(
        out.contains("reconstruct")
            && (out.contains(&format!(" -r -f user/{user}"))
                || out.contains(&format!(" -r -f user.{user}"))),
        "{out}"
    );
    assert!(out.contains("rewind"), "{out}");
    let restored: Vec<String> = names(&user_dir(&spool))
        .into_iter()
        .filter(|n| n.starts_with("Restored-"))
        .collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    let r = user_dir(&spool).join(&restored[0]);
    assert!(!r.join("cyrus.index").exists() && !r.join("Sent/cyrus.header").exists());
    let mut expected: Vec<String> = names(&user_dir(&orig))
        .into_iter()
        .filter(|n| !n.starts_with("cyrus."))
        .collect();
    expected.sort();
    assert_eq!(names(&r), expected);
    for n in &expected {
        let o = user_dir(&orig).join(n);
        if o.is_file() {
            assert_eq!(fs::read(r.join(n)).unwrap(), fs::read(&o).unwrap(), "{n}");
        }
    }

    // A dry run in place removes nothing and says what it would do.
    let out = env.run(&restore_user_last(
        &user,
        HOST,
        &["--in-place", "--dry-run"],
    ));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WOULD BE REMOVED"));
    assert!(user_dir(&spool).join(&restored[0]).exists());

    // In place: the live folder is replaced (the Restored- folder and a stray file go, a
    // deleted message comes back), and the rest of the spool is untouched.
    write(&user_dir(&spool).join("stray"), b"x");
    let first_msg = names(&user_dir(&spool))
        .into_iter()
        .find(|n| n.ends_with('.'))
        .unwrap();
    fs::remove_file(user_dir(&spool).join(&first_msg)).unwrap();
    let out = env.run(&restore_user_last(&user, HOST, &["--in-place", "--yes"]));
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("IN PLACE"));
    // What went is named, counted: the stray file, and the earlier restore's folder.
    assert!(
        err.contains("1 file newer than the snapshot")
            && err.contains(&format!("({})", restored[0])),
        "{err}"
    );
    // The only difference left: the mtime of the folder holding the user's (re-created) one.
    let diffs = common::diff_trees_with(&orig, &spool, &exact());
    let parent = format!("{:?}: mtime", Path::new(&domain).join("user"));
    assert!(diffs.iter().all(|d| d.starts_with(&parent)), "{diffs:#?}");
    assert_same_tree_with(
        &user_dir(&orig),
        &user_dir(&spool),
        &CompareOptions::default(),
    );

    // An unknown user gets the close names of that snapshot.
    let typo = format!("{}x@{domain}", &local[..local.len() - 1]);
    env.fails_with(&restore_user_last(&typo, HOST, &[]), &user);
}

#[test]
fn restore_server_reproduces_every_part() {
    let env = Env::new();
    let spool = env.backup_demo_spool("srv/spool");
    let odd = env.path("srv/odd");
    generate_tree_with_every_file_type(&odd).unwrap();
    env.backup(HOST, "misc", &odd);
    let root = env.path("root");
    let r = root.to_str().unwrap();

    let dry = env.ok(&[
        "restore-server",
        "--host",
        HOST,
        "--at",
        "last",
        "--target",
        r,
        "--dry-run",
    ]);
    assert!(dry.contains("cyrus.index") && !root.exists(), "{dry}");

    let out = env.run(&[
        "restore-server",
        "--host",
        HOST,
        "--at",
        "last",
        "--target",
        r,
    ]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("same IP address"), "{err}");
    let under = |p: &Path| root.join(p.strip_prefix("/").unwrap());
    let opts = CompareOptions {
        sparse: true,
        ..exact()
    };
    assert_same_tree_with(&spool, &under(&spool), &opts);
    assert_same_tree_with(&odd, &under(&odd), &opts);

    // Not over non-empty folders, unless asked; then identical files are kept.
    let e = env.fails(&[
        "restore-server",
        "--host",
        HOST,
        "--at",
        "last",
        "--target",
        r,
    ]);
    assert!(e.contains("not empty") && e.contains("srv/spool"), "{e}");
    let again = env.ok(&[
        "restore-server",
        "--host",
        HOST,
        "--at",
        "last",
        "--target",
        r,
        "--overwrite",
    ]);
    assert!(again.contains("already there and identical"), "{again}");
    assert_same_tree_with(&spool, &under(&spool), &opts);

    env.fails_with(
        &[
            "restore-server",
            "--host",
            "10.1.1.1",
            "--at",
            "last",
            "--target",
            r,
        ],
        HOST,
    );
}

#[test]
fn an_interrupted_restore_completes_on_rerun() {
    let env = Env::new();
    let src = env.path("big");
    for i in 0..48 {
        write(&src.join(format!("d{}/f{i:02}", i % 4)), &bytes(3 << 20, i));
    }
    env.backup(HOST, "big", &src);
    let dest = env.path("dest");
    let args = [
        "restore",
        "--host",
        HOST,
        "--part",
        "big",
        "",
        dest.to_str().unwrap(),
    ];
    let mut child = env.cmd(&args).spawn().unwrap();
    // Kill it once it has started writing, well before it can be done.
    let started = std::time::Instant::now();
    loop {
        let written: usize = (0..4)
            .filter_map(|d| fs::read_dir(dest.join(format!("d{d}"))).ok())
            .map(|it| it.count())
            .sum();
        if written >= 3 || started.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();

    // Whatever carries a real name is complete; a half-written file only has a temporary name.
    let mut complete = 0;
    for d in 0..4 {
        let dir = dest.join(format!("d{d}"));
        if !dir.exists() {
            continue;
        }
        for n in names(&dir) {
            if n.starts_with(".bmbackup-partial-") {
                continue;
            }
            assert_eq!(
                fs::read(dir.join(&n)).unwrap(),
                fs::read(src.join(format!("d{d}")).join(&n)).unwrap(),
                "{n}"
            );
            complete += 1;
        }
    }
    eprintln!("killed after {complete} complete files");
    assert!(complete < 48, "the restore finished before it was killed");

    let out = env.ok(&args);
    if complete > 0 {
        assert!(out.contains("already there and identical"), "{out}");
    }
    assert_same_tree_with(&src, &dest, &exact());

    // On a terminal (script(1) gives it one) a progress line counts files and bytes.
    let tty = env.path("tty");
    let line = format!(
        "{BIN} restore --host {HOST} --part big d0 {}",
        tty.display()
    );
    // A progress line is drawn every 250 ms; this restore may take less.
    let out = env
        .command("script")
        .args(["-qec", &line, "/dev/null"])
        .env("BMBACKUP_PROGRESS_MS", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("restoring: ") && text.contains(" files, "),
        "{text}"
    );
}

/// Restore throughput against `cp -a` of the same folder (the closing numbers of the restore
/// issue): `cargo test --release --test restore_cli throughput -- --ignored --nocapture`; set
/// BMBACKUP_BENCH_DIR (e.g. /dev/shm) to work elsewhere than the default temp folder.
#[test]
#[ignore]
fn throughput_against_cp() {
    use std::time::Instant;
    let env = match std::env::var_os("BMBACKUP_BENCH_DIR") {
        Some(d) => Env::new_in(Path::new(&d)),
        None => Env::new(),
    };
    let spool = env.path("spool");
    let s = generate_spool(&spool, &SpoolSpec::quick()).unwrap();
    env.backup(HOST, "mail/imap", &spool);
    // The biggest user's mailbox.
    let (local, domain) = users(&spool)
        .into_iter()
        .max_by_key(|(l, d)| dir_size(&spool.join(d).join("user").join(l)))
        .unwrap();
    let user_dir = spool.join(&domain).join("user").join(&local);
    let user_bytes = dir_size(&user_dir);
    // Each timing starts with no dirty pages, so one copy does not pay for the previous one's
    // writeback; sources and store are in the page cache for both.
    let time = |f: &mut dyn FnMut()| {
        assert!(Command::new("sync").status().unwrap().success());
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let cp = |from: &Path, to: &Path| {
        let ok = Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    for round in 0..3 {
        let base = env.path(&format!("round{round}"));
        fs::create_dir_all(&base).unwrap();
        let cp_user = time(&mut || cp(&user_dir, &base.join("cp-user")));
        let to = base.join("to");
        let user = format!("{local}@{domain}");
        let rs_user = time(&mut || {
            env.ok(&restore_user_last(
                &user,
                HOST,
                &["--to", to.to_str().unwrap()],
            ));
        });
        let cp_all = time(&mut || cp(&spool, &base.join("cp-all")));
        let root = base.join("root");
        let rs_all = time(&mut || {
            env.ok(&[
                "restore-server",
                "--host",
                HOST,
                "--at",
                "last",
                "--target",
                root.to_str().unwrap(),
            ]);
        });
        println!(
            "round {round}: user {local}@{domain} ({:.1} MiB): cp -a {cp_user:.3} s, restore-user {rs_user:.3} s ({:.0} MiB/s, {:.2}x cp); \
             server ({} files, {:.1} MiB): cp -a {cp_all:.3} s, restore-server {rs_all:.3} s ({:.0} MiB/s, {:.2}x cp)",
            user_bytes as f64 / 1048576.0,
            user_bytes as f64 / 1048576.0 / rs_user,
            rs_user / cp_user,
            s.files,
            s.bytes as f64 / 1048576.0,
            s.bytes as f64 / 1048576.0 / rs_all,
            rs_all / cp_all,
        );
        fs::remove_dir_all(&base).unwrap();
    }
}

#[test]
fn overwrite_compares_content_not_size_and_mtime() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a/mail.eml"), &bytes(300_000, 7));
    write(&src.join("a/other.eml"), &bytes(5_000, 8));
    env.backup(HOST, "p", &src);
    let dest = env.path("dest");
    let d = dest.to_str().unwrap();
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "--host", HOST, "--part", "p", "", d];
        args.extend_from_slice(extra);
        env.ok(&args)
    };
    restore(&[]);
    // Rot one byte in the middle, keeping size and mtime; change another's mode only.
    let rotten = dest.join("a/mail.eml");
    let md = fs::metadata(&rotten).unwrap();
    let mut bytes = fs::read(&rotten).unwrap();
    bytes[150_000] ^= 0x20;
    fs::write(&rotten, &bytes).unwrap();
    set_mtime(&rotten, md.mtime(), md.mtime_nsec());
    let chmodded = dest.join("a/other.eml");
    fs::set_permissions(
        &chmodded,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    // Without --overwrite: skipped as identical, as before (size and mtime match).
    let out = restore(&[]);
    assert!(out.contains("2 already there and identical"), "{out}");
    assert_eq!(fs::read(&rotten).unwrap(), bytes);

    // With --overwrite: the content is compared with the snapshot's chunk ids and rewritten.
    let out = restore(&["--overwrite"]);
    assert!(out.contains("restored 2 files"), "{out}");
    assert_same_tree_with(&src, &dest, &exact());
    // And a third run finds everything identical by content.
    let out = restore(&["--overwrite"]);
    assert!(
        out.contains("restored 0 files") && out.contains("2 already there"),
        "{out}"
    );
}

#[test]
fn a_rerun_over_a_finished_or_interrupted_restore_exits_0_and_matches() {
    let env = Env::new();
    let src = env.path("src");
    generate_tree_with_every_file_type(&src).unwrap();
    env.backup(HOST, "every", &src);
    let dest = env.path("dest");
    let args = [
        "restore",
        "--host",
        HOST,
        "--part",
        "every",
        "",
        dest.to_str().unwrap(),
    ];
    env.ok(&args);
    // DEST stands for the part's folder: its own mode, owner and mtime are the snapshot's.
    assert_same_tree_with(&src, &dest, &CompareOptions::default());

    // A run killed midway: some files gone, a half-written one under its temporary name.
    fs::remove_file(dest.join("regular.txt")).unwrap();
    let partial = format!(
        ".bmbackup-partial-{}",
        &blake3::hash(b"regular.txt").to_hex()[..16]
    );
    fs::write(dest.join(&partial), b"half").unwrap();
    // The rerun of the interrupted restore (symlinks, fifos, devices already there).
    let out = env.ok(&args);
    assert!(out.contains("already there and identical"), "{out}");
    assert_same_tree_with(&src, &dest, &CompareOptions::default());
    assert_eq!(common::rsync_itemize(&src, &dest), Vec::<String>::new());
}

#[test]
fn restore_user_killed_midway_is_resumed_by_the_same_command() {
    let env = Env::new();
    let src = env.path("spool");
    let mailbox = src.join("example.org/user/kim");
    for i in 1..=40u64 {
        write(&mailbox.join(format!("{i}.")), &bytes(3 << 20, i));
    }
    write(&mailbox.join("Sent/1."), &bytes(1000, 99));
    env.backup(HOST, "mail/imap", &src);
    let args = restore_user_last("kim@example.org", HOST, &[]);
    let mut child = env.cmd(&args).spawn().unwrap();
    // SIGKILL once it has written a few messages, well before the end.
    let started = std::time::Instant::now();
    let dest = |root: &Path| -> Option<std::path::PathBuf> {
        fs::read_dir(root.join("example.org/user/kim"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("Restored-"))
            })
    };
    loop {
        let written = dest(&src)
            .and_then(|d| fs::read_dir(d).ok())
            .map_or(0, |it| it.count());
        if written >= 3 || started.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let restored = dest(&src).expect("the killed run made no Restored- folder");
    let complete = names(&restored).iter().filter(|n| n.ends_with('.')).count();
    eprintln!("killed after {complete} complete messages");
    assert!(complete < 40, "the restore finished before it was killed");

    // The same command again: exit 0, and the folder as an uninterrupted run makes it.
    env.ok(&args);
    let mut want = names(&mailbox);
    want.retain(|n| !n.starts_with("Restored-"));
    want.sort();
    let mut got = names(&restored);
    got.sort();
    assert_eq!(got, want);
    for n in want.iter().filter(|n| n.ends_with('.')) {
        assert_eq!(
            fs::read(restored.join(n)).unwrap(),
            fs::read(mailbox.join(n)).unwrap(),
            "{n}"
        );
    }
    // Once finished, a third run is refused as before (the folder is an earlier restore).
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}
