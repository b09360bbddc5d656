//! A Garage S3 server for one test: a single node on free 127.0.0.1 ports in its own temp
//! folder, with a default key and bucket; killed when dropped (also when the test panics, and
//! by the kernel if the test process dies first). `Env::new_s3` gives an `Env` whose store is a
//! prefix of its bucket.

use super::{show, Env};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `.ci/setup` (run by `make test` and `.ci/run`) builds Garage (outside the clone, reused
/// by later runs).
pub const GARAGE_DEFAULT: &str = "/var/cache/bmbackup-ci/garage-2.5.0/bin/garage";

/// How `.ci/setup` builds it, for the message when it is missing.
pub const GARAGE_BUILD: &str = "cargo install garage@2.5.0 --locked --debug --no-default-features --features bundled-libs,sqlite,lmdb --root /var/cache/bmbackup-ci/garage-2.5.0 --target-dir /var/cache/bmbackup-ci/garage-build";

pub struct Garage {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub s3_port: u16,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// Garage's `RUST_LOG` (`garage=info` logs every request line).
    pub rust_log: String,
}

/// The Garage binary: `BMBACKUP_GARAGE`, else the CI cache; a test fails (never skips) when it
/// is missing, saying how to build it.
pub fn garage_binary() -> PathBuf {
    let bin = std::env::var_os("BMBACKUP_GARAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(GARAGE_DEFAULT));
    assert!(
        bin.is_file(),
        "the S3 tests need the Garage server at {} (or set BMBACKUP_GARAGE); build it once \
         with:\n  {GARAGE_BUILD}\n(`make test` and `.ci/setup` do this when it is missing)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&bmbackup::store::backend::unique_suffix());
    }
    s.truncate(n);
    s
}

impl Garage {
    /// Starts a fresh server and waits until its S3 API answers. Blocks of 64 KiB: Garage
    /// hashes a whole block at every read, slow in CI's debug build for its default 1 MiB.
    pub fn start() -> Garage {
        Self::start_logging("garage=warn")
    }

    /// [`Garage::start`] with Garage's `RUST_LOG` set to `rust_log`.
    pub fn start_logging(rust_log: &str) -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let conf = format!(
            "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
             replication_factor = 1\nblock_size = 65536\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
             [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
             root_domain = \".s3.garage.localhost\"\n\
             [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
            d = dir.path().display(),
            secret = hex(64),
        );
        let conf_path = dir.path().join("garage.toml");
        fs::write(&conf_path, conf).unwrap();
        fs::set_permissions(&conf_path, fs::Permissions::from_mode(0o600)).unwrap();
        let mut g = Garage {
            dir,
            child: None,
            s3_port: s3,
            bucket: "bmbackup-test".into(),
            access_key: format!("GK{}", hex(24)),
            secret_key: hex(64),
            rust_log: rust_log.to_string(),
        };
        g.run();
        g
    }

    /// Starts the server (again, on the same ports and data) and waits until it answers.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "Garage already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("garage.log"))
            .unwrap();
        let mut cmd = Command::new(garage_binary());
        cmd.arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &self.access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &self.secret_key)
            .env("GARAGE_DEFAULT_BUCKET", &self.bucket)
            .env("RUST_LOG", &self.rust_log)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl only sets a flag of the child; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.answers() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("Garage exited ({st}) at start:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "Garage did not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the S3 API answers HTTP on its port (an unsigned request gets a 403).
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.s3_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!("GET /{} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", self.bucket);
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }

    /// Kills the server (as a crash or a power cut would) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The `[s3]` table of a bmbackup config file for this server (as in the README).
    pub fn config_table(&self) -> String {
        format!(
            "[s3]\nendpoint = \"{}\"\nregion = \"garage\"\npath_style = true\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            self.endpoint(),
            self.access_key,
            self.secret_key
        )
    }

    /// A store location no other test uses in this bucket.
    pub fn new_location(&self) -> String {
        format!(
            "s3://{}/t-{}",
            self.bucket,
            bmbackup::store::backend::unique_suffix()
        )
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Env {
    /// A fresh store at `location` on `garage` (made by `init`), with a config file holding
    /// the server's `[s3]` table; cache and scratch in a temp folder as usual.
    pub fn new_s3(garage: &Garage) -> Env {
        Self::on_s3(garage, &garage.new_location(), true)
    }

    /// Another host's view of the store at `location` (its own cache and config), created
    /// first when `init`.
    pub fn on_s3(garage: &Garage, location: &str, init: bool) -> Env {
        let env = Env::uninit_at(location, &garage.config_table());
        if init {
            let out = env.run(&["init", location]);
            assert!(out.status.success(), "init {location}: {}", show(&out));
        }
        env
    }
}

/// A Garage cluster of `n` nodes on loopback with replication 3 (writes and reads need 2 of
/// the 3 copies), one key and one bucket, made with Garage's own CLI as an admin would; every
/// node is killed when dropped.
pub struct GarageCluster {
    dir: tempfile::TempDir,
    nodes: Vec<(PathBuf, u16, Option<Child>)>,
    /// `ID@ADDR` of each node, once the cluster is formed.
    ids: Vec<String>,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl GarageCluster {
    pub fn start(n: usize) -> GarageCluster {
        let dir = tempfile::tempdir().unwrap();
        let secret = hex(64);
        let mut nodes = Vec::new();
        for i in 0..n {
            let (rpc, s3) = (free_port(), free_port());
            let d = dir.path().join(format!("n{i}"));
            fs::create_dir_all(&d).unwrap();
            let conf = format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 3\nblock_size = 65536\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                 root_domain = \".s3.garage.localhost\"\n",
                d = d.display(),
            );
            let path = d.join("garage.toml");
            fs::write(&path, conf).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            nodes.push((path, s3, None));
        }
        let mut c = GarageCluster {
            dir,
            nodes,
            ids: Vec::new(),
            bucket: "bmbackup-test".into(),
            access_key: format!("GK{}", hex(24)),
            secret_key: hex(64),
        };
        for i in 0..n {
            c.run(i);
        }
        let ids: Vec<String> = (0..n)
            .map(|i| c.garage(i, &["node", "id", "-q"]).trim().to_string())
            .collect();
        for id in &ids[1..] {
            c.garage(0, &["node", "connect", id]);
        }
        for id in &ids {
            c.garage(0, &["layout", "assign", "-z", "dc1", "-c", "1G", &id[..16]]);
        }
        c.ids = ids;
        c.garage(0, &["layout", "apply", "--version", "1"]);
        let (k, s) = (c.access_key.clone(), c.secret_key.clone());
        c.garage(0, &["key", "import", "--yes", &k, &s]);
        let b = c.bucket.clone();
        c.garage(0, &["bucket", "create", &b]);
        c.garage(
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", &b, "--key", &k,
            ],
        );
        c
    }

    /// Runs Garage's CLI against node `i`; its output.
    fn garage(&self, i: usize, args: &[&str]) -> String {
        let out = Command::new(garage_binary())
            .arg("-c")
            .arg(&self.nodes[i].0)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "garage {args:?}: {}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts node `i` (again) and waits until its S3 API answers.
    pub fn run(&mut self, i: usize) {
        let (conf, port, child) = &mut self.nodes[i];
        assert!(child.is_none(), "node {i} already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(conf.with_file_name("garage.log"))
            .unwrap();
        let mut cmd = Command::new(garage_binary());
        cmd.arg("-c")
            .arg(&*conf)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl only sets a flag of the child; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        *child = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !s3_answers(*port, "x") {
            assert!(Instant::now() < deadline, "Garage node {i} did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        // A restarted node is told where the others are (it would find them later by itself).
        if i > 0 && !self.ids.is_empty() {
            let id = self.ids[i].clone();
            self.garage(0, &["node", "connect", &id]);
        }
    }

    /// Kills node `i` (a crash) and waits for it.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].2.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The `[s3]` table for node 0, retrying for `retry_seconds`.
    pub fn config_table(&self, retry_seconds: u64) -> String {
        format!(
            "[s3]\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"garage\"\npath_style = true\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nretry_seconds = {retry_seconds}\n",
            self.nodes[0].1, self.access_key, self.secret_key
        )
    }

    pub fn new_location(&self) -> String {
        format!(
            "s3://{}/t-{}",
            self.bucket,
            bmbackup::store::backend::unique_suffix()
        )
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i);
        }
    }
}

/// Whether an S3 API answers HTTP on `port`.
fn s3_answers(port: u16, bucket: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /{bucket} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
