//! Requests and answers: JSON bodies and answers, query strings, percent-decoding, headers.

use std::collections::HashMap;
use std::io::Read;
use tiny_http::{Header, Request, Response, ResponseBox, StatusCode};

/// Request bodies larger than this are refused (every body is a small JSON object).
const MAX_BODY: u64 = 64 * 1024;

pub fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

/// A JSON answer.
pub fn json(status: u16, value: &serde_json::Value) -> ResponseBox {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut r = Response::from_data(body).with_status_code(StatusCode(status));
    if let Some(h) = header("Content-Type", "application/json; charset=utf-8") {
        r.add_header(h);
    }
    r.boxed()
}

/// An error answer: `{"error": message}`, which the page shows as text.
pub fn error(status: u16, message: &str) -> ResponseBox {
    json(status, &serde_json::json!({ "error": message }))
}

/// The value of the request header `name`, if present.
pub fn request_header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The body of a POST as a JSON object; only `application/json` is taken, so a plain HTML form
/// of another site cannot post here.
pub fn read_json(req: &mut Request) -> Result<serde_json::Value, ResponseBox> {
    let ct = request_header(req, "Content-Type").unwrap_or("");
    if !ct.trim_start().starts_with("application/json") {
        return Err(error(415, "send the request as application/json"));
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| error(400, &format!("cannot read the request: {e}")))?;
    if body.len() as u64 > MAX_BODY {
        return Err(error(413, "request too large"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| error(400, &format!("bad JSON: {e}")))?;
    if !v.is_object() {
        return Err(error(400, "expected a JSON object"));
    }
    Ok(v)
}

/// A string field of a JSON object, or a 400 naming it.
pub fn field<'a>(v: &'a serde_json::Value, name: &str) -> Result<&'a str, ResponseBox> {
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
}
