//! The console under the attacks an outside trial made on it, one test each: a flood of
//! half-open connections, a damaged file downloaded, a command-line run beside the console and
//! the mount (the catalog's WAL), parallel wrong logins, and "back up now" against the nightly
//! run's settings. (The session's scope — a header, never a cookie — is in console_http.rs.)

mod common;
use bmbackup::gen::{generate_spool, SpoolSpec};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A store with one backup of a generated spool, and the console on it.
fn spool_env() -> Env {
    let env = Env::new();
    let spool = env.path("spool");
    generate_spool(&spool, &SpoolSpec::demo()).unwrap();
    env.write_config(&format!(
        "[parts.\"mail/imap\"]\npath = \"{}\"\n",
        spool.display()
    ));
    env.ok(&["backup"]);
    env
}

/// Raises this test process's open-file limit to its hard limit (the flood needs 10,000).
fn raise_own_file_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
        l.rlim_cur = l.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &l), 0);
        l.rlim_max
    }
}

#[test]
fn ten_thousand_half_open_connections_do_not_take_it_down() {
    let env = spool_env();
    let hard = raise_own_file_limit();
    let flood = 10_000usize;
    assert!(
        hard > flood as u64 + 200,
        "the flood needs more than {flood} descriptors (hard limit {hard})"
    );
    // The console gets a file limit below the flood, so only its own bounds can save it.
    let c = env.console_with_file_limit(Some(2048));
    let token = c.login();
    let started = Instant::now();
    let mut held = Vec::with_capacity(flood);
    for i in 0..flood {
        match TcpStream::connect(("127.0.0.1", c.port)) {
            Ok(mut s) => {
                // A request that never ends.
                let _ = s.write_all(b"GET /api/overview HTTP/1.1\r\nHost: x\r\nX-Slow: ");
                held.push(s);
            }
            Err(e) => panic!("connection {i} of the flood refused: {e}"),
        }
    }
    eprintln!(
        "{} half-open connections in {:.1} s",
        held.len(),
        started.elapsed().as_secs_f64()
    );
    // With all of them still open, a real request is answered at once.
    let t = Instant::now();
    let a = c.get(&token, "/api/overview");
    let took = t.elapsed();
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    eprintln!("a request beside the flood answered in {took:?}");
    // The oldest of the flood were closed to make room.
    held[0]
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 16];
    assert!(matches!(held[0].read(&mut b), Ok(0) | Err(_)));
    drop(held);
    // And after the flood, still up.
    assert_eq!(c.get(&token, "/api/overview").status, 200);
    let mut c = c;
    assert!(c.child.try_wait().unwrap().is_none(), "the console exited");
}

/// `curl -fsS -o OUT URL`: its exit status.
fn curl(url: &str, out: &Path) -> std::process::ExitStatus {
    Command::new("curl")
        .args(["-fsS", "--max-time", "60", "-o"])
        .arg(out)
        .arg(url)
        .status()
        .expect("curl is missing: apt-get install curl")
}

#[test]
fn a_damaged_file_or_folder_never_downloads_as_complete() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("folder")).unwrap();
    let data = bytes(6 << 20, 1);
    std::fs::write(src.join("folder/big"), &data).unwrap();
    env.write_config(&format!(
        "[parts.\"files/data\"]\npath = \"{}\"\n",
        src.display()
    ));
    env.ok(&["backup"]);
    let snap = env.snapshots().pop().unwrap();
    let id = snap["id"].as_str().unwrap();
    let c = env.console();
    let token = c.login();
    // Undamaged first: curl gets every byte, with a Content-Length.
    let ok = env.path("ok");
    let t = c.post(
        &token,
        &format!("/api/download/{id}/folder/big"),
        &serde_json::json!({}),
    );
    assert!(curl(
        &format!("{}{}", c.url(), &t.json()["url"].as_str().unwrap()[1..]),
        &ok
    )
    .success());
    assert_eq!(std::fs::read(&ok).unwrap(), data);
    // One flipped byte in the middle of the pack that holds the file.
    let pack = env
        .pack_files()
        .into_iter()
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    flip(&pack, pack.metadata().unwrap().len() / 2);
    for target in ["folder/big", "folder"] {
        let t = c.post(
            &token,
            &format!("/api/download/{id}/{target}"),
            &serde_json::json!({}),
        );
        assert_eq!(t.status, 200, "{}", t.text());
        let url = format!("{}{}", c.url(), &t.json()["url"].as_str().unwrap()[1..]);
        let out = env.path("damaged");
        let st = curl(&url, &out);
        assert!(
            !st.success(),
            "{target}: curl took a damaged download as complete"
        );
        eprintln!("{target}: curl {st}");
        // The page is told.
        let ticket = t.json()["ticket"].as_str().unwrap().to_string();
        let mut state = serde_json::Value::Null;
        for _ in 0..50 {
            state = c.get(&token, &format!("/api/downloads/{ticket}")).json();
            if state["state"] == "failed" {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(state["state"], "failed", "{target}: {state}");
        assert!(
            state["error"].as_str().unwrap().contains("damage")
                || state["error"].as_str().unwrap().contains("hash"),
            "{state}"
        );
    }
    let mut c = c;
    assert!(c.child.try_wait().unwrap().is_none());
}

/// The catalog's WAL and shared-memory files beside the catalog.
fn wal_files(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("catalog-") && (n.ends_with("-wal") || n.ends_with("-shm")))
        .collect();
    v.sort();
    v
}

#[test]
fn a_command_beside_the_console_and_the_mount_keeps_the_wal() {
    let env = spool_env();
    let c = env.console();
    let token = c.login();
    // Several requests, so several workers have the catalog open.
    for _ in 0..8 {
        assert_eq!(c.get(&token, "/api/snapshots").status, 200);
    }
    let cache = env.cache();
    let before = wal_files(&cache);
    assert_eq!(before.len(), 2, "{before:?}");
    let id = env.snapshots()[0]["id"].as_str().unwrap().to_string();
    for round in 0..5 {
        // A download opens a repository of its own beside the workers' (as a backup or
        // restore job does).
        assert_eq!(c.download(&token, &id).status, 200);
        env.ok(&["snapshots"]);
        assert_eq!(wal_files(&cache), before, "round {round}: the WAL went");
        assert_eq!(c.get(&token, "/api/snapshots").status, 200);
    }
    // And with the mount too (its connection alone would keep the WAL: so the console first).
    let _mnt = env.mount(bmbackup::fuse::MountOptions::default());
    // A new snapshot from the command line is seen by the console and the mount.
    let n = c
        .get(&token, "/api/snapshots")
        .json()
        .as_array()
        .unwrap()
        .len();
    std::fs::write(env.path("spool/new-file"), "x").unwrap();
    env.ok(&["backup"]);
    assert_eq!(wal_files(&cache), before);
    let a = c.get(&token, "/api/snapshots");
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json().as_array().unwrap().len(), n + 1);
    // The mount looks for new snapshots by itself, every few seconds.
    let part = env.mnt().join("10.0.0.5/mail/imap");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut dates = 0;
    while Instant::now() < deadline {
        dates = std::fs::read_dir(&part).unwrap().count();
        if dates >= 3 {
            break; // two dates and `last`
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(dates >= 3, "the mount shows {dates} entries");
    assert_eq!(wal_files(&cache), before);
}

#[test]
fn parallel_wrong_logins_are_checked_one_at_a_time() {
    let env = spool_env();
    let c = env.console();
    let wrong = serde_json::json!({ "password": "guess" }).to_string();
    let port = c.port;
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let wrong = wrong.clone();
                let c = &c;
                let _ = port;
                s.spawn(move || {
                    c.request(
                        "POST",
                        "/api/login",
                        &[("Content-Type", "application/json")],
                        &wrong,
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    eprintln!("100 parallel wrong logins: {checked} checked, {refused} told to wait");
    assert_eq!(checked, 1, "{statuses:?}");
    assert_eq!(refused, 99, "{statuses:?}");
}

/// Total bytes of a store's packs.
fn pack_bytes(env: &Env) -> u64 {
    env.pack_files()
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum()
}

#[test]
fn back_up_now_is_the_nightly_backup() {
    // The same source and the same config (no compression level, one thread): one store
    // backed up by the command line, the other by the console's button.
    let src = Env::new();
    let spool = src.path("spool");
    generate_spool(&spool, &SpoolSpec::demo()).unwrap();
    let config = format!(
        "threads = 1\n[parts.\"mail/imap\"]\npath = \"{}\"\n",
        spool.display()
    );
    let cli = Env::new();
    cli.write_config(&config);
    cli.ok(&["backup"]);
    let web = Env::new();
    web.write_config(&config);
    let c = web.console();
    let token = c.login();
    let job = c.post(&token, "/api/backup/run", &serde_json::json!({}));
    assert_eq!(job.status, 200, "{}", job.text());
    let id = job.json()["job"].as_u64().unwrap();
    let mut j = serde_json::Value::Null;
    for _ in 0..600 {
        j = c.get(&token, &format!("/api/jobs/{id}")).json();
        if j["running"] == false {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(j["outcome"], "complete", "{j}");
    let (a, b) = (cli.snapshots(), web.snapshots());
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 1);
    assert_eq!(a[0]["files"], b[0]["files"]);
    // Same compression, same chunks: the same bytes in the packs.
    assert_eq!(pack_bytes(&cli), pack_bytes(&web));
}
