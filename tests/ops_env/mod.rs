//! Helpers of the integrity and fault tests: a store with its own cache, the built binary run
//! against it, deterministic noise, byte surgery on packs, and restore-and-compare.
#![allow(dead_code)]

use bmbackup::id::Digest;
use bmbackup::store::pack::IndexEntry;
use bmbackup::store::Store;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        // 1 MiB chunks: the damage scenarios here count one chunk per small file.
        env.ok(&["init", env.store().to_str().unwrap(), "--chunk-avg", "1M"]);
        env
    }

    /// A store whose folder is `store` (e.g. on a tmpfs), cache and scratch in a temp dir.
    pub fn with_store_at(store: &Path) -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        std::os::unix::fs::symlink(store, env.store()).unwrap();
        env.ok(&["init", store.to_str().unwrap(), "--chunk-avg", "1M"]);
        env
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bmbackup"));
        c.args(args)
            .env("BMBACKUP_STORE", self.store())
            .env("BMBACKUP_CACHE", self.path("cache"))
            .env_remove("BMBACKUP_CONFIG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", show(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects exit code `code`; returns stdout + stderr.
    pub fn code(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", show(&out));
        show(&out)
    }

    pub fn backup(&self, src: &Path) -> String {
        let part = format!("mail/imap={}", src.display());
        self.ok(&["backup", "--host", "h", "--part", &part, "--threads", "2"])
    }

    pub fn snapshots(&self) -> Vec<serde_json::Value> {
        serde_json::from_str::<serde_json::Value>(&self.ok(&["snapshots", "--json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn check_json(&self, read_data: bool) -> (bool, serde_json::Value) {
        let mut args = vec!["check", "--json"];
        if read_data {
            args.push("--read-data");
        }
        let out = self.run(&args);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("check output: {e}: {}", show(&out)));
        assert_eq!(out.status.success(), v["ok"].as_bool().unwrap(), "{v}");
        (out.status.success(), v)
    }

    pub fn assert_check_passes(&self) {
        let (ok, v) = self.check_json(true);
        assert!(ok, "check --read-data found damage: {v:#}");
    }

    /// Restores snapshot `id` into a new folder and compares it with `expected`.
    pub fn restore_matches(&self, id: &str, expected: &Path) {
        let out = self.path(&format!(
            "restore-{}",
            bmbackup::store::backend::unique_suffix()
        ));
        self.ok(&["restore", id, out.to_str().unwrap()]);
        super::common::assert_same_tree_with(
            expected,
            &out,
            &super::common::CompareOptions::ignore_root(),
        );
        fs::remove_dir_all(&out).unwrap();
    }

    pub fn open_store(&self) -> Store {
        Store::open(&self.store()).unwrap()
    }

    /// The pack and index entry holding the blob `id`.
    pub fn find_blob(&self, id: &Digest) -> (PathBuf, IndexEntry) {
        let store = self.open_store();
        for p in store.list_packs().unwrap() {
            let (_, entries) = store.read_pack_index(&p).unwrap();
            if let Some(e) = entries.iter().find(|e| e.id == *id) {
                return (PathBuf::from(store.describe_pack(&p)), *e);
            }
        }
        panic!("blob {id:?} not in any pack");
    }

    pub fn manifest_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.store().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        v.sort();
        v
    }

    pub fn pack_files(&self) -> Vec<PathBuf> {
        let store = self.open_store();
        store
            .list_packs()
            .unwrap()
            .iter()
            .map(|p| PathBuf::from(store.describe_pack(p)))
            .collect()
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Incompressible, deterministic bytes.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// XORs one byte of a file.
pub fn flip(path: &Path, offset: u64) {
    let mut b = fs::read(path).unwrap();
    b[offset as usize] ^= 0x5a;
    fs::write(path, b).unwrap();
}

/// A tempfile-free random number from the clock, for test randomisation (logged by callers).
pub fn seed() -> u64 {
    std::env::var("BMBACKUP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

pub fn long() -> bool {
    std::env::var("BMBACKUP_LONG").is_ok_and(|v| v == "1")
}
