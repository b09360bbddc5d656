//! Requests and answers as the handlers see them: a parsed request with its whole (small) body,
//! and an answer whose body is either bytes or a stream with a known or unknown length. Also
//! the helpers for JSON bodies and answers, query strings and percent-decoding.
//!
//! Parsing is strict and bounded: a request head over [`MAX_HEAD`] bytes or a body over
//! [`MAX_BODY`] is refused before it is read, so no request can make the console hold much.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;

/// Request bodies larger than this are refused (every body is a small JSON object).
pub const MAX_BODY: usize = 64 * 1024;
/// The request line and headers together.
pub const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other(String),
}

/// One request, read whole before a handler sees it.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    /// The request target as sent (path and query, not normalised).
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl Request {
    pub fn url(&self) -> &str {
        &self.target
    }

    /// The value of the request header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What parsing a request head found.
#[derive(Debug)]
pub enum Head {
    /// The head is not complete yet.
    Partial,
    /// A complete head: the request (body still empty), its head's length and the body's.
    Complete {
        request: Request,
        head_len: usize,
        body_len: usize,
    },
    /// A malformed or refused request: the status and message to answer with.
    Bad(u16, &'static str),
}

/// Parses the request head at the start of `buf`.
pub fn parse_head(buf: &[u8], peer: SocketAddr) -> Head {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Head::Bad(431, "request head too large")
        } else {
            Head::Partial
        };
    };
    if end > MAX_HEAD {
        return Head::Bad(431, "request head too large");
    }
    let Ok(text) = std::str::from_utf8(&buf[..end]) else {
        return Head::Bad(400, "request head is not UTF-8");
    };
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Bad(400, "malformed request line");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Head::Bad(400, "malformed request line");
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        m => Method::Other(m.to_string()),
    };
    let mut headers = Vec::new();
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            return Head::Bad(400, "malformed header");
        };
        if k.is_empty() || k.contains(' ') {
            return Head::Bad(400, "malformed header");
        }
        headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
    }
    let request = Request {
        method,
        target: target.to_string(),
        headers,
        body: Vec::new(),
        peer,
    };
    if request.header("transfer-encoding").is_some() {
        return Head::Bad(411, "send the body with a Content-Length");
    }
    let body_len = match request.header("content-length") {
        None => 0,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= MAX_BODY => n,
            Ok(_) => return Head::Bad(413, "request too large"),
            Err(_) => return Head::Bad(400, "bad Content-Length"),
        },
    };
    Head::Complete {
        request,
        head_len: end + 4,
        body_len,
    }
}

/// An answer's body.
pub enum Body {
    Bytes(Vec<u8>),
    /// Streamed as read. With a length, exactly that many bytes are sent (`Content-Length`);
    /// without, the body is chunked. Either way a read error aborts the connection so the
    /// client sees a failed transfer, never a complete one.
    Stream {
        reader: Box<dyn Read + Send>,
        length: Option<u64>,
    },
}

/// One answer.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        let mut r = Response {
            status,
            headers: Vec::new(),
            body: Body::Bytes(body),
        };
        r.add_header("Content-Type", content_type);
        r
    }

    pub fn stream(reader: Box<dyn Read + Send>, length: Option<u64>) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body: Body::Stream { reader, length },
        }
    }

    /// Adds a header; a value with a line break (which would split the answer) is dropped.
    pub fn add_header(&mut self, name: &str, value: &str) {
        if !value.contains(['\r', '\n']) && !name.contains(['\r', '\n', ':']) {
            self.headers.push((name.to_string(), value.to_string()));
        }
    }

    #[cfg(test)]
    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The reason phrase of the statuses the console uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A JSON answer.
pub fn json(status: u16, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::bytes(status, "application/json; charset=utf-8", body)
}

/// An error answer: `{"error": message}`, which the page shows as text.
pub fn error(status: u16, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// The body of a POST as a JSON object; only `application/json` is taken, so a plain HTML form
/// of another site cannot post here.
pub fn read_json(req: &Request) -> Result<serde_json::Value, Response> {
    let ct = req.header("Content-Type").unwrap_or("");
    if !ct.trim_start().starts_with("application/json") {
        return Err(error(415, "send the request as application/json"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&req.body).map_err(|e| error(400, &format!("bad JSON: {e}")))?;
    if !v.is_object() {
        return Err(error(400, "expected a JSON object"));
    }
    Ok(v)
}

/// A string field of a JSON object, or a 400 naming it.
pub fn field<'a>(v: &'a serde_json::Value, name: &str) -> Result<&'a str, Response> {
    v.get(name)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| error(400, &format!("missing field {name:?}")))
}

/// `%XX` decoded (and `+` as a space when `plus`); None for a malformed escape.
pub fn percent_decode(s: &str, plus: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The URL split into its path and its decoded query parameters (UTF-8 values only).
pub fn split_url(url: &str) -> (&str, HashMap<String, String>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true).and_then(|k| String::from_utf8(k).ok());
        let v = percent_decode(v, true).and_then(|v| String::from_utf8(v).ok());
        if let (Some(k), Some(v)) = (k, v) {
            params.insert(k, v);
        }
    }
    (path, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn decodes_escapes_and_refuses_broken_ones() {
        assert_eq!(percent_decode("a%2Fb", false).unwrap(), b"a/b");
        assert_eq!(percent_decode("a+b", true).unwrap(), b"a b");
        assert_eq!(percent_decode("a+b", false).unwrap(), b"a+b");
        assert!(percent_decode("a%2", false).is_none());
        assert!(percent_decode("a%zz", false).is_none());
        let (p, q) = split_url("/api/x?at=D-7&name=a%40b.org");
        assert_eq!(p, "/api/x");
        assert_eq!(q["at"], "D-7");
        assert_eq!(q["name"], "a@b.org");
    }

    #[test]
    fn heads_are_parsed_strictly_and_bounded() {
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n", peer()),
            Head::Partial
        ));
        match parse_head(
            b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            peer(),
        ) {
            Head::Complete {
                request,
                head_len,
                body_len,
            } => {
                assert_eq!(request.method, Method::Post);
                assert_eq!(request.target, "/api/login");
                assert_eq!(request.header("HOST"), Some("x"));
                assert_eq!(head_len, 56);
                assert_eq!(body_len, 5);
            }
            h => panic!("{h:?}"),
        }
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(
            parse_head(big.as_bytes(), peer()),
            Head::Bad(431, _)
        ));
        let huge = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(
            parse_head(huge.as_bytes(), peer()),
            Head::Bad(413, _)
        ));
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET x HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(matches!(parse_head(bad, peer()), Head::Bad(..)), "{bad:?}");
        }
    }

    #[test]
    fn a_header_value_cannot_split_the_answer() {
        let mut r = error(400, "x");
        r.add_header("X-A", "a\r\nSet-Cookie: b");
        assert!(r.header("X-A").is_none());
        r.add_header("X-A", "ok");
        assert_eq!(r.header("x-a"), Some("ok"));
    }
}
