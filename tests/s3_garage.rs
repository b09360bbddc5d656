//! The store on S3-compatible object storage, end to end against a real Garage server on
//! 127.0.0.1 (one per test, see `common/garage.rs`), with the same round trips as the local
//! store: every file type through backup, restore and the mount; every command; kill -9 during
//! backup and prune; two hosts backing up into one bucket at once; the server stopped and
//! restarted in the middle of a backup. The secret key never shows in output or logs.

mod common;

use common::{
    assert_same_tree_with, bytes, rsync_itemize, show, CompareOptions, Env, Garage, MountGuard,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn every_type_source(env: &Env) -> PathBuf {
    let src = env.path("src");
    bmbackup::gen::generate_tree_with_every_file_type(&src).unwrap();
    src
}

/// 24 files of 300 KB of incompressible bytes in three folders: a backup of some seconds.
fn bulky_source(env: &Env, name: &str, seed: u64) -> PathBuf {
    let src = env.path(name);
    for i in 0..24u64 {
        let d = src.join(format!("d{}", i % 3));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("f{i}")), bytes(300_000, seed * 100 + i)).unwrap();
    }
    src
}

fn snapshot_ids(env: &Env) -> Vec<String> {
    env.snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn copy(src: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn every_file_type_round_trips_through_backup_restore_and_the_mount() {
    let g = Garage::start();
    let env = Env::new_s3(&g);
    let src = every_type_source(&env);
    let part = format!("mail/imap={}", src.display());
    let t = Instant::now();
    env.ok(&["backup", "--host", "10.0.0.5", "--part", &part]);
    eprintln!("backup to S3: {:?}", t.elapsed());
    let opts = CompareOptions {
        sparse: true,
        ..CompareOptions::default()
    };
    let out = env.path("restored");
    env.ok(&["restore", "10.0.0.5/mail/imap/last", out.to_str().unwrap()]);
    assert_same_tree_with(&src, &out, &opts);

    // The second, unchanged backup reads nothing.
    let again = env.ok(&["backup", "--host", "10.0.0.5", "--part", &part]);
    assert!(again.contains("read 0 B"), "{again}");

    // The mount (a daemon, as admins run it) shows exactly the source.
    let mnt = env.mnt();
    let _guard = MountGuard::new(&mnt);
    let store = env.store();
    let t = Instant::now();
    env.ok(&["mount", store.to_str().unwrap(), mnt.to_str().unwrap()]);
    let last = mnt.join("10.0.0.5/mail/imap/last");
    let changes = rsync_itemize(&src, &last);
    assert!(
        changes.is_empty(),
        "mount differs from the source: {changes:#?}"
    );
    eprintln!("mount + rsync -c compare: {:?}", t.elapsed());
}

#[test]
fn every_command_works_on_a_store_on_s3() {
    let g = Garage::start();
    let env = Env::new_s3(&g);
    let src = bulky_source(&env, "src", 1);
    let first = env.backup("h1", "mail/imap", &src);
    let first_id = first["id"].as_str().unwrap().to_string();
    let seen_first = env.path("seen-first");
    copy(&src, &seen_first);
    fs::write(src.join("d0/new"), b"a new message").unwrap();
    fs::remove_file(src.join("d1/f1")).unwrap();
    let second = env.backup("h1", "mail/imap", &src);
    let second_id = second["id"].as_str().unwrap().to_string();

    let ls = env.ok(&["ls", "h1/mail/imap/last:d0"]);
    assert!(ls.contains("new"), "{ls}");
    let diff = env.ok(&["diff", &first_id[..12], &second_id[..12]]);
    assert!(diff.contains("d0/new") && diff.contains("d1/f1"), "{diff}");
    let hist = env.ok(&["history", "--host", "h1", "--part", "mail/imap", "d0/new"]);
    assert!(!hist.trim().is_empty(), "{hist}");
    env.ok(&["stats"]);
    env.assert_check_passes();

    // forget + prune free the first snapshot's own data; the second still restores.
    env.ok(&["forget", "--yes", &first_id[..12]]);
    env.ok(&["prune", "--repack-below", "90"]);
    env.assert_check_passes();
    env.restore_matches(&second_id, &src);
    assert!(!snapshot_ids(&env).contains(&first_id));
    // repair finds nothing to do on a healthy store.
    env.ok(&["repair"]);
    env.assert_check_passes();
    let _ = seen_first;
}

#[test]
fn credentials_never_show_in_output_or_logs() {
    let g = Garage::start();
    let env = Env::new_s3(&g);
    let src = bulky_source(&env, "src", 2);
    let part = format!("mail/imap={}", src.display());
    let mut outputs = Vec::new();
    let mut run = |env: &Env, args: &[&str]| {
        let out = env.cmd(args).env("RUST_LOG", "trace").output().unwrap();
        outputs.push(show(&out));
        out
    };
    assert!(run(&env, &["backup", "--host", "h", "--part", &part])
        .status
        .success());
    run(&env, &["check", "--read-data"]);
    // A wrong secret: refused, and the error says what to fix without showing either secret.
    let wrong = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let bad = Env::uninit_at(
        env.store().to_str().unwrap(),
        &g.config_table().replace(&g.secret_key, wrong),
    );
    let out = run(&bad, &["snapshots"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("403") && err.contains("secret key"), "{err}");
    for o in &outputs {
        assert!(!o.contains(&g.secret_key), "the secret key leaked: {o}");
        // A presigned URL is a credential too, for as long as it is valid.
        assert!(!o.contains("X-Amz-Signature"), "a signed URL leaked: {o}");
        // Nor the signature of a request (replayable, same body, for a few minutes).
        assert!(!o.contains("Signature="), "a request signature leaked: {o}");
        assert!(!o.contains(wrong), "the wrong secret leaked: {o}");
    }
    // From the environment instead of the file: the same.
    let from_env = Env::uninit_at(
        env.store().to_str().unwrap(),
        &format!(
            "[s3]\nendpoint = \"{}\"\nregion = \"garage\"\n",
            g.endpoint()
        ),
    );
    let out = from_env
        .cmd(&["snapshots"])
        .env("AWS_ACCESS_KEY_ID", &g.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &g.secret_key)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(!show(&out).contains(&g.secret_key));
    let none = from_env.fails(&["snapshots"]);
    assert!(none.contains("AWS_SECRET_ACCESS_KEY"), "{none}");
}

#[test]
fn kill_9_during_backup_and_prune_loses_nothing() {
    let g = Garage::start();
    let env = Env::new_s3(&g);
    let src = bulky_source(&env, "src", 3);
    let part = format!("mail/imap={}", src.display());
    let backup = ["backup", "--host", "h", "--part", &part, "--threads", "2"];
    let t = Instant::now();
    env.ok(&backup);
    let took = t.elapsed();
    eprintln!("first backup: {took:?}");
    let mut kept: Vec<(String, PathBuf)> = Vec::new();
    let seen = |env: &Env, n: usize| {
        let copy_to = env.path(&format!("seen-{n}"));
        copy(&src, &copy_to);
        copy_to
    };
    kept.push((snapshot_ids(&env).pop().unwrap(), seen(&env, 0)));
    for round in 1..=3u64 {
        for i in 0..4 {
            fs::write(
                src.join(format!("d{}/f{}", i % 3, round * 5 + i)),
                bytes(300_000, 1000 * round + i),
            )
            .unwrap();
        }
        let before = snapshot_ids(&env);
        env.kill_after(&backup, took.mul_f64(0.25 * round as f64));
        env.assert_check_passes();
        let after = snapshot_ids(&env);
        for (id, copy_of) in &kept {
            assert!(after.contains(id), "snapshot {id} vanished");
            env.restore_matches(id, copy_of);
        }
        if after.len() > before.len() {
            eprintln!("the killed backup had committed");
        }
        env.ok(&backup);
        kept.push((
            snapshot_ids(&env).pop().unwrap(),
            seen(&env, round as usize),
        ));
    }
    for round in 0..3 {
        let (old, _) = kept.remove(0);
        env.ok(&["forget", "--yes", &old[..12]]);
        env.kill_after(
            &["prune", "--repack-below", "90"],
            Duration::from_millis(150 + 250 * round),
        );
        env.assert_check_passes();
        for (id, copy_of) in &kept {
            env.restore_matches(id, copy_of);
        }
    }
    env.ok(&["prune"]);
    env.ok(&["repair"]);
    env.assert_check_passes();
    for (id, copy_of) in &kept {
        env.restore_matches(id, copy_of);
    }
}

#[test]
fn two_hosts_back_up_into_one_bucket_at_once() {
    let g = Garage::start();
    let a = Env::new_s3(&g);
    let location = a.store();
    let b = Env::on_s3(&g, location.to_str().unwrap(), false);
    let src_a = bulky_source(&a, "src", 4);
    let src_b = bulky_source(&b, "src", 5);
    let part_a = format!("mail/imap={}", src_a.display());
    let part_b = format!("mail/imap={}", src_b.display());
    for round in 0..2 {
        if round == 1 {
            fs::write(src_a.join("d0/more"), bytes(100_000, 77)).unwrap();
            fs::write(src_b.join("d0/more"), bytes(100_000, 78)).unwrap();
        }
        let ca = a
            .cmd(&["backup", "--host", "mx-a", "--part", &part_a])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let cb = b
            .cmd(&["backup", "--host", "mx-b", "--part", &part_b])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let oa = ca.wait_with_output().unwrap();
        let ob = cb.wait_with_output().unwrap();
        assert!(oa.status.success(), "host a: {}", show(&oa));
        assert!(ob.status.success(), "host b: {}", show(&ob));
    }
    // Each host sees both hosts' snapshots; every one is whole, and each host restores the
    // other's.
    assert_eq!(a.snapshots().len(), 4);
    assert_eq!(b.snapshots().len(), 4);
    a.assert_check_passes();
    b.restore_matches("mx-a/mail/imap/last", &src_a);
    a.restore_matches("mx-b/mail/imap/last", &src_b);
}

/// Bytes `pid` has read so far (its `rchar`).
fn bytes_read(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn server_stopped_and_restarted_during_a_backup() {
    let mut g = Garage::start();
    let env = Env::new_s3(&g);
    let src = bulky_source(&env, "src", 6);
    let part = format!("mail/imap={}", src.display());
    let backup = ["backup", "--host", "h", "--part", &part, "--threads", "2"];
    env.ok(&backup);
    let first = snapshot_ids(&env).pop().unwrap();
    let seen = env.path("seen");
    copy(&src, &seen);
    // 48 MB of new data: more than one 32 MiB pack, so uploads come after the outage starts.
    for i in 0..48u64 {
        fs::write(
            src.join(format!("d{}/g{i}", i % 3)),
            bytes(1 << 20, 600 + i),
        )
        .unwrap();
    }
    let mut child = env
        .cmd(&backup)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The server goes away once the backup is reading the new files, before its first upload.
    let t = Instant::now();
    while bytes_read(child.id()) < 8 << 20 {
        assert!(child.try_wait().unwrap().is_none(), "backup ended early");
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "backup does not read"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    g.stop();
    let stopped = Instant::now();
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("retrying")) {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => log.push(l),
            Err(e) => panic!("no retry while the server is down ({e}): {log:#?}"),
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    g.run();
    eprintln!("server down for {:?}", stopped.elapsed());
    let out = child.wait_with_output().unwrap();
    reader.join().unwrap();
    log.extend(rx.try_iter());
    let text = format!("{}\n{}", show(&out), log.join("\n"));
    eprintln!("backup across the restart: {text}");
    // Retried through the outage (the retry budget, ~30 s, is far more than this outage).
    assert!(out.status.success(), "{text}");
    env.assert_check_passes();
    env.restore_matches(&first, &seen);
    let last = snapshot_ids(&env).pop().unwrap();
    env.restore_matches(&last, &src);
}

#[test]
fn a_server_that_stays_down_fails_the_backup_cleanly() {
    let mut g = Garage::start();
    let env = Env::new_s3(&g);
    let src = bulky_source(&env, "src", 7);
    let part = format!("mail/imap={}", src.display());
    env.ok(&["backup", "--host", "h", "--part", &part]);
    fs::write(src.join("d0/late"), bytes(300_000, 9)).unwrap();
    g.stop();
    let t = Instant::now();
    let out = env.run(&["backup", "--host", "h", "--part", &part]);
    let text = show(&out);
    eprintln!("backup with the server down ({:?}): {text}", t.elapsed());
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("gave up after"), "{text}");
    g.run();
    env.assert_check_passes();
    env.ok(&["backup", "--host", "h", "--part", &part]);
    let last = snapshot_ids(&env).pop().unwrap();
    env.restore_matches(&last, &src);
}

/// The README's configuration example, with this server's endpoint and key put in, is what
/// an admin runs: `init` (store from the config), `backup`, `snapshots`.
#[test]
fn the_readme_config_example_works() {
    let g = Garage::start();
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("### A store on S3-compatible").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let location = g.new_location();
    let config = example
        .replace("s3://bmbackup/bluemind", &location)
        .replace("http://127.0.0.1:3900", &g.endpoint())
        .replace("\"GK…\"", &format!("{:?}", g.access_key))
        .replace("\"…\"", &format!("{:?}", g.secret_key));
    assert!(!config.contains('…'), "{config}");
    let env = Env::uninit_at(&location, "");
    fs::write(env.config(), &config).unwrap();
    let src = bulky_source(&env, "src", 8);
    let part = format!("mail/imap={}", src.display());
    let bare = |args: &[&str]| {
        let out = env.cmd(args).env_remove("BMBACKUP_STORE").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    bare(&["init", &location]);
    bare(&["backup", "--host", "h", "--part", &part]);
    assert!(bare(&["snapshots"]).contains("mail/imap"));
}

/// Listings follow continuation tokens: a folder of more keys than one page holds is listed
/// whole, flat (`list`, with sub-folders) and deep (`list_deep`), here 4 keys per page. Range
/// reads return exactly the bytes asked for, through the backend's windows too.
#[test]
fn listings_span_pages_and_ranges_are_exact() {
    use bmbackup::store::backend::Backend;
    use bmbackup::store::s3::{configure, S3Backend, S3Config};
    let g = Garage::start();
    configure(Some(S3Config {
        endpoint: Some(g.endpoint()),
        region: Some("garage".into()),
        path_style: Some(true),
        access_key_id: Some(g.access_key.clone()),
        secret_access_key: Some(g.secret_key.clone()),
        ..S3Config::default()
    }));
    let location = g.new_location();
    let b = S3Backend::open(Path::new(&location))
        .unwrap()
        .with_page_size(4);
    let mut want_flat = Vec::new();
    let mut want_deep = Vec::new();
    for i in 0..11 {
        b.write_atomic(&format!("packs/o{i:02}"), b"x").unwrap();
        want_flat.push(format!("o{i:02}"));
        want_deep.push(format!("o{i:02}"));
    }
    for d in 0..6 {
        b.write_atomic(&format!("packs/d{d}/p"), b"y").unwrap();
        want_flat.push(format!("d{d}"));
        want_deep.push(format!("d{d}/p"));
    }
    want_flat.sort();
    want_deep.sort();
    assert_eq!(b.list("packs").unwrap(), want_flat);
    assert_eq!(b.list_deep("packs").unwrap(), want_deep);
    assert_eq!(b.list("nothing-here").unwrap(), Vec::<String>::new());
    // Ranges, sizes, deletes as the store uses them.
    b.write_atomic("packs/r", b"0123456789").unwrap();
    assert_eq!(b.read_range("packs/r", 3, 4).unwrap(), b"3456");
    assert_eq!(b.size("packs/r").unwrap(), 10);
    let short = b.read_range("packs/r", 8, 4).unwrap_err();
    assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
    b.delete("packs/r").unwrap();
    let gone = b.delete("packs/r").unwrap_err();
    assert_eq!(gone.kind(), std::io::ErrorKind::NotFound, "{gone}");
    assert_eq!(
        b.read_all("packs/r").unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    // Small reads are served from 1 MiB windows: across a window's edge, up to the object's
    // end, past it; large reads as asked.
    let w = bmbackup::store::s3::WINDOW as usize;
    let big = bytes(2 * w + 1000, 11);
    b.write_atomic("packs/big", &big).unwrap();
    for (off, len) in [
        (0, 10),
        (w - 5, 10),
        (2 * w - 100, 300),
        (2 * w + 990, 10),
        (10, w),
        (w - 7, 2 * w / 3),
    ] {
        assert_eq!(
            b.read_range("packs/big", off as u64, len).unwrap(),
            &big[off..off + len],
            "{off}+{len}"
        );
    }
    for (off, len) in [(2 * w + 995, 10), (3 * w, 1), (2 * w, w)] {
        let e = b.read_range("packs/big", off as u64, len).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{off}+{len}");
    }
    // A deleted object is not served from kept windows.
    b.delete("packs/big").unwrap();
    let e = b.read_range("packs/big", 0, 10).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
}

/// Three nodes, replication 3: with one node down a backup and a restore go through; with two
/// down the backup fails within `retry_seconds`, with the cause the server gave (no quorum),
/// and once they are back the next backup succeeds and the store checks clean.
#[test]
fn a_cluster_rides_out_one_node_down_and_names_the_lost_quorum() {
    let mut c = common::GarageCluster::start(3);
    let location = c.new_location();
    let env = Env::uninit_at(&location, &c.config_table(8));
    env.ok(&["init", &location]);
    let src = bulky_source(&env, "src", 20);
    let part = format!("mail/imap={}", src.display());
    env.ok(&["backup", "--host", "h", "--part", &part]);
    c.stop(2);
    fs::write(src.join("d0/one-down"), bytes(300_000, 21)).unwrap();
    env.ok(&["backup", "--host", "h", "--part", &part]);
    env.restore_matches("h/mail/imap/last", &src);
    c.stop(1);
    fs::write(src.join("d0/two-down"), bytes(300_000, 22)).unwrap();
    let t = Instant::now();
    let err = env.fails(&["backup", "--host", "h", "--part", &part]);
    eprintln!("two nodes down ({:?}): {err}", t.elapsed());
    assert!(
        err.contains("Could not reach quorum") && err.contains("gave up after"),
        "{err}"
    );
    c.run(1);
    c.run(2);
    // The nodes find each other again within the retry budget.
    env.ok(&["backup", "--host", "h", "--part", &part]);
    env.assert_check_passes();
    env.restore_matches("h/mail/imap/last", &src);
}
