//! Progress of a long command on stderr: a line redrawn on a terminal (with a percentage and an
//! ETA when the total is known), JSON lines with `--json` (as restic's `--json` gives them, for
//! scripts), nothing otherwise (logs and cron mail stay clean) or with `-q`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    Terminal,
    JsonLines,
}

/// The mode for a command given `--json`: JSON lines with it; else a line on a terminal unless
/// `-q`.
pub fn mode(json: bool) -> Mode {
    if json {
        Mode::JsonLines
    } else if !super::output::quiet() && std::io::stderr().is_terminal() {
        Mode::Terminal
    } else {
        Mode::Off
    }
}

/// Where a counter stands against a known total: `done` of `total` after `secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub percent: f64,
    /// Seconds left at the rate so far; None until something is done.
    pub eta_secs: Option<f64>,
}

pub fn estimate(done: u64, total: u64, secs: f64) -> Option<Estimate> {
    if total == 0 {
        return None;
    }
    let fraction = (done as f64 / total as f64).min(1.0);
    let eta_secs = (done > 0).then(|| secs * (1.0 - fraction) / fraction);
    Some(Estimate {
        percent: fraction * 100.0,
        eta_secs,
    })
}

/// A backup's estimate, on the bytes it still has to read: `read` bytes read so far, `unchanged`
/// bytes of files taken unread from the parent snapshot, `expected` the parent's size. What is
/// left to go through (`expected - read - unchanged`) may all need reading, so the percentage is
/// `read / (read + left)` and the ETA `left` at the read rate: unchanged files shrink what is
/// left instead of counting as done. Past the parent's size (the part grew, e.g. 300 MiB of new
/// mail after 10 GiB unchanged) the amount left is unknown: no estimate, never "100% ETA 0:00"
/// while reading goes on.
pub fn backup_estimate(read: u64, unchanged: u64, expected: u64, secs: f64) -> Option<Estimate> {
    let left = expected.saturating_sub(read.saturating_add(unchanged));
    if left == 0 {
        return None;
    }
    let fraction = read as f64 / (read + left) as f64;
    let eta_secs = (read > 0).then(|| left as f64 / (read as f64 / secs.max(1e-9)));
    Some(Estimate {
        percent: fraction * 100.0,
        eta_secs,
    })
}

/// ` 42% ETA 3:05` (or ` 42%` until a rate is known); empty without an estimate.
pub fn estimate_text(e: Option<Estimate>) -> String {
    match e {
        None => String::new(),
        Some(Estimate {
            percent,
            eta_secs: Some(eta),
        }) => {
            let s = eta.round() as u64;
            let eta = if s >= 3600 {
                format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            } else {
                format!("{}:{:02}", s / 60, s % 60)
            };
            format!(" {percent:3.0}% ETA {eta}")
        }
        Some(Estimate { percent, .. }) => format!(" {percent:3.0}%"),
    }
}

/// BMBACKUP_PROGRESS_MS: another interval between updates, so tests see progress of short runs.
fn interval_override() -> Option<Duration> {
    let ms = std::env::var("BMBACKUP_PROGRESS_MS").ok()?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// Runs `f` while a thread shows `status(seconds elapsed)`: its text on a terminal, four times a
/// second; its JSON as one line a second in JSON mode.
pub fn while_running<T>(
    mode: Mode,
    status: impl Fn(f64) -> (String, serde_json::Value) + Sync,
    f: impl FnOnce() -> T,
) -> T {
    if mode == Mode::Off {
        return f();
    }
    let done = AtomicBool::new(false);
    let tick = match (mode, interval_override()) {
        (_, Some(t)) => t,
        (Mode::Terminal, None) => Duration::from_millis(250),
        _ => Duration::from_secs(1),
    };
    let nap = tick.clamp(Duration::from_millis(1), Duration::from_millis(50));
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            let mut last = Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(nap);
                if last.elapsed() < tick || done.load(Ordering::Relaxed) {
                    continue;
                }
                last = Instant::now();
                let (text, json) = status(start.elapsed().as_secs_f64().max(1e-9));
                match mode {
                    Mode::Terminal => super::tell_inline(&format!("\r\x1b[K{text}")),
                    _ => crate::tell!("{json}"),
                }
            }
            if mode == Mode::Terminal {
                super::tell_inline("\r\x1b[K");
            }
        });
        let r = f();
        done.store(true, Ordering::Relaxed);
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates() {
        assert_eq!(estimate(5, 0, 1.0), None);
        let e = estimate(25, 100, 10.0).unwrap();
        assert_eq!(e.percent, 25.0);
        assert_eq!(e.eta_secs, Some(30.0));
        assert_eq!(estimate_text(Some(e)), "  25% ETA 0:30");
        assert_eq!(estimate(0, 100, 1.0).unwrap().eta_secs, None);
        // More than expected (the part grew): 100%, nothing left.
        assert_eq!(estimate(150, 100, 3.0).unwrap().percent, 100.0);
        let long = estimate(1, 2, 3725.0);
        assert_eq!(estimate_text(long), "  50% ETA 1:02:05");
    }

    #[test]
    fn a_backup_is_as_far_as_its_bytes_to_read() {
        const M: u64 = 1 << 20;
        // 10 GiB unchanged, 300 MiB new being read: past the parent's size, no estimate.
        assert_eq!(backup_estimate(100 * M, 10_240 * M, 10_240 * M, 5.0), None);
        // 500 unchanged, 100 read in 10 s, 400 left: 20%, 40 s to go.
        let e = backup_estimate(100, 500, 1000, 10.0).unwrap();
        assert_eq!(e.percent, 20.0);
        assert_eq!(e.eta_secs, Some(40.0));
        // Unchanged files alone are no progress in reading.
        assert_eq!(backup_estimate(0, 900, 1000, 1.0).unwrap().percent, 0.0);
        assert_eq!(backup_estimate(0, 0, 0, 1.0), None);
    }
}
