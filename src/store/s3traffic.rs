//! What goes over the wire to S3, process-wide: the upload pace ([`Throttle`], the
//! `upload_limit` setting, shared by every upload of a run) and the counters of requests per
//! operation, bytes each way, retries, failures and latency ([`totals`]) for the `-v` summary
//! and the metrics file.

use parking_lot::Mutex;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Paces uploads to a rate shared by every upload of the process.
pub struct Throttle {
    bytes_per_sec: u64,
    /// When the next byte may go.
    next: Mutex<Instant>,
}

impl Throttle {
    /// The process-wide throttle (the last configured rate wins).
    pub(super) fn shared(bytes_per_sec: u64) -> Arc<Throttle> {
        static SHARED: Mutex<Option<Arc<Throttle>>> = Mutex::new(None);
        let mut s = SHARED.lock();
        match &*s {
            Some(t) if t.bytes_per_sec == bytes_per_sec => Arc::clone(t),
            _ => {
                let t = Arc::new(Throttle {
                    bytes_per_sec: bytes_per_sec.max(1),
                    next: Mutex::new(Instant::now()),
                });
                *s = Some(Arc::clone(&t));
                t
            }
        }
    }

    /// Waits until `n` more bytes may be sent.
    fn take(&self, n: usize) {
        let wait = {
            let mut next = self.next.lock();
            let now = Instant::now();
            // Idle time does not build up credit beyond a quarter second.
            let floor = now.checked_sub(Duration::from_millis(250)).unwrap_or(now);
            let start = (*next).max(floor);
            *next = start + Duration::from_secs_f64(n as f64 / self.bytes_per_sec as f64);
            next.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// A body read out at the throttle's pace.
pub(super) struct Throttled<'a> {
    pub(super) inner: &'a [u8],
    pub(super) throttle: &'a Throttle,
}

impl Read for Throttled<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.inner.len()).min(16 << 10);
        if n == 0 {
            return Ok(0);
        }
        self.throttle.take(n);
        buf[..n].copy_from_slice(&self.inner[..n]);
        self.inner = &self.inner[n..];
        Ok(n)
    }
}

/// The operations counted separately.
const OPS: [&str; 5] = ["GET", "PUT", "HEAD", "LIST", "DELETE"];

/// Process-wide counters.
pub(super) struct Stats {
    requests: [AtomicU64; 5],
    pub(super) retries: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) bytes_up: AtomicU64,
    pub(super) bytes_down: AtomicU64,
    latency_ns: AtomicU64,
    latency_max_ns: AtomicU64,
}

pub(super) static STATS: Stats = Stats {
    requests: [const { AtomicU64::new(0) }; 5],
    retries: AtomicU64::new(0),
    failures: AtomicU64::new(0),
    bytes_up: AtomicU64::new(0),
    bytes_down: AtomicU64::new(0),
    latency_ns: AtomicU64::new(0),
    latency_max_ns: AtomicU64::new(0),
};

impl Stats {
    pub(super) fn count(&self, op: &str, method: &str, took: Duration) {
        let i = match (op, method) {
            ("LIST", _) => 3,
            (_, "PUT") => 1,
            (_, "HEAD") => 2,
            (_, "DELETE") => 4,
            _ => 0,
        };
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        self.latency_ns.fetch_add(ns, Ordering::Relaxed);
        self.latency_max_ns.fetch_max(ns, Ordering::Relaxed);
    }
}

/// What this process sent to and got from S3 so far (see [`totals`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Requests (attempts) by operation, in the order of [`Totals::OPS`].
    pub requests: [u64; 5],
    /// Attempts that were retries of a failed one.
    pub retries: u64,
    /// Requests that failed for good.
    pub failures: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Time spent waiting for replies, summed over requests.
    pub latency: Duration,
    /// The slowest request (process-wide, not reset by [`Totals::since`]).
    pub latency_max: Duration,
}

impl Totals {
    pub const OPS: [&'static str; 5] = OPS;

    pub fn request_count(&self) -> u64 {
        self.requests.iter().sum()
    }

    /// What happened after `before` was taken.
    pub fn since(&self, before: &Totals) -> Totals {
        let mut requests = self.requests;
        for (r, b) in requests.iter_mut().zip(before.requests) {
            *r = r.saturating_sub(b);
        }
        Totals {
            requests,
            retries: self.retries.saturating_sub(before.retries),
            failures: self.failures.saturating_sub(before.failures),
            bytes_up: self.bytes_up.saturating_sub(before.bytes_up),
            bytes_down: self.bytes_down.saturating_sub(before.bytes_down),
            latency: self.latency.saturating_sub(before.latency),
            latency_max: self.latency_max,
        }
    }

    /// One line for `-v`: `S3: 12 requests (GET 3, PUT 8, LIST 1), 34.0 MB up, …`.
    pub fn summary(&self) -> String {
        let n = self.request_count();
        let per: Vec<String> = OPS
            .iter()
            .zip(self.requests)
            .filter(|(_, c)| *c > 0)
            .map(|(op, c)| format!("{op} {c}"))
            .collect();
        let mean = if n > 0 {
            self.latency.as_secs_f64() * 1000.0 / n as f64
        } else {
            0.0
        };
        format!(
            "S3: {n} requests ({}), {} up, {} down, {} retries, {} failed; latency mean {mean:.1} ms, max {:.1} ms",
            per.join(", "),
            human(self.bytes_up),
            human(self.bytes_down),
            self.retries,
            self.failures,
            self.latency_max.as_secs_f64() * 1000.0
        )
    }
}

fn human(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// The counters of this process so far.
pub fn totals() -> Totals {
    let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Totals {
        requests: [
            r(&STATS.requests[0]),
            r(&STATS.requests[1]),
            r(&STATS.requests[2]),
            r(&STATS.requests[3]),
            r(&STATS.requests[4]),
        ],
        retries: r(&STATS.retries),
        failures: r(&STATS.failures),
        bytes_up: r(&STATS.bytes_up),
        bytes_down: r(&STATS.bytes_down),
        latency: Duration::from_nanos(r(&STATS.latency_ns)),
        latency_max: Duration::from_nanos(r(&STATS.latency_max_ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_paces_uploads() {
        let t = Throttle {
            bytes_per_sec: 1 << 20,
            next: Mutex::new(Instant::now()),
        };
        let data = vec![0u8; 512 << 10];
        let start = Instant::now();
        let mut r = Throttled {
            inner: &data,
            throttle: &t,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}
