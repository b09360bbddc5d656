//! One test environment: a temp folder holding a store, its own catalog cache and its own
//! config file, and the real `bmbackup` binary run against them; backup, snapshot, check and
//! store-inspection helpers on top.

use bmbackup::gen::{generate_spool, SpoolSpec};
use bmbackup::id::Digest;
use bmbackup::repo::Repository;
use bmbackup::store::pack::IndexEntry;
use bmbackup::store::Store;
use serde_json::Value;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bmbackup");

/// The host most restore tests back up as.
pub const HOST: &str = "10.9.9.9";

pub struct Env {
    pub dir: tempfile::TempDir,
    /// A store not in the temp folder (`s3://…`, see `garage.rs`).
    location: Option<PathBuf>,
    /// Appended to every config file written (the `[s3]` table of a store on S3).
    config_tail: String,
}

impl Env {
    /// A fresh store (`init` with its defaults).
    pub fn new() -> Env {
        Self::create(tempfile::tempdir().unwrap(), None, &[])
    }

    /// A fresh store under `parent` (e.g. a tmpfs, to time restores without the disk).
    pub fn new_in(parent: &Path) -> Env {
        Self::create(tempfile::tempdir_in(parent).unwrap(), None, &[])
    }

    /// A fresh store made by `init STORE ARGS…` (e.g. `--chunk-avg 1M`).
    pub fn with_init(args: &[&str]) -> Env {
        Self::create(tempfile::tempdir().unwrap(), None, args)
    }

    /// A store whose folder is `store` (e.g. on a tmpfs), made by `init STORE ARGS…`; cache and
    /// scratch stay in the temp folder, `store()` is a symlink to it.
    pub fn with_store_at(store: &Path, args: &[&str]) -> Env {
        Self::create(tempfile::tempdir().unwrap(), Some(store), args)
    }

    /// No store yet (a test copies a fixture to `store()`).
    pub fn uninit() -> Env {
        Self::prepared(tempfile::tempdir().unwrap())
    }

    fn prepared(dir: tempfile::TempDir) -> Env {
        // Other users must be able to reach the mount point (the allow_other test).
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let env = Env {
            dir,
            location: None,
            config_tail: String::new(),
        };
        // An empty config file: no /etc config leaks in, entities get their defaults.
        fs::write(env.config(), "").unwrap();
        env
    }

    /// No store yet at `location` (e.g. `s3://BUCKET/PREFIX`); every config file written holds
    /// `config_tail`.
    pub fn uninit_at(location: &str, config_tail: &str) -> Env {
        let mut env = Self::prepared(tempfile::tempdir().unwrap());
        env.location = Some(PathBuf::from(location));
        env.config_tail = config_tail.to_string();
        fs::write(env.config(), config_tail).unwrap();
        env
    }

    fn create(dir: tempfile::TempDir, store_at: Option<&Path>, args: &[&str]) -> Env {
        let env = Self::prepared(dir);
        let store = match store_at {
            Some(at) => {
                std::os::unix::fs::symlink(at, env.store()).unwrap();
                at.to_path_buf()
            }
            None => env.store(),
        };
        let mut init = vec!["init", store.to_str().unwrap()];
        init.extend_from_slice(args);
        env.ok(&init);
        env
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The store's folder, or its location when it is elsewhere (`s3://…`).
    pub fn store(&self) -> PathBuf {
        self.location.clone().unwrap_or_else(|| self.path("store"))
    }

    pub fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    /// The config file every command is given (`BMBACKUP_CONFIG`); empty unless a test writes it.
    pub fn config(&self) -> PathBuf {
        self.path("env-config.toml")
    }

    /// Writes the config file with `host = "10.0.0.5"` first and, unless `text` sets one, no
    /// post-backup hook (the BlueMind default must not run here).
    pub fn write_config(&self, text: &str) {
        let text = if text.contains("post_backup_hook") {
            text.to_string()
        } else {
            format!("post_backup_hook = \"\"\n{text}")
        };
        // Tests run many backups side by side on few cores: at the default background
        // priority (nice 19, idle I/O) they would starve each other.
        let priority = if text.contains("priority") {
            ""
        } else {
            "priority = \"normal\"\n"
        };
        fs::write(
            self.config(),
            format!(
                "host = \"10.0.0.5\"\n{priority}{text}\n{}",
                self.config_tail
            ),
        )
        .unwrap();
    }

    /// The mount point (created on first use).
    pub fn mnt(&self) -> PathBuf {
        let mnt = self.path("mnt");
        fs::create_dir_all(&mnt).unwrap();
        mnt
    }

    /// `bmbackup ARGS…` with this environment's store, cache and config, not yet run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command(BIN);
        c.args(args);
        c
    }

    /// Starts bmbackup with `args` and sends it SIGKILL after `after`; true when the kill was
    /// delivered.
    pub fn kill_after(&self, args: &[&str], after: std::time::Duration) -> bool {
        let mut child = self
            .cmd(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        let killed = child.kill().is_ok();
        let status = child.wait().unwrap();
        eprintln!("{args:?}: killed after {after:?}: {killed} ({status})");
        killed
    }

    /// `program` (e.g. a wrapper such as `setpriv` or `/usr/bin/time` that runs `BIN`) with
    /// this environment's variables and no arguments yet.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("BMBACKUP_STORE", self.store())
            .env("BMBACKUP_CACHE", self.cache())
            .env("BMBACKUP_CONFIG", self.config())
            .env("RUST_LOG", "warn");
        c
    }

    /// Runs and returns the output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs, expects success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", show(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, expects failure and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "{args:?} should fail: {}",
            show(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs, expects failure and `needle` in stderr; returns stderr.
    pub fn fails_with(&self, args: &[&str], needle: &str) -> String {
        let err = self.fails(args);
        assert!(err.contains(needle), "{args:?}: no {needle:?} in: {err}");
        err
    }

    /// Runs, expects exit code `code` and `needle` in stderr; returns stderr.
    pub fn expect_fail(&self, args: &[&str], code: i32, needle: &str) -> String {
        expect_exit(&self.run(args), code, needle)
    }

    /// Runs and expects exit code `code`; returns stdout + stderr.
    pub fn code(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", show(&out));
        show(&out)
    }

    /// `backup --host HOST --part PART=SRC`; returns the newest snapshot of that host and part.
    pub fn backup(&self, host: &str, part: &str, src: &Path) -> Value {
        self.backup_with(host, part, src, &[])
    }

    /// `backup --host HOST --part PART=SRC EXTRA…`; returns the newest snapshot of that host
    /// and part.
    pub fn backup_with(&self, host: &str, part: &str, src: &Path, extra: &[&str]) -> Value {
        let part_arg = format!("{part}={}", src.display());
        let mut args = vec!["backup", "--host", host, "--part", &part_arg];
        args.extend_from_slice(extra);
        self.ok(&args);
        self.snapshots()
            .into_iter()
            .filter(|s| s["host"] == host && s["part"] == part)
            .max_by_key(|s| s["started_ns"].as_i64().unwrap())
            .unwrap()
    }

    /// `backup --part PART=SRC` with the host of the config file; returns stdout.
    pub fn backup_part(&self, part: &str, src: &Path) -> String {
        self.ok(&["backup", "--part", &format!("{part}={}", src.display())])
    }

    /// A demo Cyrus spool (`SpoolSpec::demo()`) generated at `rel` in the temp folder and backed
    /// up as `HOST` part `mail/imap`; returns its path.
    pub fn backup_demo_spool(&self, rel: &str) -> PathBuf {
        let spool = self.path(rel);
        generate_spool(&spool, &SpoolSpec::demo()).unwrap();
        self.backup(HOST, "mail/imap", &spool);
        spool
    }

    /// `backup --host h --part PART` run as uid/gid 65534 (store and cache handed to it first),
    /// so root-only files cannot be read; the output whatever the exit status.
    pub fn backup_as_nobody(&self, part: &str) -> Output {
        fs::create_dir_all(self.cache()).unwrap();
        let st = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(self.store())
            .arg(self.cache())
            .status()
            .unwrap();
        assert!(st.success());
        self.command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(BIN)
            .args(["backup", "--host", "h", "--part", part])
            .output()
            .unwrap()
    }

    /// `snapshots --json`.
    pub fn snapshots(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.ok(&["snapshots", "--json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// `check --json [--read-data]`: (exit status success, report).
    pub fn check_json(&self, read_data: bool) -> (bool, Value) {
        let mut args = vec!["check", "--json"];
        if read_data {
            args.push("--read-data");
        }
        let out = self.run(&args);
        let v: Value = serde_json::from_slice(&out.stdout)
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
        super::assert_restored(expected, &out);
        fs::remove_dir_all(&out).unwrap();
    }

    pub fn open_store(&self) -> Store {
        Store::open(&self.store()).unwrap()
    }

    /// The repository as the mount opens it, with this environment's cache.
    pub fn repo(&self) -> Repository {
        Repository::open(&self.store(), Some(&self.cache())).unwrap()
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

    /// The snapshot manifests in the store, sorted.
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

    /// Bytes of every file in the store.
    pub fn store_size(&self) -> u64 {
        super::dir_size(&self.store())
    }
}

/// Exit status, stdout and stderr of a command, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `restore-user WHO --at last --host HOST` then `extra`: a user's restore from the latest
/// snapshot of that host.
pub fn restore_user_last<'a>(who: &'a str, host: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["restore-user", who, "--at", "last", "--host", host];
    args.extend_from_slice(extra);
    args
}

/// Expects exit code `code` and `needle` in stderr of a command already run; returns stderr.
pub fn expect_exit(out: &Output, code: i32, needle: &str) -> String {
    assert_eq!(out.status.code(), Some(code), "{}", show(out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains(needle), "no {needle:?} in: {err}");
    err
}

/// Runs the built `bmbackup` binary with `args` and nothing else set, and returns its output
/// (never panics on a non-zero exit: tests assert on the status themselves).
pub fn run_bin<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

/// Runs any command, expects success and returns stdout.
pub fn command_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` with `sh -c` and expects success.
pub fn sh(cmd: &str) {
    command_ok(Command::new("sh").arg("-c").arg(cmd));
}

/// Whether the long variants of the randomised tests were asked for (`BMBACKUP_LONG=1`).
pub fn long() -> bool {
    std::env::var("BMBACKUP_LONG").is_ok_and(|v| v == "1")
}

pub fn iso(ns: i64) -> String {
    bmbackup::timefmt::iso8601(ns)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
