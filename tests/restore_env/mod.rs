//! Helpers shared by the restore, history and find end-to-end tests: a store in a tempdir with
//! its own catalog cache and an empty config, the real binary, and small tree utilities.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const HOST: &str = "10.9.9.9";

pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Self::with_dir(tempfile::tempdir().unwrap())
    }
    /// An environment under `parent` (e.g. a tmpfs, to time restores without the disk).
    pub fn new_in(parent: &Path) -> Env {
        Self::with_dir(tempfile::tempdir_in(parent).unwrap())
    }
    fn with_dir(dir: tempfile::TempDir) -> Env {
        let env = Env { dir };
        env.ok(&["init", env.store().to_str().unwrap()]);
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
            .env("BMBACKUP_CONFIG", self.path("none.toml"))
            .env("RUST_LOG", "warn");
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        // An empty config file: no /etc config leaks in, entities get their defaults.
        fs::write(self.path("none.toml"), "").unwrap();
        self.cmd(args).output().unwrap()
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
    pub fn backup(&self, part: &str, src: &Path) -> Value {
        self.ok(&[
            "backup",
            "--host",
            HOST,
            "--part",
            &format!("{part}={}", src.display()),
        ]);
        let snaps: Value = serde_json::from_str(&self.ok(&["snapshots", "--json"])).unwrap();
        snaps
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["part"] == part)
            .max_by_key(|s| s["started_ns"].as_i64().unwrap())
            .unwrap()
            .clone()
    }
}

pub fn iso(ns: i64) -> String {
    bmbackup::timefmt::iso8601(ns)
}

pub fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The generated demo spool's users, as local@domain.
pub fn users(spool: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in names(spool) {
        for u in names(&spool.join(&d).join("user")) {
            out.push((u, d.clone()));
        }
    }
    out
}
