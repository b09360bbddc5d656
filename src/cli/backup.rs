//! `bmbackup backup`: builds the run from the arguments and the config, runs it
//! ([`crate::backup::run`]) and prints what it tells: each part's summary, a progress line on a
//! terminal, retention and prune, errors.

use super::errors::count;
use super::logging::report;
use super::{format, Cli, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL};
use crate::backup::run::{planned_parts, run_server, RunEvent, RunObserver, RunPlan, RunStatus};
use crate::backup::{BackupOptions, Progress};
use crate::model::SnapshotStatus;
use clap::Args;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// This server's address as shown in the store [default: the primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// A part to back up, NAME=PATH (e.g. mail/imap=/var/spool/cyrus/data); repeatable.
    /// Overrides the parts of the config file.
    #[arg(long = "part", value_name = "NAME=PATH")]
    pub parts: Vec<String>,
    /// zstd level (1-19).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compression_level: Option<i32>,
    /// Threads reading and compressing files [default: number of CPUs].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Record the snapshots as taken at this time (same formats as --at) instead of now; for
    /// simulating a history in tests and benchmarks only.
    #[arg(long, hide = true, value_name = "WHEN")]
    pub simulate_time: Option<String>,
    /// Do not descend into filesystems mounted inside a part: their mount points are kept as
    /// empty folders (also `one_file_system = true` in the config). By default they are
    /// backed up with the part.
    #[arg(long)]
    pub one_file_system: bool,
    /// Seconds to wait for a running prune or repair, or another backup of the same part, to
    /// finish.
    #[arg(long, default_value_t = 3600)]
    pub lock_wait: u64,
    /// Print one JSON document at the end (the snapshots, errors, retention); progress and
    /// events go to stderr as JSON lines meanwhile.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &BackupArgs) -> anyhow::Result<i32> {
    // Writes to a closed pipe then fail (ignored by say!/tell!) instead of killing the run.
    // SAFETY: changing a signal disposition; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let (common, repo) = cli.open_repo()?;
    let config = &common.config;
    let host = a
        .host
        .clone()
        .or_else(|| config.host.clone())
        .unwrap_or_else(|| crate::hostaddr::primary_ipv4().to_string());
    let printer = Printer {
        json: a.json,
        progress: super::progress::mode(a.json),
        expected: expected_sizes(&repo, &host),
        doc: Mutex::new(Doc::default()),
    };
    let plan = RunPlan {
        parts: planned_parts(config, &a.parts, &printer)?,
        options: BackupOptions {
            host,
            compression_level: a
                .compression_level
                .or(config.compression_level)
                .unwrap_or(3),
            threads: a
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            started_at_ns: match &a.simulate_time {
                Some(w) => {
                    Some(crate::restore::when::parse_when(w, crate::store::now_ns())?.start_ns)
                }
                None => None,
            },
            one_file_system: a.one_file_system || config.one_file_system,
            lock_wait: Duration::from_secs(a.lock_wait),
        },
        store: common.store.clone(),
        lock_wait: Duration::from_secs(a.lock_wait),
        retention: config.retention.clone(),
        post_backup_hook: config.post_backup_hook.clone(),
        metrics_dir: config.metrics_dir.clone(),
    };
    let (status, code) = match run_server(&repo, &plan, &printer)? {
        RunStatus::Complete => ("complete", EXIT_OK),
        RunStatus::Partial => ("partial", EXIT_PARTIAL),
        RunStatus::Failed => ("failed", EXIT_ERROR),
    };
    if a.json {
        let mut doc = std::mem::take(&mut *printer.doc.lock());
        doc.0["status"] = json!(status);
        doc.0["exit_code"] = json!(code);
        super::json::print(&doc.0)?;
    }
    Ok(code)
}

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

/// The JSON document of `--json`, filled as events come.
struct Doc(Value);

impl Default for Doc {
    fn default() -> Self {
        Doc(
            json!({"snapshots": [], "skipped": [], "warnings": [], "errors": [],
                   "retention": null, "prune": null}),
        )
    }
}

impl Doc {
    fn push(&mut self, key: &str, v: Value) {
        if let Some(a) = self.0[key].as_array_mut() {
            a.push(v);
        }
    }
}

/// Prints a run's events: as text, or (`--json`) into one document with JSON lines on stderr.
struct Printer {
    json: bool,
    progress: super::progress::Mode,
    expected: HashMap<String, u64>,
    doc: Mutex<Doc>,
}

impl Printer {
    /// In JSON mode, an event as one line on stderr and, under `key`, in the document.
    fn record(&self, key: &str, kind: &str, v: Value) {
        let mut line = v.clone();
        line["type"] = json!(kind);
        crate::tell!("{line}");
        let mut doc = self.doc.lock();
        match key {
            "retention" | "prune" => doc.0[key] = v,
            _ => doc.push(key, v),
        }
    }
}

impl RunObserver for Printer {
    fn event(&self, event: RunEvent<'_>) {
        let quiet = super::output::quiet();
        if self.json {
            match event {
                RunEvent::PartSkipped { part, why } => {
                    self.record("skipped", "skipped", json!({"part": part, "why": why}))
                }
                RunEvent::Warning(w) => self.record("warnings", "warning", json!({"message": w})),
                RunEvent::Error(e) => self.record("errors", "error", json!({"message": e})),
                RunEvent::PartDone { report, seconds } => {
                    let m = &report.manifest;
                    self.record(
                        "snapshots",
                        "snapshot",
                        json!({
                            "id": report.id.to_hex(),
                            "short_id": report.id.short(),
                            "host": m.host,
                            "part": m.part,
                            "status": m.status.as_str(),
                            "files": m.files,
                            "dirs": m.dirs,
                            "bytes": m.bytes,
                            "bytes_read": m.bytes_read,
                            "bytes_added": m.bytes_added,
                            "seconds": seconds,
                            "problems": m.problems,
                        }),
                    );
                }
                RunEvent::Retention { plan, removed } => self.record(
                    "retention",
                    "retention",
                    json!({"forgot": removed, "snapshots": super::json::plan(plan)}),
                ),
                RunEvent::Pruned(report) => {
                    self.record("prune", "prune", super::json::prune(report))
                }
                RunEvent::PruneSkipped { holder } => {
                    self.record("prune", "prune", json!({"skipped": true, "holder": holder}))
                }
            }
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
            RunEvent::Pruned(report) if !quiet => crate::say!("prune: {report}"),
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
            let done = progress.bytes_unchanged.load(Ordering::Relaxed) + read;
            let est = super::progress::estimate(done, expected, secs);
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
