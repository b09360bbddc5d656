//! A restore as root into a folder that another user owns, while that user's program keeps
//! swapping the restore's temporary names (`.bmbackup-partial-*`) and its folders for symlinks to
//! a decoy tree outside DEST (a root-owned copy of a shell, a folder): the attack of issue 12,
//! run against the real binary for `restore`, `restore-user --to` and `restore-server --target`.
//! Nothing outside DEST may change (a listing of the decoy tree with modes, owners and content
//! hashes, before and after), and every file that did not come back right must be reported.
//! 100 rounds by default, 500 with BMBACKUP_LONG=1.

mod common;

use common::{bytes, is_root, long, write, Env, HOST};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The uid that owns the source files and the folder restored into: the "attacker".
const OTHER: u32 = 4242;

fn owned_setuid(path: &Path, data: &[u8], mode: u32) {
    write(path, data);
    chown(path, Some(OTHER), Some(OTHER)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// jdoe's mailbox: two large setuid files owned by another uid, and a deep tree of small ones.
fn make_source(user: &Path) {
    owned_setuid(&user.join("big1"), &bytes(16 << 20, 1), 0o4755);
    owned_setuid(&user.join("big2"), &bytes(8 << 20, 2), 0o6755);
    let mut d = user.join("deep");
    for level in 0..14 {
        d = d.join(format!("d{level}"));
        for i in 0..3 {
            owned_setuid(
                &d.join(format!("f{i}")),
                &bytes(3000 + i * 1000, level * 10 + i as u64),
                0o4750,
            );
        }
        symlink("f0", d.join("link")).unwrap();
        fs::hard_link(d.join("f1"), d.join("f1-hardlink")).unwrap();
    }
}

/// Every name under `root` with kind, mode, owner, size, mtime and content hash or target.
fn listing(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let md = fs::symlink_metadata(&p).unwrap();
        let what = if md.file_type().is_symlink() {
            format!("-> {:?}", fs::read_link(&p).unwrap())
        } else if md.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
            "dir".to_string()
        } else {
            blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string()
        };
        out.insert(format!(
            "{} {:o} {}:{} {} {}.{} {what}",
            p.display(),
            md.mode(),
            md.uid(),
            md.gid(),
            md.len(),
            md.mtime(),
            md.mtime_nsec()
        ));
    }
    out
}

#[derive(Default)]
struct Attacks {
    temps: AtomicU64,
    dirs: Mutex<Vec<PathBuf>>,
}

/// Swaps, again and again until `stop`, every temporary name under `root` and now and then a
/// folder for a symlink into the decoy tree, as the owner of `root` can.
fn attack(root: &Path, decoy: &Path, stop: &AtomicBool, log: &Attacks) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut todo = vec![root.to_path_buf()];
        while let Some(dir) = todo.pop() {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                n += 1;
                let (path, name) = (e.path(), e.file_name());
                let Ok(ft) = e.file_type() else { continue };
                let plant = dir.join(format!(".atk-{n}"));
                let target = if n % 2 == 0 {
                    decoy.join("dash")
                } else {
                    decoy.join("dir")
                };
                if name.to_string_lossy().starts_with(".bmbackup-partial-") {
                    if symlink(&target, &plant).is_ok() && fs::rename(&plant, &path).is_ok() {
                        log.temps.fetch_add(1, Ordering::Relaxed);
                    }
                } else if ft.is_dir() && !name.to_string_lossy().starts_with(".moved") {
                    if n % 23 == 0 && fs::rename(&path, dir.join(format!(".moved-{n}"))).is_ok() {
                        log.dirs.lock().unwrap().push(path.clone());
                        let _ = symlink(&target, &path);
                    } else {
                        todo.push(path);
                    }
                }
            }
        }
    }
}

/// Paths the restore reported as not restored (the lines under "N file(s) not restored:").
fn reported(stderr: &str) -> Vec<(PathBuf, String)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| l.split_once(": "))
        .map(|(p, e)| (PathBuf::from(p), e.to_string()))
        .collect()
}

/// Every file of `src` must be in `dest` with its content, mode and owner, unless it or a
/// folder above it was reported, or the attacker swapped a folder above it.
fn check_round(src: &Path, dest: &Path, failed: &[(PathBuf, String)], swapped: &[PathBuf]) {
    let excused = |p: &Path| {
        p.ancestors()
            .any(|a| failed.iter().any(|(f, _)| f == a) || swapped.iter().any(|s| s == a))
    };
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for e in fs::read_dir(src.join(&rel)).unwrap() {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let (a, b) = (src.join(&rel), dest.join(&rel));
            let ma = fs::symlink_metadata(&a).unwrap();
            if ma.is_dir() {
                todo.push(rel);
                continue;
            }
            let right = fs::symlink_metadata(&b).is_ok_and(|mb| {
                mb.file_type() == ma.file_type()
                    && (mb.mode(), mb.uid(), mb.gid()) == (ma.mode(), ma.uid(), ma.gid())
                    && if ma.file_type().is_symlink() {
                        fs::read_link(&a).unwrap() == fs::read_link(&b).unwrap()
                    } else {
                        fs::read(&a).unwrap() == fs::read(&b).unwrap()
                    }
            });
            assert!(
                right || excused(&b),
                "{} is wrong and not reported; reported: {failed:?}",
                b.display()
            );
        }
    }
}

#[test]
fn a_user_swapping_names_for_symlinks_cannot_redirect_a_root_restore() {
    if !is_root() {
        eprintln!("skipped: needs root (owners and setuid bits are the point)");
        return;
    }
    let rounds = if long() { 500 } else { 100 };
    let env = Env::new();
    let src = env.path("src");
    let user = src.join("example.com/user/jdoe");
    make_source(&user);
    env.backup(HOST, "mail/imap", &src);

    let decoy = env.path("decoy");
    write(
        &decoy.join("dash"),
        b"#!/bin/sh\n# stands for a root-owned copy of /bin/dash\n",
    );
    fs::set_permissions(decoy.join("dash"), fs::Permissions::from_mode(0o755)).unwrap();
    write(&decoy.join("dir/secret"), b"root only\n");
    fs::set_permissions(decoy.join("dir/secret"), fs::Permissions::from_mode(0o600)).unwrap();
    let before = listing(&decoy);

    let area = env.path("area");
    fs::create_dir(&area).unwrap();
    chown(&area, Some(OTHER), Some(OTHER)).unwrap();

    let log = Arc::new(Attacks::default());
    let (mut replaced, mut failed_files, mut partial_runs, mut refused_runs) = (0, 0, 0, 0);
    let started = Instant::now();
    for round in 0..rounds {
        let dest = area.join(format!("r{round}"));
        let d = dest.to_str().unwrap().to_string();
        let (args, src_root, dest_root): (Vec<String>, PathBuf, PathBuf) = match round % 4 {
            0 => (
                [
                    "restore-user",
                    "jdoe@example.com",
                    "--at",
                    "last",
                    "--host",
                    HOST,
                    "--to",
                    &d,
                ]
                .map(String::from)
                .to_vec(),
                user.clone(),
                dest.join("jdoe@example.com/mail/imap"),
            ),
            1 => (
                [
                    "restore-server",
                    "--host",
                    HOST,
                    "--at",
                    "last",
                    "--target",
                    &d,
                ]
                .map(String::from)
                .to_vec(),
                src.clone(),
                dest.join(src.strip_prefix("/").unwrap()),
            ),
            _ => (
                ["restore", "--host", HOST, "--part", "mail/imap", "", &d]
                    .map(String::from)
                    .to_vec(),
                src.clone(),
                dest.clone(),
            ),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let attacker = {
            let (dest, decoy, stop, log) = (dest.clone(), decoy.clone(), stop.clone(), log.clone());
            std::thread::spawn(move || attack(&dest, &decoy, &stop, &log))
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&argv);
        stop.store(true, Ordering::Relaxed);
        attacker.join().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        // Exit 1: a folder on DEST's own path was swapped while it was being made, and the
        // restore refused to start: all of DEST is reported.
        let refused = code == Some(1)
            && stderr.contains("error: ")
            && (stderr.contains("replaced during the restore") || stderr.contains("not followed"));
        assert!(
            matches!(code, Some(0 | 3)) || refused,
            "{argv:?}: {code:?}\n{stderr}"
        );
        partial_runs += usize::from(code == Some(3));
        refused_runs += usize::from(refused);
        let mut failed = reported(&stderr);
        if refused {
            failed.push((dest_root.clone(), "replaced during the restore".into()));
        }
        replaced += failed
            .iter()
            .filter(|(_, e)| e.contains("replaced during the restore"))
            .count();
        failed_files += failed.len();
        let swapped = log.dirs.lock().unwrap().clone();
        check_round(&src_root, &dest_root, &failed, &swapped);
        assert_eq!(
            listing(&decoy),
            before,
            "round {round}: the decoy tree changed"
        );
    }
    let temps = log.temps.load(Ordering::Relaxed);
    let dirs = log.dirs.lock().unwrap().len();
    eprintln!(
        "{rounds} rounds in {:?}: {temps} temporary names and {dirs} folders swapped for \
         symlinks; {partial_runs} runs exited 3 and {refused_runs} refused DEST (exit 1), with \
         {failed_files} files reported, {replaced} of them 'replaced during the restore'; decoy \
         tree unchanged",
        started.elapsed()
    );
    assert!(
        temps > 0 && replaced > 0,
        "the attack never landed: make the files bigger"
    );
}

#[test]
fn a_destination_that_its_folder_owner_made_a_symlink_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("jdoe/mail"), b"mail\n");
    env.backup(HOST, "mail/imap", &src);
    let decoy = env.path("decoy");
    fs::create_dir(&decoy).unwrap();
    let area = env.path("area");
    fs::create_dir(&area).unwrap();
    chown(&area, Some(OTHER), Some(OTHER)).unwrap();
    // The owner of `area` turned the restore's destination into a symlink to the decoy folder.
    symlink(&decoy, area.join("dest")).unwrap();
    let before = listing(&decoy);
    let d = area.join("dest/sub");
    env.fails_with(
        &[
            "restore",
            "--host",
            HOST,
            "--part",
            "mail/imap",
            "",
            d.to_str().unwrap(),
        ],
        "not followed",
    );
    assert_eq!(listing(&decoy), before);
    // The admin's own symlink (in a folder only root can write) is followed.
    let admin = env.path("admin-link");
    symlink(&decoy, &admin).unwrap();
    let d = admin.join("sub");
    env.ok(&[
        "restore",
        "--host",
        HOST,
        "--part",
        "mail/imap",
        "",
        d.to_str().unwrap(),
    ]);
    assert_eq!(fs::read(decoy.join("sub/jdoe/mail")).unwrap(), b"mail\n");
}
