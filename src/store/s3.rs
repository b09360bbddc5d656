//! The store on S3-compatible object storage (`s3://BUCKET/PREFIX`): its settings (the `[s3]`
//! table of the config file, else the usual `AWS_*` environment variables) and the
//! [`S3Backend`] implementing [`Backend`] on top of [`super::s3http`] (requests signed in
//! headers, retried, counted).
//!
//! Objects map one to one onto S3 objects under PREFIX. Every write is one PUT: S3 makes an
//! object visible whole or not at all, so an upload cut halfway leaves nothing a reader could
//! take for a pack (no temp objects, no multipart). Objects are content-named and immutable, so
//! no write needs a conditional PUT. Reads of blobs are range GETs. Deletes check the object is
//! there first, because S3 answers a delete of a missing object with success and the lock code
//! needs to know whether it removed a lock or found it gone.

use super::backend::Backend;
use super::s3http::{Client, ClientConfig, Reply, Request, Retry, SetupError};
use super::sigv4::Signer;
use serde::Deserialize;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How a store location names a bucket.
pub const SCHEME: &str = "s3://";

/// The `[s3]` table of the config file. Every key may instead come from the environment
/// (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, `AWS_REGION` or `AWS_DEFAULT_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); the file wins.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `http(s)://host[:port]` of the S3 API; AWS's regional endpoint when absent.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Bucket in the path (`endpoint/bucket/key`) rather than in the host name; the default
    /// when an endpoint is given (Garage, MinIO, Ceph RGW), not on AWS.
    pub path_style: Option<bool>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// A PEM file of CA certificates to trust besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// How long a failing request is retried before the command fails (default 30).
    pub retry_seconds: Option<u64>,
    /// Upload bandwidth limit in bytes per second, with an optional K, M or G suffix (powers
    /// of 1024): `"2M"`. Shared by all uploads of a run.
    pub upload_limit: Option<String>,
}

/// Never shows the secret key (the config is logged and printed in errors).
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<hidden>"),
            )
            .field("ca_file", &self.ca_file)
            .field("retry_seconds", &self.retry_seconds)
            .field("upload_limit", &self.upload_limit)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{0}: not an S3 store location; write s3://BUCKET or s3://BUCKET/PREFIX")]
    BadUrl(String),
    #[error("{0}: no S3 credentials; set access_key_id and secret_access_key in the [s3] table of the config file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    NoCredentials(String),
    #[error("S3 endpoint {0:?} is not an http:// or https:// URL ({1}); fix `endpoint` in [s3] or AWS_ENDPOINT_URL")]
    BadEndpoint(String, String),
    #[error("upload_limit {0:?} in [s3]: write bytes per second, e.g. \"500K\" or \"8M\"")]
    BadRate(String),
    #[error("S3: {0}")]
    Setup(#[from] SetupError),
}

/// The settings of the config file this process runs with, set once by the command line
/// front end (see [`configure`]) so that every store opened by location finds them.
static CONFIGURED: parking_lot::RwLock<Option<S3Config>> = parking_lot::RwLock::new(None);

/// Uses `config` (the config file's `[s3]` table) for every S3 store opened from now on.
pub fn configure(config: Option<S3Config>) {
    *CONFIGURED.write() = config;
}

/// `s3://BUCKET/PREFIX` split into bucket and prefix (no leading or trailing `/`), or `None`
/// for a local path.
pub fn parse_location(location: &Path) -> Option<Result<(String, String), S3Error>> {
    let s = location.to_str()?;
    let rest = s.strip_prefix(SCHEME)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid || prefix.split('/').any(|c| c == "." || c == "..") {
        return Some(Err(S3Error::BadUrl(s.to_string())));
    }
    Some(Ok((
        bucket.to_string(),
        prefix.trim_matches('/').to_string(),
    )))
}

/// Whether `location` names an S3 store rather than a folder.
pub fn is_s3(location: &Path) -> bool {
    location.to_str().is_some_and(|s| s.starts_with(SCHEME))
}

/// The settings in force: the config file's, completed from `env`.
struct Resolved {
    endpoint: url::Url,
    path_style: bool,
    signer: Signer,
}

/// `"8M"` as bytes per second.
fn parse_rate(s: &str) -> Result<u64, S3Error> {
    let t = s.trim().trim_end_matches("/s").trim_end_matches(['B', 'b']);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    match num.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok((n * mult as f64).max(1.0) as u64),
        _ => Err(S3Error::BadRate(s.to_string())),
    }
}

fn resolve(
    file: &S3Config,
    env: impl Fn(&str) -> Option<String>,
    location: &str,
) -> Result<Resolved, S3Error> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let region = file
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_string());
    let given = file
        .endpoint
        .clone()
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    let path_style = file.path_style.unwrap_or(given.is_some());
    let endpoint = given.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let url: url::Url = endpoint
        .parse()
        .map_err(|e: url::ParseError| S3Error::BadEndpoint(endpoint.clone(), e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(S3Error::BadEndpoint(endpoint, "no http(s) host".into()));
    }
    let signer = match (&file.access_key_id, &file.secret_access_key) {
        (Some(k), Some(s)) => Signer::new(k, s, &region),
        _ => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(k), Some(s)) => {
                let mut signer = Signer::new(&k, &s, &region);
                signer.session_token = env("AWS_SESSION_TOKEN");
                signer
            }
            _ => return Err(S3Error::NoCredentials(location.to_string())),
        },
    };
    Ok(Resolved {
        endpoint: url,
        path_style,
        signer,
    })
}

/// A store under a prefix of a bucket.
pub struct S3Backend {
    client: Client,
    /// `PREFIX/`, or empty for the whole bucket.
    prefix: String,
    /// `s3://BUCKET/PREFIX`, for messages.
    shown: String,
    /// Keys asked for per listing request (S3's maximum is 1000).
    page_size: usize,
    /// Recently fetched windows of objects, by key and window number (see [`WINDOW`]).
    windows: parking_lot::Mutex<Windows>,
    /// The reads a restore announced (see [`super::s3plan`]).
    plan: parking_lot::Mutex<Option<super::s3plan::Plan>>,
}

/// Windows of objects by key and window number.
type Windows = lru::LruCache<(String, u64), Arc<Vec<u8>>>;

/// Small reads fetch the aligned 1 MiB window of the object around them and keep it: a restore
/// or the mount reads the blobs of files backed up together one after the other, and they sit
/// side by side in a pack, so one request serves many of them (each request costs a round
/// trip, tens of milliseconds on object storage). Larger reads are fetched as asked.
pub const WINDOW: u64 = 1 << 20;
/// Windows kept per process (16 MiB).
const WINDOWS_KEPT: usize = 16;
/// Windows fetched ahead of a sequential read, with it (so 4 requests in flight).
const READ_AHEAD: u64 = 3;

impl S3Backend {
    /// Connects (lazily: no request is made) to the store at `location` with the configured
    /// settings and the process environment.
    pub fn open(location: &Path) -> Result<S3Backend, S3Error> {
        let shown = location.display().to_string();
        let (bucket, prefix) = match parse_location(location) {
            Some(r) => r?,
            None => return Err(S3Error::BadUrl(shown)),
        };
        let file = CONFIGURED.read().clone().unwrap_or_default();
        let r = resolve(&file, |k| std::env::var(k).ok(), &shown)?;
        let mut retry = Retry::DEFAULT;
        if let Some(s) = file.retry_seconds {
            retry.budget = Duration::from_secs(s);
        }
        let upload_limit = file.upload_limit.as_deref().map(parse_rate).transpose()?;
        let client = Client::new(ClientConfig {
            endpoint: r.endpoint,
            bucket,
            path_style: r.path_style,
            signer: r.signer,
            retry,
            ca_file: file.ca_file.clone(),
            upload_limit,
            env: |k| std::env::var(k).ok(),
        })?;
        let prefix = if prefix.is_empty() {
            prefix
        } else {
            prefix + "/"
        };
        Ok(S3Backend {
            client,
            prefix,
            shown: shown.trim_end_matches('/').to_string(),
            page_size: 1000,
            windows: parking_lot::Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(WINDOWS_KEPT).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            plan: parking_lot::Mutex::new(None),
        })
    }

    /// Lists `n` keys per request (tests make listings span several pages).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 1000);
        self
    }

    /// Changes how requests are retried (tests make failures quick).
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.client.retry = retry;
        self
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn get(&self, op: &'static str, key: &str, range: Option<(u64, usize)>) -> io::Result<Reply> {
        let full = self.full(key);
        let mut req = Request::new(op, "GET", Some(&full));
        if let Some((o, n)) = range {
            req.headers
                .push(("range", format!("bytes={o}-{}", o + n as u64 - 1)));
        }
        let reply = self.client.send(&req)?;
        if reply.status == 404 {
            return Err(not_found(op));
        }
        Ok(reply)
    }

    fn head(&self, key: &str) -> io::Result<Reply> {
        let full = self.full(key);
        let reply = self
            .client
            .send(&Request::new("HEAD", "HEAD", Some(&full)))?;
        if reply.status == 404 {
            return Err(not_found("HEAD"));
        }
        Ok(reply)
    }

    /// Every object whose key starts with `prefix` (a folder path ending in `/`, relative to
    /// the store), with sizes, one page of up to 1000 at a time; with `folders`, only those
    /// directly inside it plus the sub-folders' names (ending in `/`).
    fn list_pages(&self, prefix: &str, folders: bool) -> io::Result<Vec<(String, u64)>> {
        let full = self.full(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = Request::new("LIST", "GET", None);
            req.query.push(("list-type", "2".into()));
            req.query.push(("prefix", full.clone()));
            req.query.push(("max-keys", self.page_size.to_string()));
            if folders {
                req.query.push(("delimiter", "/".into()));
            }
            if let Some(t) = &token {
                req.query.push(("continuation-token", t.clone()));
            }
            let reply = self.client.send(&req)?;
            if reply.status == 404 {
                return Err(io::Error::other(format!(
                    "S3 LIST: HTTP 404 (no such bucket {:?}?)",
                    self.client.bucket()
                )));
            }
            let text = String::from_utf8_lossy(&reply.body);
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("S3 LIST: unreadable reply: {e}"),
                )
            })?;
            for o in page.contents {
                if let Some(rel) = o.key.strip_prefix(&full) {
                    out.push((rel.to_string(), o.size));
                }
            }
            for p in page.common_prefixes {
                if let Some(rel) = p.prefix.strip_prefix(&full) {
                    out.push((rel.to_string(), 0));
                }
            }
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Up to `len` bytes at `offset` (fewer where the object ends).
    fn fetch_range(&self, key: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let reply = self.get("GET range", key, Some((offset, len)))?;
        // 416: the range starts past the end. A server may also answer 200 with the whole
        // object (ranges are optional in HTTP): cut it.
        Ok(match reply.status {
            416 => Vec::new(),
            206 => reply.body,
            _ => reply
                .body
                .get(offset as usize..)
                .map(|b| b[..b.len().min(len)].to_vec())
                .unwrap_or_default(),
        })
    }

    /// Window `i` of `key` (shorter at the end of the object), fetched once while kept.
    /// When the window before it is kept whole (a sequential read: the mount reading a file,
    /// `cat` of a big message), the next [`READ_AHEAD`] windows are fetched along with it,
    /// all at once.
    fn window(&self, key: &str, i: u64) -> io::Result<Arc<Vec<u8>>> {
        let id = (key.to_string(), i);
        let ahead: Vec<u64> = {
            let mut windows = self.windows.lock();
            if let Some(w) = windows.get(&id) {
                return Ok(Arc::clone(w));
            }
            let sequential = i > 0
                && windows
                    .peek(&(key.to_string(), i - 1))
                    .is_some_and(|w| w.len() as u64 == WINDOW);
            if sequential {
                (i + 1..=i + READ_AHEAD)
                    .filter(|j| !windows.contains(&(key.to_string(), *j)))
                    .collect()
            } else {
                Vec::new()
            }
        };
        if ahead.is_empty() {
            let w = Arc::new(self.fetch_range(key, i * WINDOW, WINDOW as usize)?);
            self.windows.lock().put(id, Arc::clone(&w));
            return Ok(w);
        }
        let fetched: Vec<(u64, io::Result<Vec<u8>>)> = std::thread::scope(|s| {
            let running: Vec<_> = std::iter::once(i)
                .chain(ahead)
                .map(|j| {
                    let h = s.spawn(move || self.fetch_range(key, j * WINDOW, WINDOW as usize));
                    (j, h)
                })
                .collect();
            running
                .into_iter()
                .map(|(j, h)| {
                    let r = h
                        .join()
                        .unwrap_or_else(|_| Err(io::Error::other("S3 read thread panicked")));
                    (j, r)
                })
                .collect()
        });
        let mut windows = self.windows.lock();
        let mut asked = None;
        for (j, r) in fetched {
            match r {
                Ok(w) => {
                    let w = Arc::new(w);
                    // Windows past the object's end come back empty: not worth keeping.
                    if j == i || !w.is_empty() {
                        windows.put((key.to_string(), j), Arc::clone(&w));
                    }
                    if j == i {
                        asked = Some(Ok(w));
                    }
                }
                // A failed read-ahead is only a loss of time; the asked window's error counts.
                Err(e) if j == i => asked = Some(Err(e)),
                Err(_) => {}
            }
        }
        asked.unwrap_or_else(|| Err(io::Error::other("S3 window not fetched")))
    }

    /// Serves a read from the read plan, fetching its range and the next ones first (several
    /// requests at once); `None` when the read is not planned.
    fn planned_read(&self, key: &str, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
        let (idx, batch) = {
            let mut guard = self.plan.lock();
            let Some(plan) = guard.as_mut() else {
                return Ok(None);
            };
            let Some(idx) = plan.find(key, offset, len) else {
                return Ok(None);
            };
            if let Some(b) = plan.take(idx, offset, len) {
                return Ok(Some(b));
            }
            if plan.is_held(idx) {
                return Ok(None); // held but short: the usual path reports it
            }
            (idx, plan.batch(idx))
        };
        let results: Vec<(usize, io::Result<Vec<u8>>)> = std::thread::scope(|s| {
            let running: Vec<_> = batch
                .iter()
                .map(|(i, k, start, end)| {
                    let n = (end - start) as usize;
                    (*i, s.spawn(move || self.fetch_range(k, *start, n)))
                })
                .collect();
            running
                .into_iter()
                .map(|(i, h)| {
                    let r = h
                        .join()
                        .unwrap_or_else(|_| Err(io::Error::other("S3 read thread panicked")));
                    (i, r)
                })
                .collect()
        });
        let mut guard = self.plan.lock();
        let Some(plan) = guard.as_mut() else {
            return Ok(None);
        };
        let mut failed = None;
        for (i, r) in results {
            match r {
                Ok(d) => plan.fetched(i, Some(d)),
                Err(e) => {
                    plan.fetched(i, None);
                    if i == idx {
                        failed = Some(e);
                    }
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(plan.take(idx, offset, len))
    }

    /// Total bytes stored under the store's prefix.
    pub fn stored_bytes(&self) -> io::Result<u64> {
        Ok(self.list_pages("", false)?.iter().map(|(_, n)| n).sum())
    }
}

fn not_found(op: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("S3 {op}: no such object (HTTP 404)"),
    )
}

fn folder(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

impl Backend for S3Backend {
    fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let full = self.full(key);
        let mut req = Request::new("PUT", "PUT", Some(&full));
        req.body = Some(data);
        let reply = self.client.send(&req)?;
        if reply.status == 404 {
            return Err(io::Error::other(format!(
                "S3 PUT: HTTP 404 (no such bucket {:?}?)",
                self.client.bucket()
            )));
        }
        Ok(())
    }

    fn read_range(&self, key: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        if len == 0 {
            let size = self.size(key)?;
            return if offset <= size {
                Ok(Vec::new())
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if let Some(bytes) = self.planned_read(key, offset, len)? {
            return Ok(bytes);
        }
        let bytes = if len as u64 > WINDOW / 4 {
            self.fetch_range(key, offset, len)?
        } else {
            let end = offset.saturating_add(len as u64);
            let mut out = Vec::with_capacity(len);
            for i in offset / WINDOW..=(end - 1) / WINDOW {
                let w = self.window(key, i)?;
                let from = offset.saturating_sub(i * WINDOW) as usize;
                let avail = w.get(from..).unwrap_or(&[]);
                out.extend_from_slice(&avail[..avail.len().min(len - out.len())]);
                if (w.len() as u64) < WINDOW {
                    break; // the object ends in this window
                }
            }
            out
        };
        if bytes.len() != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "object is shorter than {} bytes",
                    offset.saturating_add(len as u64)
                ),
            ));
        }
        Ok(bytes)
    }

    fn read_all(&self, key: &str) -> io::Result<Vec<u8>> {
        Ok(self.get("GET", key, None)?.body)
    }

    fn size(&self, key: &str) -> io::Result<u64> {
        self.head(key)?
            .content_length
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "S3 HEAD: no Content-Length"))
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .list_pages(&folder(prefix), true)?
            .into_iter()
            .map(|(n, _)| n.trim_end_matches('/').to_string())
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn list_deep(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .list_pages(&folder(prefix), false)?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        self.forget(key);
        // S3 deletes a missing object "successfully": look first, so that a lock removed by
        // someone else is seen as gone (see store::lock).
        self.head(key)?;
        let full = self.full(key);
        self.client
            .send(&Request::new("DELETE", "DELETE", Some(&full)))?;
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        // Only repair moves objects (damaged ones, set aside): rare and small enough to copy.
        self.forget(to);
        let data = self.read_all(from)?;
        self.write_atomic(to, &data)?;
        self.delete(from)
    }

    fn modified(&self, key: &str) -> io::Result<SystemTime> {
        let reply = self.head(key)?;
        let text = reply.last_modified.unwrap_or_default();
        httpdate::parse_http_date(&text).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("S3 HEAD: unreadable Last-Modified {text:?}"),
            )
        })
    }

    fn describe(&self, key: &str) -> String {
        format!("{}/{key}", self.shown)
    }

    fn plans_reads(&self) -> bool {
        true
    }

    fn plan_reads(&self, reads: Vec<(String, u64, usize)>) {
        let plan = (!reads.is_empty()).then(|| super::s3plan::Plan::new(&reads));
        if let Some(p) = &plan {
            let (ranges, bytes) = p.size();
            log::debug!(
                "S3 read plan: {} reads in {ranges} ranges, {bytes} bytes",
                reads.len()
            );
        }
        *self.plan.lock() = plan;
    }

    fn forget(&self, key: &str) {
        if let Some(p) = self.plan.lock().as_mut() {
            p.forget(key);
        }
        let mut windows = self.windows.lock();
        let kept: Vec<(String, u64)> = windows
            .iter()
            .filter(|((k, _), _)| k == key)
            .map(|(id, _)| id.clone())
            .collect();
        for id in kept {
            windows.pop(&id);
        }
    }

    fn stored_bytes(&self) -> io::Result<Option<u64>> {
        S3Backend::stored_bytes(self).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let p = |s: &str| parse_location(Path::new(s));
        assert_eq!(
            p("s3://bk/a/b/").unwrap().unwrap(),
            ("bk".into(), "a/b".into())
        );
        assert_eq!(p("s3://bk").unwrap().unwrap(), ("bk".into(), "".into()));
        assert!(p("/srv/store").is_none());
        assert!(p("s3://").unwrap().is_err());
        assert!(p("s3://Bad_Name/x").unwrap().is_err());
        assert!(p("s3://bk/../x").unwrap().is_err());
    }

    #[test]
    fn settings_come_from_the_file_then_the_environment() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKENV".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_string()),
            "AWS_REGION" => Some("eu-west-3".to_string()),
            _ => None,
        };
        let r = resolve(&S3Config::default(), env, "s3://b").unwrap();
        assert_eq!(r.signer.access_key, "AKENV");
        assert_eq!(r.signer.region, "eu-west-3");
        assert_eq!(r.endpoint.as_str(), "https://s3.eu-west-3.amazonaws.com/");
        assert!(!r.path_style);
        let file = S3Config {
            endpoint: Some("http://127.0.0.1:3900".into()),
            region: Some("garage".into()),
            path_style: None,
            access_key_id: Some("GKfile".into()),
            secret_access_key: Some("filesecret".into()),
            ..S3Config::default()
        };
        let r = resolve(&file, env, "s3://b").unwrap();
        assert_eq!(
            (r.signer.access_key.as_str(), r.signer.region.as_str()),
            ("GKfile", "garage")
        );
        assert!(r.path_style, "a custom endpoint defaults to path style");
        let none = resolve(&S3Config::default(), |_| None, "s3://b/p")
            .err()
            .unwrap();
        assert!(none.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{none}");
    }

    #[test]
    fn upload_limits_parse() {
        assert_eq!(parse_rate("500K").unwrap(), 500 << 10);
        assert_eq!(parse_rate("8M").unwrap(), 8 << 20);
        assert_eq!(parse_rate("1.5 MB/s").unwrap(), 3 << 19);
        assert_eq!(parse_rate("1000").unwrap(), 1000);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let c = S3Config {
            secret_access_key: Some("s3cr3t-value".into()),
            access_key_id: Some("GK1".into()),
            ..S3Config::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t-value") && shown.contains("GK1"),
            "{shown}"
        );
    }
}
