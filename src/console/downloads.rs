//! Download tickets: a browser's download is a plain navigation, which cannot carry the
//! session header, so the page first asks for a ticket (a POST with its session) and then
//! opens `/download/<ticket>`. A ticket is random, names one file or folder of one snapshot,
//! works once and only for [`TICKET_LIFE`]; a URL copied from a log or a history is worthless.
//! Each ticket keeps the state of its transfer, so the page can say when a download failed
//! (a damaged chunk cuts the transfer off; the browser only shows "failed").

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a ticket may wait for its download to start.
pub const TICKET_LIFE: Duration = Duration::from_secs(60);
/// Tickets (used or not) kept for the page's status questions.
const MAX_TICKETS: usize = 256;

/// What a ticket names.
#[derive(Clone, Debug)]
pub struct Target {
    pub snapshot: String,
    pub path: Vec<u8>,
    pub who: String,
}

/// A ticket's transfer as the page sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Waiting,
    Running { bytes: u64 },
    Done { bytes: u64 },
    Failed { bytes: u64, error: String },
}

struct Ticket {
    target: Target,
    made: Instant,
    state: State,
}

#[derive(Default)]
pub struct Downloads {
    map: Mutex<HashMap<String, Ticket>>,
}

impl Downloads {
    /// A new ticket for `target`, or None without a random source.
    pub fn issue(&self, target: Target) -> Option<String> {
        let token = super::session::random_token()?;
        let mut map = self.map.lock();
        if map.len() >= MAX_TICKETS {
            let now = Instant::now();
            map.retain(|_, t| now.duration_since(t.made) < TICKET_LIFE * 10);
            while map.len() >= MAX_TICKETS {
                let Some(k) = map
                    .iter()
                    .min_by_key(|(_, t)| t.made)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                map.remove(&k);
            }
        }
        map.insert(
            token.clone(),
            Ticket {
                target,
                made: Instant::now(),
                state: State::Waiting,
            },
        );
        Some(token)
    }

    /// Uses `token`: its target, once, while it is fresh.
    pub fn take(&self, token: &str) -> Option<Target> {
        let mut map = self.map.lock();
        let t = map.get_mut(token)?;
        if t.state != State::Waiting || t.made.elapsed() > TICKET_LIFE {
            return None;
        }
        t.state = State::Running { bytes: 0 };
        Some(t.target.clone())
    }

    pub fn set(&self, token: &str, state: State) {
        if let Some(t) = self.map.lock().get_mut(token) {
            t.state = state;
        }
    }

    /// The state of `token`'s transfer, for the session that asked for it.
    pub fn state(&self, token: &str, who: &str) -> Option<State> {
        let map = self.map.lock();
        let t = map.get(token)?;
        (t.target.who == who).then(|| t.state.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once() {
        let d = Downloads::default();
        let t = d
            .issue(Target {
                snapshot: "ab".into(),
                path: b"x".to_vec(),
                who: "me".into(),
            })
            .unwrap();
        assert_eq!(d.state(&t, "me"), Some(State::Waiting));
        assert!(d.state(&t, "other").is_none());
        assert_eq!(d.take(&t).unwrap().path, b"x");
        assert!(d.take(&t).is_none());
        assert!(d.take("nope").is_none());
        d.set(&t, State::Done { bytes: 3 });
        assert_eq!(d.state(&t, "me"), Some(State::Done { bytes: 3 }));
    }
}
