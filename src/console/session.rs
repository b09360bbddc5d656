//! Sessions: a random token in a cookie (`HttpOnly; SameSite=Strict`) names a session held in
//! memory, which carries its own random CSRF token; every state-changing request must send that
//! token back in the `X-CSRF-Token` header. Sessions end after an hour unused or twelve hours.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "bmb_session";
const IDLE: Duration = Duration::from_secs(3600);
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 1000;

#[derive(Clone, Debug)]
pub struct Session {
    /// A short name for the logs (never the token itself).
    pub label: String,
    pub csrf: String,
    created: Instant,
    last: Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// `N` bytes from the kernel's random source.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// 32 random bytes as hex. Without a random source no session can be safe: the process stops
/// answering (a worker that cannot make a token refuses the login).
pub fn random_token() -> Option<String> {
    let b = random_bytes::<32>().ok()?;
    Some(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Equal strings, compared in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// A new session for `client`: (cookie token, session).
    pub fn create(&self, client: IpAddr) -> Option<(String, Session)> {
        let token = random_token()?;
        let now = Instant::now();
        let s = Session {
            label: format!("admin@{client}#{}", &token[..6]),
            csrf: random_token()?,
            created: now,
            last: now,
        };
        let mut map = self.map.lock();
        map.retain(|_, s| alive(s, now));
        if map.len() >= MAX_SESSIONS {
            // The oldest goes: memory stays bounded whatever logs in.
            if let Some(k) = map
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone())
            {
                map.remove(&k);
            }
        }
        map.insert(token.clone(), s.clone());
        Some((token, s))
    }

    /// The live session the cookie header names, touched.
    pub fn get(&self, cookie_header: Option<&str>) -> Option<Session> {
        let token = cookie_value(cookie_header?, COOKIE)?;
        let now = Instant::now();
        let mut map = self.map.lock();
        let s = map.get_mut(token)?;
        if !alive(s, now) {
            map.remove(token);
            return None;
        }
        s.last = now;
        Some(s.clone())
    }

    pub fn remove(&self, cookie_header: Option<&str>) {
        if let Some(token) = cookie_header.and_then(|c| cookie_value(c, COOKIE)) {
            self.map.lock().remove(token);
        }
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last) < IDLE && now.duration_since(s.created) < LIFETIME
}

/// The value of cookie `name` in a `Cookie:` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The `Set-Cookie` value for a new session (`secure` behind a TLS proxy).
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_by_cookie() {
        let s = Sessions::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (token, sess) = s.create(ip).unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, sess.csrf);
        let header = format!("a=b; {COOKIE}={token}; c=d");
        assert_eq!(s.get(Some(&header)).unwrap().csrf, sess.csrf);
        assert!(s.get(Some(&format!("{COOKIE}=x{}", &token[1..]))).is_none());
        assert!(s.get(None).is_none());
        s.remove(Some(&header));
        assert!(s.get(Some(&header)).is_none());
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        assert!(set_cookie("t", false).contains("HttpOnly; SameSite=Strict"));
    }
}
