//! Signed HTTP requests to an S3-compatible server, retried: `rusty-s3` signs each attempt (a
//! presigned URL, so no header but `host` is signed) and `ureq` sends it on a pooled, blocking
//! connection, which suits the thread-based store code (no async runtime).
//!
//! Transient failures (5xx, 429, refused or reset connections, timeouts, a body cut short) are
//! retried with exponential backoff; everything else is returned at once as an `io::Error` whose
//! kind says what the store code needs to know (`NotFound`, `PermissionDenied`,
//! `UnexpectedEof` for a range past the end). Messages name the S3 operation, the HTTP status and
//! the server's error code, never a URL: a presigned URL carries the access key id and a
//! signature, and the secret key is never formatted anywhere.

use rusty_s3::{Bucket, Credentials};
use std::io::{self, Read};
use std::time::Duration;

/// How long a signed URL stays valid: only for the attempt it is made for.
pub const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);

/// How requests are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Retry {
    /// About 30 s of retries (0.25 s doubling to 8 s): rides out a server restart or a short
    /// network cut.
    pub const DEFAULT: Retry = Retry {
        attempts: 9,
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(8),
    };

    fn delay(&self, attempt: u32) -> Duration {
        let d = self.first_delay.saturating_mul(1u32 << attempt.min(16));
        let jitter = u64::from_str_radix(&super::backend::unique_suffix()[..3], 16).unwrap_or(0);
        d.min(self.max_delay) + Duration::from_millis(jitter % 100)
    }
}

/// A finished request: status, body (empty for HEAD) and the headers the store reads.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_length: Option<u64>,
    pub last_modified: Option<String>,
}

/// One bucket on one server, with its credentials.
pub struct Client {
    agent: ureq::Agent,
    pub bucket: Bucket,
    creds: Credentials,
    pub retry: Retry,
}

/// What to send: the method, an action to sign, extra (unsigned) headers and a body.
pub struct Request<'a> {
    pub op: &'static str,
    pub method: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<&'a [u8]>,
}

/// Outcome of one attempt.
enum Attempt {
    Done(Reply),
    Transient(String),
}

impl Client {
    pub fn new(bucket: Bucket, creds: Credentials, retry: Retry) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .redirects(0)
            .user_agent(concat!("bmbackup/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent,
            bucket,
            creds,
            retry,
        }
    }

    pub fn creds(&self) -> &Credentials {
        &self.creds
    }

    /// Sends `req` to the URL `sign` makes, signed anew at each attempt. A final status of 2xx, 404 or
    /// 416 is returned as a reply (callers decide what those mean); other 4xx are errors.
    pub fn send(&self, req: &Request<'_>, sign: impl Fn() -> url::Url) -> io::Result<Reply> {
        let mut last = String::new();
        for attempt in 0..self.retry.attempts.max(1) {
            if attempt > 0 {
                let delay = self.retry.delay(attempt - 1);
                log::warn!(
                    "S3 {}: {last}; retrying in {:.1} s ({}/{})",
                    req.op,
                    delay.as_secs_f64(),
                    attempt,
                    self.retry.attempts - 1
                );
                std::thread::sleep(delay);
            }
            let url = sign();
            match self.attempt(req, &url)? {
                Attempt::Done(reply) => return Ok(reply),
                Attempt::Transient(why) => last = why,
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "S3 {}: {last} (gave up after {} attempts)",
                req.op, self.retry.attempts
            ),
        ))
    }

    fn attempt(&self, req: &Request<'_>, url: &url::Url) -> io::Result<Attempt> {
        let mut r = self.agent.request_url(req.method, url);
        for (k, v) in &req.headers {
            r = r.set(k, v);
        }
        let result = match req.body {
            Some(b) => r.send_bytes(b),
            None => r.call(),
        };
        let (status, resp) = match result {
            Ok(resp) => (resp.status(), resp),
            Err(ureq::Error::Status(code, resp)) => (code, resp),
            Err(ureq::Error::Transport(t)) => return Ok(Attempt::Transient(transport_text(&t))),
        };
        let content_length = resp
            .header("content-length")
            .and_then(|v| v.trim().parse().ok());
        let last_modified = resp.header("last-modified").map(str::to_string);
        let mut body = Vec::new();
        if req.method != "HEAD" {
            if let Err(e) = resp.into_reader().read_to_end(&mut body) {
                // The connection broke in the middle of the body: the reply is incomplete.
                return Ok(Attempt::Transient(format!("reading the reply: {e}")));
            }
            if (200..300).contains(&status)
                && content_length.is_some_and(|n| n != body.len() as u64)
            {
                return Ok(Attempt::Transient("reply cut short".into()));
            }
        }
        if status >= 500 || status == 429 {
            return Ok(Attempt::Transient(format!(
                "HTTP {status}{}",
                error_code(&body)
            )));
        }
        if (200..300).contains(&status) || status == 404 || status == 416 {
            return Ok(Attempt::Done(Reply {
                status,
                body,
                content_length,
                last_modified,
            }));
        }
        let kind = match status {
            401 | 403 => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        let hint = if kind == io::ErrorKind::PermissionDenied {
            "; check the access key, secret key and region ([s3] in the config file or AWS_*)"
        } else {
            ""
        };
        Err(io::Error::new(
            kind,
            format!("S3 {}: HTTP {status}{}{hint}", req.op, error_code(&body)),
        ))
    }
}

/// A transport error without its URL.
fn transport_text(t: &ureq::Transport) -> String {
    let mut s = t.kind().to_string();
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    if let Some(src) = std::error::Error::source(t) {
        s.push_str(": ");
        s.push_str(&src.to_string());
    }
    s
}

/// ` (Code: Message)` from an S3 error body, when it has one.
fn error_code(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + len].chars().take(200).collect())
    };
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!(" ({c}: {m})"),
        (Some(c), None) => format!(" ({c})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_summarised() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>Bucket not found: x</Message></Error>";
        assert_eq!(error_code(body), " (NoSuchBucket: Bucket not found: x)");
        assert_eq!(error_code(b"plain"), "");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = Retry::DEFAULT;
        assert!(r.delay(0) < Duration::from_millis(400));
        assert!(r.delay(3) >= Duration::from_secs(2));
        assert!(r.delay(30) <= r.max_delay + Duration::from_millis(100));
    }
}
