//! What the restore commands share: the host default, `--at` parsing, the point-in-time options
//! of `restore-user` and `restore-server`, a progress line, and restoring a plan's items one by
//! one with the closing report of each.

use super::restore_report::print_report;
use super::{format, Common, EXIT_OK};
use crate::restore::when::{parse_when, When};
use crate::restore::{RestoreOptions, RestoreProgress, RestoreReport};
use crate::store::now_ns;
use clap::Args;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The options of a point-in-time restore of planned items (`restore-user`, `restore-server`).
#[derive(Args, Debug)]
pub struct PointInTime {
    /// As `restore --at`, for each part: a snapshot folder name (2026-11-20_140005_2), else the
    /// newest complete snapshot started at or before WHEN (UTC), a time meaning all of its last
    /// unit: 2026-11-20 (the whole day), 2026-11-20T14:00, "2026-11-20 14:00:05", last, 7d, D-7.
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub at: String,
    /// Restore into destinations that are not empty (identical files are kept).
    #[arg(long)]
    pub overwrite: bool,
    /// Only list what would be written.
    #[arg(long)]
    pub dry_run: bool,
}

impl PointInTime {
    pub fn when(&self) -> anyhow::Result<When> {
        parse_at(Some(&self.at))
    }

    /// Restores each item (announced first) with a progress line and prints its report;
    /// returns the worst exit code.
    pub fn restore_each<T, E>(
        &self,
        items: &[T],
        dest_of: impl Fn(&T) -> &Path,
        announce: impl Fn(&T),
        exec: impl Fn(&T, &RestoreOptions) -> Result<RestoreReport, E>,
    ) -> anyhow::Result<i32>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut code = EXIT_OK;
        for item in items {
            announce(item);
            let report = with_progress(super::progress::mode(false), 0, |progress| {
                let opts = RestoreOptions {
                    overwrite: self.overwrite,
                    dry_run: self.dry_run,
                    progress,
                    ..RestoreOptions::default()
                };
                exec(item, &opts)
            })?;
            code = code.max(print_report(&report, dest_of(item), self.dry_run));
        }
        Ok(code)
    }
}

/// `--host`, else the config's `host`, else this machine's primary IPv4 address.
pub fn host_or_default(host: Option<&str>, common: &Common) -> String {
    host.map(str::to_string)
        .or_else(|| common.config.host.clone())
        .unwrap_or_else(|| crate::hostaddr::primary_ipv4().to_string())
}

/// `--at WHEN`; none means now (the newest snapshot).
pub fn parse_at(at: Option<&str>) -> anyhow::Result<When> {
    let now = now_ns();
    Ok(match at {
        Some(w) => parse_when(w, now)?,
        None => When::instant(now),
    })
}

/// Runs `f` with progress counters while its progress is shown (see [`super::progress`]):
/// files and bytes written, and against `expected` bytes (0: unknown) a percentage and an ETA;
/// without a display `f` gets no counters.
pub fn with_progress<T>(
    mode: super::progress::Mode,
    expected: u64,
    f: impl FnOnce(Option<Arc<RestoreProgress>>) -> T,
) -> T {
    if mode == super::progress::Mode::Off {
        return f(None);
    }
    let progress = Arc::new(RestoreProgress::default());
    super::progress::while_running(
        mode,
        |secs| {
            let bytes = progress.bytes.load(Ordering::Relaxed);
            let files = progress.files.load(Ordering::Relaxed);
            let est = super::progress::estimate(bytes, expected, secs);
            let text = format!(
                "restoring: {files} files, {} written ({:.0} MB/s){}",
                format::size(bytes),
                bytes as f64 / 1e6 / secs,
                super::progress::estimate_text(est)
            );
            let json = serde_json::json!({
                "type": "status", "seconds": secs, "files": files, "bytes_done": bytes,
                "bytes_expected": expected,
                "percent_done": est.map(|e| e.percent),
                "eta_seconds": est.and_then(|e| e.eta_secs),
            });
            (text, json)
        },
        || f(Some(Arc::clone(&progress))),
    )
}
