//! How `bmbackup backup` shows a run: the events of [`crate::backup::run`] as summary lines,
//! a progress line with percentage and ETA on a terminal (on the bytes still to read, against
//! the parent snapshot's size: [`super::progress::backup_estimate`]), `-v`'s list of files, or one JSON document with `--json`.

use super::backup_json::Doc;
use super::errors::count;
use super::format;
use super::logging::report;
use crate::backup::run::{RunEvent, RunObserver};
use crate::backup::Progress;
use crate::model::SnapshotStatus;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// The size of each part's newest snapshot of `host`: what a new backup of it is expected to
/// go through, for the progress line's percentage.
fn expected_sizes(repo: &crate::repo::Repository, host: &str) -> HashMap<String, u64> {
    let mut newest: HashMap<String, (i64, u64)> = HashMap::new();
    for s in repo.snapshots().unwrap_or_default() {
        let m = &s.manifest;
        if m.host != host {
            continue;
        }
        let e = newest.entry(m.part.clone()).or_insert((i64::MIN, 0));
        if m.started_ns > e.0 {
            *e = (m.started_ns, m.bytes);
        }
    }
    newest.into_iter().map(|(p, (_, b))| (p, b)).collect()
}

/// Prints a run's events: as text, or (`--json`) into one document with JSON lines on stderr.
pub(super) struct Printer {
    json: bool,
    progress: super::progress::Mode,
    expected: HashMap<String, u64>,
    pub(super) doc: Mutex<Doc>,
}

impl Printer {
    /// With `--json`: the run's one document on stdout, with its status and exit code.
    pub(super) fn print_document(&self, status: &str, code: i32) -> anyhow::Result<()> {
        let mut doc = std::mem::take(&mut *self.doc.lock());
        doc.0["status"] = json!(status);
        doc.0["exit_code"] = json!(code);
        super::json::print(&doc.0)
    }

    /// A printer for a run of `host`'s parts, expecting each to be about its last snapshot's
    /// size.
    pub(super) fn new(repo: &crate::repo::Repository, host: &str, json: bool) -> Printer {
        Printer {
            json,
            progress: super::progress::mode(json),
            expected: expected_sizes(repo, host),
            doc: Mutex::new(Doc::default()),
        }
    }
}

impl RunObserver for Printer {
    fn event(&self, event: RunEvent<'_>) {
        let quiet = super::output::quiet();
        if self.json {
            self.json_event(event);
            return;
        }
        match event {
            RunEvent::PartSkipped { part, why } if !quiet => {
                crate::say!("{part}: skipped ({why})")
            }
            RunEvent::Warning(w) if !quiet => report(log::Level::Warn, &w),
            RunEvent::Error(e) => report(log::Level::Error, &e),
            RunEvent::PartDone { report, seconds } => {
                let m = &report.manifest;
                if !quiet {
                    crate::say!(
                        "{}/{}: snapshot {} {}: {}, {}, read {}, added {} in {:.1}s ({:.0} MB/s read)",
                        m.host,
                        m.part,
                        report.id.short(),
                        m.status.as_str(),
                        count(m.files, "file", "files"),
                        format::size(m.bytes),
                        format::size(m.bytes_read),
                        format::size(m.bytes_added),
                        seconds,
                        m.bytes_read as f64 / 1e6 / seconds.max(1e-9)
                    );
                }
                if m.status == SnapshotStatus::Partial {
                    crate::tell!(
                        "{}/{}: {} not backed up:",
                        m.host,
                        m.part,
                        count(m.problems.len() as u64, "file", "files")
                    );
                    for p in m.problems.iter().take(20) {
                        crate::tell!("  {}: {}", p.path, p.error);
                    }
                }
            }
            RunEvent::Retention { plan, removed } if !quiet => {
                crate::say!("retention:");
                super::forget::print_plan(plan);
                crate::say!(
                    "retention: forgot {}",
                    count(removed as u64, "snapshot", "snapshots")
                );
            }
            RunEvent::Pruned(report) if !quiet => {
                crate::say!("prune: {}", super::prune::text(report))
            }
            RunEvent::PruneSkipped { holder } if !quiet => crate::say!(
                "prune: skipped, the store is busy ({holder}); a later prune frees the space"
            ),
            _ => {}
        }
    }

    fn watch_part(&self, name: &str, progress: &Progress, work: &mut dyn FnMut()) {
        let expected = self.expected.get(name).copied().unwrap_or(0);
        let status = |secs: f64| {
            let read = progress.bytes_read.load(Ordering::Relaxed);
            let files = progress.files.load(Ordering::Relaxed);
            let unchanged = progress.bytes_unchanged.load(Ordering::Relaxed);
            let done = unchanged + read;
            let est = super::progress::backup_estimate(read, unchanged, expected, secs);
            let text = format!(
                "{name}: {} files, {} read ({:.0} MB/s){}",
                files,
                format::size(read),
                read as f64 / 1e6 / secs,
                super::progress::estimate_text(est)
            );
            let json = json!({
                "type": "status", "part": name, "seconds": secs, "files": files,
                "bytes_done": done, "bytes_read": read, "bytes_expected": expected,
                "percent_done": est.map(|e| e.percent),
                "eta_seconds": est.and_then(|e| e.eta_secs),
            });
            (text, json)
        };
        // The work runs on this thread; the redraw on another.
        let work = parking_lot::Mutex::new(work);
        super::progress::while_running(self.progress, status, || (work.lock())())
    }
}
