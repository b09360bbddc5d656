//! A private Cyrus IMAP server for tests: Debian's `cyrus-imapd` binaries with their own
//! `imapd.conf`, `cyrus.conf`, config directory, spool, sockets and SASL database under a
//! temporary folder, IMAP and LMTP on free 127.0.0.1 ports. The package's own instance
//! (`/etc/imapd.conf`, `/var/lib/cyrus`) is never used: every command gets `-C`. The server runs
//! in its own process group, killed when the [`Cyrus`] value is dropped, also when a test fails.
//!
//! IMAP and LMTP clients are `imap_tool.py` beside this file (Python's imaplib and smtplib).
#![allow(dead_code)]

use serde_json::Value;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs Cyrus' programs.
pub const BIN: &str = "/usr/lib/cyrus/bin";

pub struct Layout {
    /// `mailbox_legacy_dirs: yes` (name-based, hashed folders) or uuid folders.
    pub legacy: bool,
    pub virtdomains: bool,
    /// `fulldirhash: yes`: hash letters A-W computed from the whole name.
    pub fulldirhash: bool,
}

pub struct Cyrus {
    pub root: PathBuf,
    pub imap: u16,
    pub lmtp: u16,
    /// Cyrus' httpd (CalDAV, CardDAV) when started with [`Cyrus::start_with_dav`], else 0.
    pub http: u16,
    pub virtdomains: bool,
    master: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// Fails with what to do when the machine cannot run the server.
pub fn require() {
    assert!(
        Path::new(BIN).join("master").exists(),
        "Cyrus IMAP is not installed: apt-get install cyrus-imapd cyrus-admin sasl2-bin (bash .ci/run does)"
    );
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the Cyrus tests run as root (the server runs as cyrus)"
    );
}

fn cyrus_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "cyrus"])
        .output()
        .expect("id");
    let uid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("no cyrus user");
    let out = Command::new("id")
        .args(["-g", "cyrus"])
        .output()
        .expect("id");
    let gid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("no cyrus group");
    (uid, gid)
}

fn chown_tree(p: &Path, ids: (u32, u32)) {
    std::os::unix::fs::chown(p, Some(ids.0), Some(ids.1)).unwrap();
    if p.is_dir() {
        for e in fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), ids);
        }
    }
}

/// Starts Cyrus' master for the instance under `root`, in its own process group.
fn spawn_master(root: &Path) -> Child {
    let log = fs::File::create(root.join("master.log")).unwrap();
    Command::new(Path::new(BIN).join("master"))
        .arg("-C")
        .arg(root.join("imapd.conf"))
        .arg("-M")
        .arg(root.join("cyrus.conf"))
        .arg("-p")
        .arg(root.join("run/master.pid"))
        .arg("-D")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("cannot start Cyrus' master")
}

impl Cyrus {
    /// Writes the configuration under `root` and starts the server.
    pub fn start(root: &Path, layout: Layout) -> Cyrus {
        Cyrus::start_opts(root, layout, false)
    }

    /// As [`Cyrus::start`], with Cyrus' httpd serving CalDAV and CardDAV on 127.0.0.1 (the
    /// `cyrus-caldav` package), SCRAM-SHA-256 allowed (an admin acting as a user).
    pub fn start_with_dav(root: &Path, layout: Layout) -> Cyrus {
        assert!(
            Path::new(BIN).join("httpd").exists(),
            "Cyrus' httpd is not installed: apt-get install cyrus-caldav (bash .ci/run does)"
        );
        Cyrus::start_opts(root, layout, true)
    }

    fn start_opts(root: &Path, layout: Layout, dav: bool) -> Cyrus {
        require();
        let (imap, lmtp) = (free_port(), free_port());
        let http = if dav { free_port() } else { 0 };
        for d in ["conf", "spool", "run/socket", "run/proc", "run/lock"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let r = root.display();
        let conf = format!(
            "configdirectory: {r}/conf\ndefaultpartition: default\npartition-default: {r}/spool\n\
             proc_path: {r}/run/proc\nmboxname_lockpath: {r}/run/lock\n\
             lmtpsocket: {r}/run/socket/lmtp\nidlesocket: {r}/run/socket/idle\n\
             notifysocket: {r}/run/socket/notify\nadmins: cyrus\nallowplaintext: yes\n\
             sasl_pwcheck_method: auxprop\nsasl_auxprop_plugin: sasldb\n\
             sasl_sasldb_path: {r}/sasldb2\nsasl_mech_list: PLAIN LOGIN\n\
             virtdomains: {}\nhashimapspool: yes\nfulldirhash: {}\nmailbox_legacy_dirs: {}\n\
             unixhierarchysep: yes\naltnamespace: no\nlmtp_downcase_rcpt: yes\n\
             syslog_prefix: cyrus-test\n",
            if layout.virtdomains { "userid" } else { "off" },
            if layout.fulldirhash { "yes" } else { "no" },
            if layout.legacy { "yes" } else { "no" },
        );
        let conf = if dav {
            conf.replace(
                "sasl_mech_list: PLAIN LOGIN\n",
                "sasl_mech_list: PLAIN LOGIN SCRAM-SHA-256\n",
            ) + "httpmodules: caldav carddav\nhttpallowcompress: no\ncaldav_allowscheduling: no\n"
        } else {
            conf
        };
        fs::write(root.join("imapd.conf"), conf).unwrap();
        let http_service = if dav {
            format!(
                "  http cmd=\"httpd {}\" listen=\"127.0.0.1:{http}\" prefork=0\n",
                format_args!("-C {}/imapd.conf", root.display())
            )
        } else {
            String::new()
        };
        let c = format!("-C {r}/imapd.conf");
        fs::write(
            root.join("cyrus.conf"),
            format!(
                "START {{\n  recover cmd=\"ctl_cyrusdb {c} -r\"\n}}\nSERVICES {{\n  \
                 imap cmd=\"imapd {c}\" listen=\"127.0.0.1:{imap}\" prefork=0\n  \
                 lmtp cmd=\"lmtpd {c} -a\" listen=\"127.0.0.1:{lmtp}\" prefork=0\n{http_service}}}\n\
                 EVENTS {{\n}}\nDAEMON {{\n}}\n"
            ),
        )
        .unwrap();
        // The admin's password, in the realm SASL gives a user without a domain (the host name).
        let mut pw = Command::new("saslpasswd2")
            .args(["-p", "-c", "-f"])
            .arg(root.join("sasldb2"))
            .arg("cyrus")
            .stdin(Stdio::piped())
            .spawn()
            .expect("saslpasswd2 (apt-get install sasl2-bin)");
        std::io::Write::write_all(pw.stdin.as_mut().unwrap(), b"secret\n").unwrap();
        drop(pw.stdin.take());
        assert!(pw.wait().unwrap().success(), "saslpasswd2 failed");
        chown_tree(root, cyrus_ids());
        // The cyrus user must reach the folder whatever the umask made of the test's tempdir.
        if let Some(parent) = root.parent() {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let master = spawn_master(root);
        let mut me = Cyrus {
            root: root.to_path_buf(),
            imap,
            lmtp,
            http,
            virtdomains: layout.virtdomains,
            master: Some(master),
        };
        me.wait_listening();
        me
    }

    fn wait_listening(&mut self) {
        let t = Instant::now();
        loop {
            let up = [self.imap, self.lmtp, self.http]
                .iter()
                .filter(|p| **p != 0)
                .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if up {
                return;
            }
            if let Some(Ok(Some(st))) = self.master.as_mut().map(Child::try_wait) {
                panic!(
                    "Cyrus master exited ({st}): {}",
                    fs::read_to_string(self.root.join("master.log")).unwrap_or_default()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "Cyrus did not start listening"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Adds a user to the server's SASL database (for DAV requests as that user).
    pub fn add_user(&self, user: &str, password: &str) {
        let mut pw = Command::new("saslpasswd2")
            .args(["-p", "-c", "-f"])
            .arg(self.root.join("sasldb2"))
            .arg(user)
            .stdin(Stdio::piped())
            .spawn()
            .expect("saslpasswd2");
        std::io::Write::write_all(
            pw.stdin.as_mut().unwrap(),
            format!("{password}\n").as_bytes(),
        )
        .unwrap();
        drop(pw.stdin.take());
        assert!(pw.wait().unwrap().success(), "saslpasswd2 failed");
        chown_tree(&self.root.join("sasldb2"), cyrus_ids());
    }

    pub fn conf(&self) -> PathBuf {
        self.root.join("imapd.conf")
    }

    /// A mailbox's IMAP name: `user/alice/Work@example.org`, or without the domain.
    pub fn mbox(&self, name: &str) -> String {
        if self.virtdomains {
            format!("{name}@example.org")
        } else {
            name.to_string()
        }
    }

    /// A mail address: `alice@example.org`, or `alice` without virtdomains.
    pub fn addr(&self, local: &str) -> String {
        self.mbox(local)
    }

    /// Runs `imap_tool.py` and returns its JSON answer.
    pub fn tool(&self, args: &[&str]) -> Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cyrus/imap_tool.py");
        let out = Command::new("python3")
            .arg(&script)
            .args(args)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "imap_tool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("imap_tool printed no JSON")
    }

    pub fn imap_port(&self) -> String {
        self.imap.to_string()
    }

    pub fn lmtp_port(&self) -> String {
        self.lmtp.to_string()
    }

    /// Runs one of Cyrus' tools with this server's config.
    pub fn run_tool(&self, name: &str, args: &[&str]) -> String {
        let out = Command::new(Path::new(BIN).join(name))
            .arg("-C")
            .arg(self.conf())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name} {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the server again after [`Cyrus::stop`].
    pub fn restart(&mut self) {
        self.stop();
        self.master = Some(spawn_master(&self.root));
        self.wait_listening();
    }

    pub fn stop(&mut self) {
        if let Some(mut m) = self.master.take() {
            let pid = m.id() as i32;
            // SAFETY: signals the server's own process group (master and its services).
            unsafe { libc::kill(-pid, libc::SIGTERM) };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = m.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: as above; whatever is left of the group goes.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = m.wait();
        }
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        self.stop();
    }
}
