//! HTTP requests to an S3-compatible server: signed in the `Authorization` header with the
//! body's hash ([`super::sigv4`]), sent by `ureq` on a pooled blocking connection (the store code
//! is thread-based, no async runtime), retried within a time budget, counted.
//!
//! What cannot heal fails at once: an unknown host, a TLS failure (untrusted certificate,
//! `https://` to a plain HTTP port), a 4xx other than 408 and 429. The rest (5xx, 408, 429,
//! refused or reset connections, timeouts, a body cut short) is retried with exponential backoff
//! until [`Retry::budget`] is spent; the final error gives the last cause the server itself gave
//! (e.g. `HTTP 503 (ServiceUnavailable: Could not reach quorum)`), not only the last broken
//! pipe. Errors are `io::Error`s whose kind says what the store code needs (`NotFound`,
//! `PermissionDenied`); their messages name the operation, the status and the server's error
//! code, never a signature or the secret key.
//!
//! Every exchange is counted process-wide ([`totals`]): requests per operation, bytes each way,
//! retries, latency, for the `-v` summary and the metrics file.

pub use super::s3traffic::{totals, Totals};
use super::s3traffic::{Throttle, Throttled, STATS};
use super::sigv4::{self, Signer};
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How failed requests are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Time spent retrying one request at most (from its first attempt); zero: no retry.
    pub budget: Duration,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Retry {
    /// 30 s of retries (0.25 s doubling to 8 s): rides out a server restart or a short
    /// network cut.
    pub const DEFAULT: Retry = Retry {
        budget: Duration::from_secs(30),
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

/// Where and how to connect.
pub struct ClientConfig {
    /// `http(s)://host[:port][/path]` of the S3 API.
    pub endpoint: url::Url,
    pub bucket: String,
    /// Bucket in the path rather than in the host name.
    pub path_style: bool,
    pub signer: Signer,
    pub retry: Retry,
    /// A PEM file of certificates to trust besides the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Upload bandwidth limit in bytes per second, shared by all uploads of the process.
    pub upload_limit: Option<u64>,
    /// `HTTPS_PROXY` and friends (a function for tests).
    pub env: fn(&str) -> Option<String>,
}

/// One bucket on one server, with its credentials.
pub struct Client {
    agent: ureq::Agent,
    endpoint: url::Url,
    bucket: String,
    path_style: bool,
    signer: Signer,
    pub retry: Retry,
    throttle: Option<Arc<Throttle>>,
    /// The proxy requests go through, for messages.
    proxy: Option<String>,
}

/// What to send. Headers are signed along with the method, path, query and body hash.
pub struct Request<'a> {
    pub op: &'static str,
    pub method: &'static str,
    /// The object's full key, or `None` for the bucket itself.
    pub key: Option<&'a str>,
    /// Query parameters, not encoded.
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    pub fn new(op: &'static str, method: &'static str, key: Option<&'a str>) -> Self {
        Request {
            op,
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }
}

/// Why a client cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("ca_file {0}: {1}; give a PEM file of CA certificates")]
    CaFile(String, String),
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error("proxy {0:?} from {1}: {2}; fix or unset {1}")]
    Proxy(String, &'static str, String),
}

/// Outcome of one attempt that did not end the request.
struct Transient {
    why: String,
    /// Whether the server answered (a status), rather than the connection failing.
    from_server: bool,
}

impl Client {
    pub fn new(c: ClientConfig) -> Result<Client, SetupError> {
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .redirects(0)
            .user_agent(concat!("bmbackup/", env!("CARGO_PKG_VERSION")));
        if c.endpoint.scheme() == "https" {
            b = b.tls_config(tls_config(c.ca_file.as_deref())?);
        }
        let proxy = match proxy_for(&c.endpoint, c.env) {
            Some((var, p)) => {
                let proxy = ureq::Proxy::new(&p)
                    .map_err(|e| SetupError::Proxy(p.clone(), var, e.to_string()))?;
                b = b.proxy(proxy);
                Some(p)
            }
            None => None,
        };
        Ok(Client {
            agent: b.build(),
            endpoint: c.endpoint,
            bucket: c.bucket,
            path_style: c.path_style,
            signer: c.signer,
            retry: c.retry,
            throttle: c.upload_limit.map(Throttle::shared),
            proxy,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn region(&self) -> &str {
        &self.signer.region
    }

    /// The URL of `req` (path and query encoded once, as signed) and its `Host` header.
    fn url(&self, req: &Request<'_>) -> (url::Url, String, Vec<(String, String)>) {
        let e = &self.endpoint;
        let host = e.host_str().unwrap_or_default();
        let host = if self.path_style {
            host.to_string()
        } else {
            format!("{}.{host}", self.bucket)
        };
        let host = match e.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let mut path = e.path().trim_end_matches('/').to_string();
        if self.path_style {
            path.push('/');
            path.push_str(&self.bucket);
        }
        path.push('/');
        path.push_str(req.key.unwrap_or(""));
        let path = sigv4::uri_encode(&path, true);
        let query: Vec<(String, String)> = req
            .query
            .iter()
            .map(|(k, v)| (sigv4::uri_encode(k, false), sigv4::uri_encode(v, false)))
            .collect();
        let mut text = format!("{}://{host}{path}", e.scheme());
        for (i, (k, v)) in query.iter().enumerate() {
            text.push(if i == 0 { '?' } else { '&' });
            text.push_str(&format!("{k}={v}"));
        }
        // Built from a URL that parsed and encoded parts: it parses again.
        let url = url::Url::parse(&text).unwrap_or_else(|_| e.clone());
        (url, host, query)
    }

    /// Sends `req`, signed anew at each attempt. A final status of 2xx, 404 or 416 is returned
    /// as a reply (callers decide what those mean); other 4xx are errors.
    pub fn send(&self, req: &Request<'_>) -> io::Result<Reply> {
        let start = Instant::now();
        let mut attempt = 0u32;
        let mut server_said: Option<String> = None;
        loop {
            let t = Instant::now();
            let result = self.attempt(req);
            STATS.count(req.op, req.method, t.elapsed());
            let why = match result? {
                Ok(reply) => return Ok(reply),
                Err(t) => t,
            };
            if why.from_server {
                server_said = Some(why.why.clone());
            }
            let delay = self.retry.delay(attempt);
            if start.elapsed() + delay > self.retry.budget {
                STATS.failures.fetch_add(1, Ordering::Relaxed);
                let cause = match &server_said {
                    Some(s) if *s != why.why => format!("{s} (the last attempt: {})", why.why),
                    _ => why.why,
                };
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "S3 {}: {cause}; gave up after {} attempts in {:.0} s (retry_seconds in [s3])",
                        req.op,
                        attempt + 1,
                        start.elapsed().as_secs_f64()
                    ),
                ));
            }
            attempt += 1;
            STATS.retries.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "S3 {}: {}; retrying in {:.1} s (attempt {})",
                req.op,
                why.why,
                delay.as_secs_f64(),
                attempt + 1
            );
            std::thread::sleep(delay);
        }
    }

    /// One exchange: a reply, a transient failure, or an error that retrying cannot mend.
    fn attempt(&self, req: &Request<'_>) -> io::Result<Result<Reply, Transient>> {
        let (url, host, query) = self.url(req);
        let body = req.body.unwrap_or(&[]);
        let hash = if body.is_empty() {
            sigv4::EMPTY_SHA256.to_string()
        } else {
            sigv4::payload_hash(body)
        };
        let amz_date = sigv4::amz_date(SystemTime::now());
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host),
            ("x-amz-content-sha256".into(), hash.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if let Some(t) = &self.signer.session_token {
            headers.push(("x-amz-security-token".into(), t.clone()));
        }
        if req.body.is_some() {
            headers.push(("content-length".into(), body.len().to_string()));
        }
        for (k, v) in &req.headers {
            headers.push((k.to_string(), v.clone()));
        }
        let path = url.path().to_string();
        let auth = self.signer.authorization(
            &amz_date,
            &sigv4::Canonical {
                method: req.method,
                path: &path,
                query: &query,
                headers: &headers,
                payload_sha256: &hash,
            },
        );
        let mut r = self.agent.request_url(req.method, &url);
        for (k, v) in &headers {
            r = r.set(k, v);
        }
        r = r.set("authorization", &auth);
        let result = match req.body {
            Some(b) => match &self.throttle {
                Some(t) => r.send(Throttled {
                    inner: b,
                    throttle: t,
                }),
                None => r.send_bytes(b),
            },
            None => r.call(),
        };
        let (status, resp) = match result {
            Ok(resp) => (resp.status(), resp),
            Err(ureq::Error::Status(code, resp)) => (code, resp),
            Err(ureq::Error::Transport(t)) => return self.transport(req, &t),
        };
        STATS
            .bytes_up
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let content_length = resp
            .header("content-length")
            .and_then(|v| v.trim().parse().ok());
        let last_modified = resp.header("last-modified").map(str::to_string);
        let bucket_region = resp.header("x-amz-bucket-region").map(str::to_string);
        let mut body = Vec::new();
        if req.method != "HEAD" {
            let read = resp.into_reader().read_to_end(&mut body);
            STATS
                .bytes_down
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            if let Err(e) = read {
                // The connection broke in the middle of the body: the reply is incomplete.
                return Ok(Err(Transient {
                    why: format!("reading the reply: {e}"),
                    from_server: false,
                }));
            }
            if (200..300).contains(&status)
                && content_length.is_some_and(|n| n != body.len() as u64)
            {
                return Ok(Err(Transient {
                    why: "reply cut short".into(),
                    from_server: false,
                }));
            }
        }
        if status >= 500 || status == 429 || status == 408 {
            return Ok(Err(Transient {
                why: format!("HTTP {status}{}", error_code(&body)),
                from_server: true,
            }));
        }
        let code = xml_tag(&body, "Code");
        if (200..300).contains(&status) || status == 416 {
            return Ok(Ok(Reply {
                status,
                body,
                content_length,
                last_modified,
            }));
        }
        if status == 404 && code.as_deref() != Some("NoSuchBucket") {
            return Ok(Ok(Reply {
                status,
                body,
                content_length,
                last_modified,
            }));
        }
        Err(self.refused(req, status, &body, code.as_deref(), bucket_region))
    }

    /// The error for a 4xx that retrying cannot mend, with the likely cause.
    fn refused(
        &self,
        req: &Request<'_>,
        status: u16,
        body: &[u8],
        code: Option<&str>,
        bucket_region: Option<String>,
    ) -> io::Error {
        let (b, region) = (&self.bucket, &self.signer.region);
        let message = xml_tag(body, "Message").unwrap_or_default();
        let bucket_region = bucket_region.or_else(|| expected_region(&message));
        let region_hint = || {
            match &bucket_region {
            Some(r) if r != region => format!(
                "; the server expects region {r:?}, not {region:?}: fix `region` in [s3] or AWS_REGION"
            ),
            _ => format!(
                "; is the region {region:?} right for bucket {b:?}? (`region` in [s3] or AWS_REGION)"
            ),
        }
        };
        let region_problem = status == 301
            || bucket_region.as_ref().is_some_and(|r| r != region)
            || matches!(
                code,
                Some(
                    "AuthorizationHeaderMalformed"
                        | "PermanentRedirect"
                        | "IllegalLocationConstraintException"
                )
            )
            || message.to_ascii_lowercase().contains("region");
        let (kind, hint) = if code == Some("NoSuchBucket") || (status == 404 && req.key.is_none()) {
            (
                io::ErrorKind::Other,
                format!(
                    "; the bucket {b:?} does not exist at {}: create it, or fix the store location",
                    self.endpoint
                ),
            )
        } else if region_problem {
            (io::ErrorKind::Other, region_hint())
        } else if status == 401 || status == 403 {
            (
                io::ErrorKind::PermissionDenied,
                "; check the access key, secret key and region ([s3] in the config file or AWS_*)"
                    .to_string(),
            )
        } else {
            (io::ErrorKind::Other, String::new())
        };
        io::Error::new(
            kind,
            format!("S3 {}: HTTP {status}{}{hint}", req.op, error_code(body)),
        )
    }

    /// A transport failure: transient, or an error at once when it cannot heal.
    fn transport(
        &self,
        req: &Request<'_>,
        t: &ureq::Transport,
    ) -> io::Result<Result<Reply, Transient>> {
        let text = transport_text(t);
        let host = self.endpoint.host_str().unwrap_or_default();
        let fatal = |hint: String| {
            STATS.failures.fetch_add(1, Ordering::Relaxed);
            Err(io::Error::other(format!("S3 {}: {text}{hint}", req.op)))
        };
        match t.kind() {
            ureq::ErrorKind::Dns => {
                return fatal(format!(
                    "; cannot resolve {host:?}: fix `endpoint` in [s3] or AWS_ENDPOINT_URL"
                ))
            }
            ureq::ErrorKind::InvalidUrl
            | ureq::ErrorKind::UnknownScheme
            | ureq::ErrorKind::InvalidProxyUrl
            | ureq::ErrorKind::ProxyUnauthorized => return fatal(String::new()),
            _ => {}
        }
        if let Some(tls) = rustls_error(t) {
            let hint = match tls {
                rustls::Error::InvalidCertificate(_) => format!(
                    "; the server's certificate is not trusted: give its CA in `ca_file` of [s3] \
                     (or the system's trust store), or fix `endpoint` ({})",
                    self.endpoint
                ),
                rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                    format!(
                        "; does {} speak TLS? (https:// to a plain HTTP port: write http://)",
                        self.endpoint
                    )
                }
                _ => String::new(),
            };
            return fatal(hint);
        }
        let via = match &self.proxy {
            Some(p) => format!(" (through the proxy {p})"),
            None => String::new(),
        };
        Ok(Err(Transient {
            why: format!("{text}{via}"),
            from_server: false,
        }))
    }
}

/// The rustls error behind a transport failure, if TLS failed.
fn rustls_error(t: &ureq::Transport) -> Option<&rustls::Error> {
    let mut e: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(err) = e {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = err
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        e = err.source();
    }
    None
}

/// The system's trust roots (`SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured), plus `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, SetupError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        log::debug!("system certificates: {e}");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    log::debug!("TLS: {added} system roots ({ignored} unusable)");
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| SetupError::CaFile(shown.clone(), e.to_string()))?;
        let mut n = 0;
        for c in certs {
            let c = c.map_err(|e| SetupError::CaFile(shown.clone(), e.to_string()))?;
            roots
                .add(c)
                .map_err(|e| SetupError::CaFile(shown.clone(), e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(SetupError::CaFile(shown, "no certificate in it".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The proxy for `endpoint` from the environment (`HTTPS_PROXY` for https, `HTTP_PROXY` for
/// http, lower case too), unless `NO_PROXY` names its host: the variable and its value.
fn proxy_for(
    endpoint: &url::Url,
    env: fn(&str) -> Option<String>,
) -> Option<(&'static str, String)> {
    let get = |k: &'static str| env(k).filter(|v| !v.trim().is_empty()).map(|v| (k, v));
    let found = if endpoint.scheme() == "https" {
        get("HTTPS_PROXY").or_else(|| get("https_proxy"))
    } else {
        get("HTTP_PROXY").or_else(|| get("http_proxy"))
    }
    .or_else(|| get("ALL_PROXY"))
    .or_else(|| get("all_proxy"))?;
    let host = endpoint
        .host_str()?
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    let no_proxy = env("NO_PROXY")
        .or_else(|| env("no_proxy"))
        .unwrap_or_default();
    let excluded = no_proxy.split(',').map(str::trim).any(|p| {
        let p = p
            .trim_start_matches('*')
            .trim_start_matches('.')
            .to_ascii_lowercase();
        let p = p.split(':').next().unwrap_or("");
        p == "*" || (!p.is_empty() && (host == p || host.ends_with(&format!(".{p}"))))
    }) || no_proxy.trim() == "*";
    (!excluded).then_some(found)
}

/// A transport error without its URL.
fn transport_text(t: &ureq::Transport) -> String {
    let mut s = t.kind().to_string();
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    let mut e = std::error::Error::source(t);
    while let Some(err) = e {
        s.push_str(": ");
        s.push_str(&err.to_string());
        e = err.source();
    }
    s
}

/// The text of `<name>` in an S3 XML body, at most 200 characters.
fn xml_tag(body: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    let raw: String = text[start..start + len].chars().take(200).collect();
    Some(
        raw.replace("&apos;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The region a server says it expects, from a message such as Garage's "unexpected scope:
/// '…/eu-west-3/s3/aws4_request', expected: '…/garage/s3/aws4_request'" or AWS's "the region
/// 'x' is wrong; expecting 'y'".
fn expected_region(message: &str) -> Option<String> {
    let (_, rest) = message
        .split_once("expected: '")
        .or_else(|| message.split_once("expecting '"))?;
    let quoted = rest.split('\'').next()?;
    let region = match quoted.split('/').collect::<Vec<_>>()[..] {
        [_, region, ..] => region,
        _ => quoted,
    };
    (!region.is_empty()).then(|| region.to_string())
}

/// ` (Code: Message)` from an S3 error body, when it has one.
fn error_code(body: &[u8]) -> String {
    match (xml_tag(body, "Code"), xml_tag(body, "Message")) {
        (Some(c), Some(m)) => format!(" ({c}: {m})"),
        (Some(c), None) => format!(" ({c})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn error_bodies_are_summarised() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>Bucket not found: x</Message></Error>";
        assert_eq!(error_code(body), " (NoSuchBucket: Bucket not found: x)");
        assert_eq!(error_code(b"plain"), "");
    }

    #[test]
    fn the_expected_region_is_read_from_the_message() {
        let garage = "Authorization header malformed, unexpected scope: '20261208/eu-west-3/s3/aws4_request', expected: '20261208/garage/s3/aws4_request'";
        assert_eq!(expected_region(garage).as_deref(), Some("garage"));
        let aws = "the region 'us-east-1' is wrong; expecting 'eu-west-3'";
        assert_eq!(expected_region(aws).as_deref(), Some("eu-west-3"));
        assert_eq!(expected_region("Access Denied"), None);
        assert_eq!(
            xml_tag(b"<Message>a &apos;b&apos; &amp; c</Message>", "Message").as_deref(),
            Some("a 'b' & c")
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = Retry::DEFAULT;
        assert!(r.delay(0) < Duration::from_millis(400));
        assert!(r.delay(3) >= Duration::from_secs(2));
        assert!(r.delay(30) <= r.max_delay + Duration::from_millis(100));
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn client(endpoint: &str, budget: Duration) -> Client {
        Client::new(ClientConfig {
            endpoint: endpoint.parse().unwrap(),
            bucket: "bk".into(),
            path_style: true,
            signer: Signer::new("GKtest", "not-a-real-secret", "garage"),
            retry: Retry {
                budget,
                first_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(100),
            },
            ca_file: None,
            upload_limit: None,
            env: no_env,
        })
        .unwrap()
    }

    /// A server on 127.0.0.1 answering every connection with `reply` (then closing it);
    /// returns its endpoint and a counter of connections.
    fn fake_server(reply: &'static str) -> (String, Arc<AtomicU64>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", l.local_addr().unwrap());
        let seen = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&seen);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                counter.fetch_add(1, Ordering::Relaxed);
                let mut buf = [0u8; 4096];
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = s.read(&mut buf);
                let _ = s.write_all(reply.as_bytes());
            }
        });
        (endpoint, seen)
    }

    fn xml_reply(status: &str, code: &str, message: &str) -> &'static str {
        let body = format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>");
        Box::leak(
            format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        )
    }

    #[test]
    fn the_final_error_gives_the_servers_last_cause() {
        let (ep, seen) = fake_server(xml_reply(
            "503 Service Unavailable",
            "ServiceUnavailable",
            "Could not reach quorum of 2 (sets=[[a, b, c]]). 1 of 3 request succeeded",
        ));
        let c = client(&ep, Duration::from_millis(300));
        let e = c
            .send(&Request::new("PUT", "PUT", Some("k")))
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(
            text.contains("HTTP 503") && text.contains("Could not reach quorum"),
            "{text}"
        );
        assert!(text.contains("gave up after"), "{text}");
        assert!(seen.load(Ordering::Relaxed) >= 2, "retried");
    }

    #[test]
    fn refusals_fail_at_once_and_say_why() {
        let (ep, seen) = fake_server(xml_reply(
            "400 Bad Request",
            "AuthorizationHeaderMalformed",
            "Authorization header malformed, unexpected scope: 20261207/garage/s3/aws4_request",
        ));
        let c = client(&ep, Duration::from_secs(20));
        let t = Instant::now();
        let e = c
            .send(&Request::new("GET", "GET", Some("k")))
            .err()
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(seen.load(Ordering::Relaxed), 1, "not retried");
        let text = e.to_string();
        assert!(text.contains("region \"garage\""), "{text}");

        let (ep, _) = fake_server(xml_reply(
            "404 Not Found",
            "NoSuchBucket",
            "Bucket not found: bk",
        ));
        let e = client(&ep, Duration::from_secs(20))
            .send(&Request::new("LIST", "GET", None))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("bucket \"bk\" does not exist"),
            "{e}"
        );

        // A missing object is a reply, for the caller to judge.
        let (ep, _) = fake_server(xml_reply("404 Not Found", "NoSuchKey", "Key not found"));
        let r = client(&ep, Duration::from_secs(20))
            .send(&Request::new("GET", "GET", Some("k")))
            .unwrap();
        assert_eq!(r.status, 404);
    }

    #[test]
    fn dns_and_tls_failures_are_not_retried() {
        let t = Instant::now();
        let e = client("http://no-such-host.invalid:3900", Duration::from_secs(20))
            .send(&Request::new("GET", "GET", Some("k")))
            .err()
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(e.to_string().contains("cannot resolve"), "{e}");

        // https:// to a plain HTTP port.
        let (ep, seen) = fake_server(xml_reply("400 Bad Request", "X", "plain"));
        let ep = ep.replace("http://", "https://");
        let t = Instant::now();
        let e = client(&ep, Duration::from_secs(20))
            .send(&Request::new("GET", "GET", Some("k")))
            .err()
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(seen.load(Ordering::Relaxed), 1, "not retried: {e}");
        assert!(e.to_string().contains("speak TLS"), "{e}");
    }

    #[test]
    fn proxies_come_from_the_environment_unless_no_proxy() {
        fn env(k: &str) -> Option<String> {
            match k {
                "HTTPS_PROXY" => Some("http://proxy.lan:3128".into()),
                "NO_PROXY" => Some("localhost, .internal,10.1.2.3".into()),
                _ => None,
            }
        }
        let p = |u: &str| proxy_for(&u.parse().unwrap(), env).map(|(_, p)| p);
        assert_eq!(
            p("https://s3.example.com").as_deref(),
            Some("http://proxy.lan:3128")
        );
        assert_eq!(p("https://s3.internal"), None);
        assert_eq!(p("https://a.s3.internal:3900"), None);
        assert_eq!(p("https://10.1.2.3:3900"), None);
        assert_eq!(
            p("http://s3.example.com"),
            None,
            "HTTPS_PROXY is for https only"
        );
    }

    #[test]
    fn totals_subtract_and_summarise() {
        let before = totals();
        let (ep, _) =
            fake_server("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        let c = client(&ep, Duration::from_secs(5));
        let mut req = Request::new("PUT", "PUT", Some("k"));
        req.body = Some(b"0123456789");
        c.send(&req).unwrap();
        let d = totals().since(&before);
        // Other tests run at the same time: at least ours.
        assert!(
            d.requests[1] >= 1 && d.bytes_up >= 10 && d.bytes_down >= 5,
            "{d:?}"
        );
        let s = d.summary();
        assert!(s.contains("PUT") && s.contains("requests"), "{s}");
    }
}
