//! `kill -9` at random moments of backup, prune and repair. After each crash `check --read-data`
//! must pass, every earlier snapshot must restore byte-identical, and the next backup must
//! succeed. 3 rounds of each by default; 20 with BMBACKUP_LONG=1. And `kill -9` during restore:
//! the rerun exits 0 and leaves exactly the snapshot's tree (10 rounds; 20 with BMBACKUP_LONG=1).
//! The seed is printed; set BMBACKUP_SEED to replay a run.

mod common;

use bmbackup::gen::generate_tree_with_every_file_type;
use common::{bytes, diff_trees, long, rsync_itemize, seed, show, Env, Xorshift, HOST};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Known snapshots and a copy of the source each one saw.
struct History {
    snaps: Vec<(String, PathBuf)>,
}

impl History {
    fn record(&mut self, env: &Env, src: &Path) {
        let id = env.snapshots().last().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        if self.snaps.iter().any(|(s, _)| *s == id) {
            return;
        }
        let copy = env.path(&format!("seen-{}", &id[..12]));
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(src)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(st.success());
        self.snaps.push((id, copy));
    }

    /// Snapshots a killed backup may have committed just before dying are adopted.
    fn verify(&mut self, env: &Env, src: &Path) {
        env.assert_check_passes();
        let listed: Vec<String> = env
            .snapshots()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        for (id, copy) in &self.snaps {
            assert!(listed.contains(id), "snapshot {id} vanished");
            env.restore_matches(id, copy);
        }
        if listed.len() > self.snaps.len() {
            // The killed backup wrote its manifest: it saw the current source.
            self.record(env, src);
            let (id, copy) = self.snaps.last().unwrap();
            env.restore_matches(id, copy);
        }
    }
}

fn change_source(src: &Path, round: u64, rng: &mut Xorshift) {
    for _ in 0..4 {
        let i = rng.below(24);
        fs::write(
            src.join(format!("d{}/f{i}", i % 3)),
            bytes(200_000 + rng.below(400_000) as usize, round * 1000 + i),
        )
        .unwrap();
    }
}

fn kill_at_random(env: &Env, args: &[&str], max: Duration, rng: &mut Xorshift) -> bool {
    env.kill_after(
        args,
        Duration::from_micros(rng.below(max.as_micros() as u64)),
    )
}

#[test]
fn kill_9_during_backup_prune_and_repair_loses_nothing() {
    let seed = seed();
    eprintln!("seed {seed} (BMBACKUP_SEED to replay)");
    let mut rng = Xorshift(seed | 1);
    let rounds = if long() { 20 } else { 3 };
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let src = env.path("src");
    for d in 0..3 {
        fs::create_dir_all(src.join(format!("d{d}"))).unwrap();
    }
    for i in 0..24u64 {
        fs::write(src.join(format!("d{}/f{i}", i % 3)), bytes(300_000, i)).unwrap();
    }
    let part = format!("mail/imap={}", src.display());
    let backup: Vec<&str> = vec!["backup", "--host", "h", "--part", &part, "--threads", "2"];
    let started = Instant::now();
    env.ok(&backup);
    let backup_time = started.elapsed();
    let mut hist = History { snaps: Vec::new() };
    hist.record(&env, &src);

    for round in 0..rounds {
        change_source(&src, round + 1, &mut rng);
        kill_at_random(&env, &backup, backup_time * 2, &mut rng);
        hist.verify(&env, &src);
        env.ok(&backup);
        hist.record(&env, &src);
    }

    for _ in 0..rounds {
        // Forget the oldest snapshot so prune has packs to delete and rewrite.
        if hist.snaps.len() > 1 {
            let (id, _) = hist.snaps.remove(0);
            fs::remove_file(env.store().join(format!("snapshots/{id}.json"))).unwrap();
        }
        kill_at_random(
            &env,
            &["prune", "--repack-below", "90"],
            backup_time + Duration::from_millis(200),
            &mut rng,
        );
        hist.verify(&env, &src);
        change_source(&src, 100 + hist.snaps.len() as u64, &mut rng);
        env.ok(&backup);
        hist.record(&env, &src);
    }

    for _ in 0..rounds {
        kill_at_random(&env, &["repair", "--now"], backup_time * 2, &mut rng);
        hist.verify(&env, &src);
        env.ok(&backup);
        hist.record(&env, &src);
    }
    // A finished prune and repair after all of it leave a clean store.
    env.ok(&["prune"]);
    env.ok(&["repair"]);
    hist.verify(&env, &src);
}

#[test]
fn kill_9_during_restore_then_the_rerun_exits_0_with_the_same_tree() {
    let seed = seed();
    eprintln!("seed {seed} (BMBACKUP_SEED to replay)");
    let mut rng = Xorshift(seed | 1);
    let rounds = if long() { 20 } else { 10 };
    let env = Env::new();
    let src = env.path("src");
    // Every file type (symlinks, fifos, devices, hard links, xattrs, setuid) and enough bytes
    // for a kill to land in the middle of a file.
    generate_tree_with_every_file_type(&src).unwrap();
    for i in 0..12u64 {
        let p = src.join(format!("big/d{}/f{i}", i % 3));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes(400_000 + 100_000 * i as usize, i)).unwrap();
    }
    env.backup(HOST, "mail/imap", &src);
    let id = env.snapshots()[0]["id"].as_str().unwrap().to_string();
    let timed = env.path("timed");
    let started = Instant::now();
    env.ok(&["restore", &id, timed.to_str().unwrap()]);
    let restore_time = started.elapsed();
    assert_eq!(diff_trees(&src, &timed), Vec::<String>::new());
    let mut clean_reruns = 0;
    for round in 0..rounds {
        let dest = env.path(&format!("r{round}"));
        let args = ["restore", id.as_str(), dest.to_str().unwrap()];
        // Every third round is killed twice: the rerun of a rerun must finish the job too.
        for _ in 0..1 + usize::from(round % 3 == 2) {
            kill_at_random(&env, &args, restore_time, &mut rng);
        }
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(0), "rerun: {}", show(&out));
        clean_reruns += 1;
        assert_eq!(
            diff_trees(&src, &dest),
            Vec::<String>::new(),
            "round {round}"
        );
        assert_eq!(
            rsync_itemize(&src, &dest),
            Vec::<String>::new(),
            "round {round}"
        );
        fs::remove_dir_all(&dest).unwrap();
    }
    eprintln!("{clean_reruns} reruns after kill -9 exited 0 with identical trees");
}
