//! Sessions: a random token, returned by the login and sent back by the page in the
//! [`HEADER`] header of every request. The page keeps it in `sessionStorage` (this tab, this
//! origin), so the browser never sends it by itself: there is no cookie, which browsers would
//! send to every port of the host (cookies are not scoped by port, and `SameSite` counts
//! another port of the same host as the same site). A page of another origin cannot read the
//! token nor set the header without a CORS preflight, which the console never grants, so a
//! request that carries only what a browser sends on its own is refused, and no CSRF token is
//! needed. Sessions end after an hour unused or twelve hours.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The request header carrying the session token.
pub const HEADER: &str = "X-Bmbackup-Session";
const IDLE: Duration = Duration::from_secs(3600);
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 1000;

#[derive(Clone, Debug)]
pub struct Session {
    /// A short name for the logs (never the token itself).
    pub label: String,
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

impl Sessions {
    /// A new session for `client`: (token, session).
    pub fn create(&self, client: IpAddr) -> Option<(String, Session)> {
        let token = random_token()?;
        let now = Instant::now();
        let s = Session {
            label: format!("admin@{client}#{}", &token[..6]),
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

    /// The live session `token` names, touched.
    pub fn get(&self, token: Option<&str>) -> Option<Session> {
        let token = token?;
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

    pub fn remove(&self, token: Option<&str>) {
        if let Some(token) = token {
            self.map.lock().remove(token);
        }
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last) < IDLE && now.duration_since(s.created) < LIFETIME
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_by_token() {
        let s = Sessions::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (token, sess) = s.create(ip).unwrap();
        assert_eq!(token.len(), 64);
        assert!(!sess.label.contains(&token));
        assert!(s.get(Some(&token)).is_some());
        assert!(s.get(Some(&format!("x{}", &token[1..]))).is_none());
        assert!(s.get(None).is_none());
        s.remove(Some(&token));
        assert!(s.get(Some(&token)).is_none());
    }
}
