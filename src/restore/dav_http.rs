//! The HTTP side of putting calendars and address books back through a Cyrus DAV server
//! ([`super::dav`]): one plain HTTP/1.1 connection per request to the configured `http://`
//! URL (Cyrus' httpd on the mail server itself), authenticated as a Cyrus admin acting for the
//! user.
//!
//! Why SCRAM-SHA-256 (RFC 7804) and not Basic with `Authorize-As`: Cyrus' httpd only honours
//! `Authorize-As` on a Murder backend, and an admin logged in as itself is redirected to a
//! read-only shared view of the user's collections. A SASL exchange carries an authorization
//! id, and Cyrus lets its admins act as any user that way, as its IMAP server does. The exchange
//! is bound to the connection, so both steps use one socket and each request starts its own.
//! The password is salted once (PBKDF2) and never leaves this module.

use crate::store::sigv4::hmac;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}: only http://HOST:PORT URLs are supported (Cyrus' httpd on the mail server)")]
    BadUrl(String),
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url}: {what}")]
    Protocol { url: String, what: String },
    #[error("{url}: authentication as {admin} for {user} failed ({why}); check [entities.dav] admin and password_file, and that SCRAM-SHA-256 is in sasl_mech_list")]
    Auth {
        url: String,
        admin: String,
        user: String,
        why: String,
    },
}

/// An answer: status, headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A salted password: (salt, iterations, PBKDF2 output).
type Salted = (Vec<u8>, u32, Vec<u8>);

/// A Cyrus httpd reached as `admin` acting for `user`.
pub struct Client {
    host: String,
    port: u16,
    /// The path prefix of the URL (usually empty).
    base: String,
    admin: String,
    user: String,
    /// PBKDF2 result per (salt, iterations) the server gave: computed once.
    salted: std::cell::RefCell<Option<Salted>>,
    password: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(
            f,
            "Client({}:{} as {} for {})",
            self.host, self.port, self.admin, self.user
        )
    }
}

impl Client {
    pub fn new(url: &str, admin: &str, password: &str, user: &str) -> Result<Client, HttpError> {
        let bad = || HttpError::BadUrl(url.to_string());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (hostport, base) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (hostport, 80),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Client {
            host: host.to_string(),
            port,
            base: base.trim_end_matches('/').to_string(),
            admin: admin.to_string(),
            user: user.to_string(),
            salted: Default::default(),
            password: password.to_string(),
        })
    }

    /// The URL path of `rest` (which starts with `/`).
    pub fn path(&self, rest: &str) -> String {
        if self.base.is_empty() {
            rest.to_string()
        } else {
            format!("/{}{rest}", self.base)
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.host, self.port)
    }

    /// Sends one request as the user (a SCRAM exchange on a new connection, then the request's
    /// answer).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        let url = self.url(path);
        let io = |source| HttpError::Io {
            url: url.clone(),
            source,
        };
        let stream = TcpStream::connect((self.host.as_str(), self.port)).map_err(io)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(io)?;
        let mut reader = BufReader::new(stream.try_clone().map_err(io)?);
        let mut writer = stream;
        let auth_fail = |why: String| HttpError::Auth {
            url: url.clone(),
            admin: self.admin.clone(),
            user: self.user.clone(),
            why,
        };
        let mut nonce = [0u8; 18];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut nonce))
            .map_err(|e| auth_fail(format!("no random bytes: {e}")))?;
        let gs2 = format!("n,a={},", sasl_name(&self.user));
        let bare = format!("n={},r={}", sasl_name(&self.admin), b64(&nonce));
        let first = format!(
            "SCRAM-SHA-256 data={}",
            b64(format!("{gs2}{bare}").as_bytes())
        );
        let r = exchange(
            &mut writer,
            &mut reader,
            &self.host,
            method,
            path,
            headers,
            body,
            &first,
        )
        .map_err(|e| self.err(&url, e))?;
        if r.status != 401 {
            return Err(auth_fail(format!(
                "the server answered {} to the first SCRAM step",
                r.status
            )));
        }
        let chal = r
            .headers
            .iter()
            .filter(|(k, _)| k == "www-authenticate")
            .map(|(_, v)| v)
            .find(|v| v.starts_with("SCRAM-SHA-256 ") && v.contains("data="))
            .ok_or_else(|| auth_fail("no SCRAM-SHA-256 challenge".into()))?;
        let sid = param(chal, "sid").ok_or_else(|| auth_fail("no sid".into()))?;
        let server_first = param(chal, "data")
            .and_then(|d| unb64(&d))
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| auth_fail("bad challenge".into()))?;
        let attr = |k: &str| {
            server_first
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        let (Some(rnonce), Some(salt), Some(iter)) = (attr("r"), attr("s"), attr("i")) else {
            return Err(auth_fail("bad challenge".into()));
        };
        let salt = unb64(&salt).ok_or_else(|| auth_fail("bad salt".into()))?;
        let iter: u32 = iter
            .parse()
            .ok()
            .filter(|i| (1..=1_000_000).contains(i))
            .ok_or_else(|| auth_fail("bad iteration count".into()))?;
        if !rnonce.starts_with(&b64(&nonce)) {
            return Err(auth_fail("the server's nonce does not extend ours".into()));
        }
        let salted = self.salted_password(&salt, iter);
        let client_key = hmac(&salted, b"Client Key");
        let stored = Sha256::digest(&client_key);
        let without_proof = format!("c={},r={rnonce}", b64(gs2.as_bytes()));
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let sig = hmac(stored.as_slice(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let fin = format!(
            "SCRAM-SHA-256 sid={sid}, data={}",
            b64(format!("{without_proof},p={}", b64(&proof)).as_bytes())
        );
        let r = exchange(
            &mut writer,
            &mut reader,
            &self.host,
            method,
            path,
            headers,
            body,
            &fin,
        )
        .map_err(|e| self.err(&url, e))?;
        if r.status == 401 {
            return Err(auth_fail("wrong password or not an admin".into()));
        }
        Ok(r)
    }

    fn err(&self, url: &str, e: std::io::Error) -> HttpError {
        HttpError::Io {
            url: url.to_string(),
            source: e,
        }
    }

    fn salted_password(&self, salt: &[u8], iter: u32) -> Vec<u8> {
        let mut cache = self.salted.borrow_mut();
        if let Some((s, i, out)) = cache.as_ref() {
            if s == salt && *i == iter {
                return out.clone();
            }
        }
        // SCRAM's Hi(): PBKDF2-HMAC-SHA-256 of one 32-byte block.
        let pw = self.password.as_bytes();
        let mut u = hmac(pw, &[salt, &1u32.to_be_bytes()[..]].concat());
        let mut out = u.clone();
        for _ in 1..iter.max(1) {
            u = hmac(pw, &u);
            out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
        }
        *cache = Some((salt.to_vec(), iter, out.clone()));
        out
    }
}

/// Writes one request with `authorization` and reads its answer (the connection stays open).
#[allow(clippy::too_many_arguments)]
fn exchange(
    w: &mut TcpStream,
    r: &mut BufReader<TcpStream>,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    authorization: &str,
) -> std::io::Result<Response> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()?;
    read_response(r, method == "HEAD")
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Reads a status line, headers and a body (Content-Length or chunked).
fn read_response(r: &mut BufReader<TcpStream>, head_only: bool) -> std::io::Result<Response> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("not an HTTP answer: {:?}", line.trim())))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed in the headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            if body.len() + size > 256 << 20 {
                return Err(bad("answer larger than 256 MiB"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if n > 256 << 20 {
            return Err(bad("answer larger than 256 MiB"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A SASL name with `,` and `=` escaped (RFC 5802).
fn sasl_name(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// A `key=value` or `key="value"` parameter of an auth header.
fn param(h: &str, key: &str) -> Option<String> {
    let rest = h.split_once(' ').map(|x| x.1).unwrap_or(h);
    rest.split(',').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn b64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn unb64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for b in s.bytes().filter(|b| !b.is_ascii_whitespace()) {
        if b == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            assert_eq!(unb64(&b64(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64(b"fo"), "Zm8=");
    }

    #[test]
    fn urls_and_params() {
        let c = Client::new("http://127.0.0.1:8008", "cyrus", "pw", "al@x").unwrap();
        assert_eq!(c.path("/dav/x"), "/dav/x");
        assert!(!format!("{c:?}").contains("pw"));
        assert!(Client::new("https://h", "a", "p", "u").is_err());
        assert_eq!(
            param("SCRAM-SHA-256 sid=ab-1,data=eHk=", "data").as_deref(),
            Some("eHk=")
        );
        assert_eq!(sasl_name("a,b=c"), "a=2Cb=3Dc");
    }
}
