//! `bmbackup console` for the tests: started on a free port of 127.0.0.1 with a password set,
//! stopped when the guard drops; and a tiny HTTP/1.1 client over a raw TcpStream, so a test
//! can send exactly the bytes it means (`..`, `%2F`, NUL) that a browser would normalise away.

use super::env::Env;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub const CONSOLE_PASSWORD: &str = "console test password";
/// The header that carries the session token.
pub const SESSION: &str = "X-Bmbackup-Session";

pub struct Console {
    pub child: Child,
    pub port: u16,
    pub log: std::path::PathBuf,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Env {
    /// Sets the console password (beside the config file) and starts the console; returns once
    /// it answers. Its stderr (the audit log) goes to `console.log` in the environment.
    pub fn console(&self) -> Console {
        self.console_with_file_limit(None)
    }

    /// [`Env::console`], with the console's open-file limit set to `limit` (soft and hard)
    /// when given. The console is killed with the test process even when the test process
    /// is killed itself (a guard's drop does not run then).
    pub fn console_with_file_limit(&self, limit: Option<u64>) -> Console {
        let mut set = self.cmd(&["console", "--set-password"]);
        set.stdin(Stdio::piped()).stdout(Stdio::null());
        let mut child = set.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{CONSOLE_PASSWORD}\n").as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "console --set-password failed"
        );
        let port = free_port();
        let log = self.path("console.log");
        let mut cmd = self.cmd(&["console", "--listen", &format!("127.0.0.1:{port}")]);
        cmd.env("RUST_LOG", "warn,bmbackup::console=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        // SAFETY: prctl and setrlimit in the child before exec, both async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if let Some(n) = limit {
                    let l = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let mut c = Console { child, port, log };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(st) = c.child.try_wait().unwrap() {
                panic!(
                    "console exited ({st}): {}",
                    std::fs::read_to_string(&c.log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "console did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }
}

/// An answer: status, headers (names lower-cased), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl Console {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// One request, sent exactly as given (`target` is not normalised).
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no header end");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Logs in; returns the session token (sent back in [`SESSION`]).
    pub fn login(&self) -> String {
        let body = serde_json::json!({ "password": CONSOLE_PASSWORD }).to_string();
        let a = self.request(
            "POST",
            "/api/login",
            &[("Content-Type", "application/json")],
            &body,
        );
        assert_eq!(a.status, 200, "login: {}", a.text());
        assert!(
            a.header("set-cookie").is_none(),
            "the console sets no cookie"
        );
        a.json()["token"].as_str().unwrap().to_string()
    }

    /// A GET with the session.
    pub fn get(&self, token: &str, target: &str) -> Answer {
        self.request("GET", target, &[(SESSION, token)], "")
    }

    /// A POST of `body` as JSON with the session.
    pub fn post(&self, token: &str, target: &str, body: &serde_json::Value) -> Answer {
        self.request(
            "POST",
            target,
            &[(SESSION, token), ("Content-Type", "application/json")],
            &body.to_string(),
        )
    }

    /// A download as the page makes it: a ticket for `target` (`<snapshot>/<path>`), then its
    /// URL, with nothing but the URL.
    pub fn download(&self, token: &str, target: &str) -> Answer {
        let t = self.post(
            token,
            &format!("/api/download/{target}"),
            &serde_json::json!({}),
        );
        if t.status != 200 {
            return t;
        }
        self.request("GET", t.json()["url"].as_str().unwrap(), &[], "")
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}
