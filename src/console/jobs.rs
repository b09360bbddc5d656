//! Backups and restores started from the console run in background threads as jobs; the page
//! polls a job for its progress, its log and, at the end, its outcome and the next steps.

use crate::restore::RestoreProgress;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Finished jobs kept for the page (the oldest go first).
const KEEP: usize = 50;
/// Log lines kept per job.
const MAX_LOG: usize = 2000;

#[derive(Default)]
pub struct JobState {
    pub log: Vec<String>,
    /// None while running; then complete, partial or failed.
    pub outcome: Option<String>,
    /// What to do next (e.g. the `reconstruct` command), with why.
    pub explain: String,
    pub next: Vec<String>,
    /// A backup's part being read and its counters (files, bytes read, bytes).
    pub part: Option<(String, u64, u64, u64)>,
}

pub struct Job {
    pub id: u64,
    pub kind: &'static str,
    pub what: String,
    pub who: String,
    pub started_ns: i64,
    pub state: Mutex<JobState>,
    /// A restore's counters, and the bytes it is expected to write (0: unknown).
    pub progress: Arc<RestoreProgress>,
    pub expected: AtomicU64,
}

impl Job {
    pub fn log(&self, line: impl Into<String>) {
        let mut s = self.state.lock();
        if s.log.len() < MAX_LOG {
            s.log.push(line.into());
        }
    }

    pub fn finish(&self, outcome: &str) {
        self.state.lock().outcome = Some(outcome.to_string());
    }

    pub fn json(&self) -> serde_json::Value {
        let s = self.state.lock();
        let bytes = self.progress.bytes.load(Ordering::Relaxed);
        let expected = self.expected.load(Ordering::Relaxed);
        let percent = match (&s.outcome, expected) {
            (Some(_), _) => Some(100.0),
            (None, 0) => None,
            (None, e) => Some((bytes as f64 * 100.0 / e as f64).min(99.0)),
        };
        serde_json::json!({
            "id": self.id,
            "kind": self.kind,
            "what": self.what,
            "who": self.who,
            "started": crate::timefmt::iso8601(self.started_ns),
            "running": s.outcome.is_none(),
            "outcome": s.outcome,
            "log": s.log,
            "explain": s.explain,
            "next": s.next,
            "files": self.progress.files.load(Ordering::Relaxed),
            "bytes": bytes,
            "expected": expected,
            "percent": percent,
            "part": s.part.as_ref().map(|(p, files, read, total)| serde_json::json!({
                "part": p, "files": files, "bytes_read": read, "bytes": total
            })),
        })
    }
}

#[derive(Default)]
pub struct Jobs {
    map: Mutex<BTreeMap<u64, Arc<Job>>>,
    next: AtomicU64,
}

impl Jobs {
    /// Starts `work` in a thread as a new job; it must call [`Job::finish`].
    pub fn start(
        &self,
        kind: &'static str,
        what: String,
        who: String,
        work: impl FnOnce(&Job) + Send + 'static,
    ) -> Arc<Job> {
        let job = Arc::new(Job {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            kind,
            what,
            who,
            started_ns: crate::store::now_ns(),
            state: Mutex::new(JobState::default()),
            progress: Arc::new(RestoreProgress::default()),
            expected: AtomicU64::new(0),
        });
        {
            let mut map = self.map.lock();
            while map.len() >= KEEP {
                let Some(oldest) = map
                    .iter()
                    .find(|(_, j)| j.state.lock().outcome.is_some())
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                map.remove(&oldest);
            }
            map.insert(job.id, Arc::clone(&job));
        }
        let j = Arc::clone(&job);
        std::thread::spawn(move || {
            work(&j);
            if j.state.lock().outcome.is_none() {
                j.finish("failed");
            }
        });
        job
    }

    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.map.lock().get(&id).cloned()
    }

    /// A job of `kind` still running, if any.
    pub fn running(&self, kind: &str) -> Option<Arc<Job>> {
        self.map
            .lock()
            .values()
            .find(|j| j.kind == kind && j.state.lock().outcome.is_none())
            .cloned()
    }

    pub fn list_json(&self) -> serde_json::Value {
        let map = self.map.lock();
        serde_json::Value::Array(
            map.values()
                .rev()
                .map(|j| {
                    let s = j.state.lock();
                    serde_json::json!({
                        "id": j.id, "kind": j.kind, "what": j.what, "who": j.who,
                        "started": crate::timefmt::iso8601(j.started_ns),
                        "outcome": s.outcome,
                    })
                })
                .collect(),
        )
    }
}
