//! The backup page: the policy as read from the config file (parts, switches, retention), and
//! "back up now": the server's run ([`crate::backup::run::run_server`], as `bmbackup backup`
//! runs it) in a background job whose progress and log the page shows.

use super::app::Ctx;
use super::http::{error, json, Response};
use super::jobs::Job;
use crate::backup::run::{run_server, RunEvent, RunObserver, RunStatus};
use crate::backup::settings::{plan_run, RunOverrides};
use crate::backup::Progress;
use crate::config::part_skipped_because;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a console backup waits for a running prune or repair.
const LOCK_WAIT: Duration = Duration::from_secs(3600);

/// `GET /api/policy`.
pub fn policy(ctx: &Ctx<'_>) -> Response {
    let s = &ctx.app.settings;
    let c = &s.config;
    let parts: Vec<_> = c
        .parts
        .iter()
        .map(|(name, p)| {
            let name = name.trim_matches('/');
            json!({
                "name": name,
                "path": p.path.display().to_string(),
                "enabled": p.enabled,
                "pre": p.pre, "post": p.post,
                "skipped_because": part_skipped_because(name, p, c).map(|w| w.to_string()),
            })
        })
        .collect();
    let r = c.retention.as_ref();
    json(
        200,
        &json!({
            "config_file": s.config_path.as_ref().map(|p| p.display().to_string()),
            "store": s.store.display().to_string(),
            "host": s.host,
            "parts": parts,
            "backup_emails": c.backup_emails,
            "backup_archived_emails": c.backup_archived_emails,
            "one_file_system": c.one_file_system,
            "compression_level": c.compression_level.unwrap_or(crate::backup::DEFAULT_COMPRESSION_LEVEL),
            "post_backup_hook": c.post_backup_hook,
            "metrics_dir": c.metrics_dir.as_ref().map(|p| p.display().to_string()),
            "retention": r.map(|r| json!({
                "keep_last": r.keep_last, "keep_days": r.keep_days, "keep_ages": r.keep_ages,
                "keep_daily": r.keep_daily, "keep_weekly": r.keep_weekly, "keep_monthly": r.keep_monthly,
            })),
        }),
    )
}

/// Tells a job what the run does.
struct JobObserver<'a> {
    job: &'a Job,
}

impl RunObserver for JobObserver<'_> {
    fn event(&self, event: RunEvent<'_>) {
        let line = match event {
            RunEvent::PartSkipped { part, why } => format!("{part}: skipped ({why})"),
            RunEvent::Warning(w) => format!("warning: {w}"),
            RunEvent::Error(e) => format!("error: {e}"),
            RunEvent::PartDone { report, seconds } => {
                let m = &report.manifest;
                format!(
                    "{}/{}: snapshot {} {}: {} files, {} bytes, read {}, added {} in {seconds:.1} s{}",
                    m.host,
                    m.part,
                    report.id.short(),
                    m.status.as_str(),
                    m.files,
                    m.bytes,
                    m.bytes_read,
                    m.bytes_added,
                    if m.problems.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} file(s) not backed up)", m.problems.len())
                    }
                )
            }
            RunEvent::Retention { removed, .. } => {
                format!("retention: forgot {removed} snapshot(s)")
            }
            RunEvent::Pruned(r) => format!("prune: {r}"),
            RunEvent::PruneSkipped { holder } => {
                format!("prune: skipped, the store is busy ({holder})")
            }
        };
        self.job.log(line);
    }

    fn watch_part(&self, part: &str, progress: &Progress, work: &mut dyn FnMut()) {
        self.job.log(format!("{part}: backing up"));
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    self.job.state.lock().part = Some((
                        part.to_string(),
                        progress.files.load(Ordering::Relaxed),
                        progress.bytes_read.load(Ordering::Relaxed),
                        progress.bytes.load(Ordering::Relaxed),
                    ));
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            work();
            done.store(true, Ordering::Relaxed);
        });
    }
}

/// `POST /api/backup/run`: starts the configured backup of this server.
pub fn run(ctx: &Ctx<'_>) -> Response {
    if let Some(j) = ctx.app.jobs.running("backup") {
        return error(
            409,
            &format!(
                "a backup started from the console is still running (job {})",
                j.id
            ),
        );
    }
    let s = &ctx.app.settings;
    let host = s.host.clone();
    log::info!(target: super::LOG_TARGET, "{} started a backup of {host} (parts of {})", ctx.who,
        s.config_path.as_ref().map_or("the default config".to_string(), |p| p.display().to_string()));
    let app = std::sync::Arc::clone(ctx.app);
    let job = ctx.app.jobs.start(
        "backup",
        format!("backup of {host}"),
        ctx.who.clone(),
        move |job| {
            let observer = JobObserver { job };
            let s = &app.settings;
            let outcome = (|| -> Result<RunStatus, String> {
                let repo = app.open_repo().map_err(|e| e.to_string())?;
                // The nightly run's settings: the config's, as the CLI's `backup` takes them.
                let plan = plan_run(
                    &s.config,
                    s.store.clone(),
                    s.host.clone(),
                    &RunOverrides {
                        lock_wait: Some(LOCK_WAIT),
                        ..RunOverrides::default()
                    },
                    &observer,
                )
                .map_err(|e| e.to_string())?;
                run_server(&repo, &plan, &observer).map_err(|e| e.to_string())
            })();
            let outcome = match outcome {
                Ok(RunStatus::Complete) => "complete",
                Ok(RunStatus::Partial) => "partial",
                Ok(RunStatus::Failed) => "failed",
                Err(e) => {
                    job.log(format!("error: {e}"));
                    "failed"
                }
            };
            log::info!(target: super::LOG_TARGET, "{}: backup of {} finished: {outcome}", job.who, s.host);
            job.finish(outcome);
            app.refresh_stats();
        },
    );
    json(200, &json!({ "job": job.id }))
}
