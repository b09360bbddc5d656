//! The page itself: plain HTML, CSS and JavaScript embedded in the binary (no CDN, no build
//! step: `cargo build` builds them in). The script is a file of its own, never inline, so the
//! Content-Security-Policy can forbid inline scripts.

use super::http::Response;

const INDEX: &str = include_str!("assets/index.html");
const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
const ICON: &str = include_str!("assets/favicon.svg");

/// The embedded file at `path`, if any.
pub fn get(path: &str) -> Option<Response> {
    let (body, ctype) = match path {
        "/" | "/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/app.css" => (CSS, "text/css; charset=utf-8"),
        "/app.js" => (JS, "text/javascript; charset=utf-8"),
        "/favicon.svg" | "/favicon.ico" => (ICON, "image/svg+xml"),
        _ => return None,
    };
    Some(Response::bytes(200, ctype, body.as_bytes().to_vec()))
}
