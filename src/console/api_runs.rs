//! The runs page: past backups as the store records them (one line per part's snapshot,
//! newest first: when, how long, what was added, files that could not be read), the last run
//! as the metrics file tells it (a run that failed before writing any snapshot shows only
//! there), and `check` from the console: a background job that verifies the store as
//! `bmbackup check` does and records its outcome for the overview.

use super::app::Ctx;
use super::http::{error, json, Response};
use crate::integrity::check::{check, CheckOptions};
use crate::repo::named_snapshots;
use crate::timefmt;
use serde_json::{json, Value};

/// Past snapshots shown.
const MAX_RUNS: usize = 300;
/// Problems shown per snapshot (the CLI's `history` and `restore` show all).
const MAX_PROBLEMS: usize = 5;

/// `GET /api/runs`.
pub fn runs(ctx: &Ctx<'_>) -> Response {
    if let Err(e) = ctx.repo.sync() {
        return error(500, &e.to_string());
    }
    let all = match ctx.repo.snapshots() {
        Ok(a) => a,
        Err(e) => return error(500, &e.to_string()),
    };
    let mut rows: Vec<Value> = named_snapshots(&all)
        .iter()
        .map(|(s, name)| {
            let m = &s.manifest;
            json!({
                "id": s.id.to_hex(),
                "host": m.host,
                "part": m.part,
                "name": name,
                "started": timefmt::iso8601(m.started_ns),
                "started_ns": m.started_ns,
                "seconds": (m.finished_ns - m.started_ns) as f64 / 1e9,
                "status": m.status.as_str(),
                "files": m.files,
                "bytes": m.bytes,
                "bytes_added": m.bytes_added,
                "problems": m.problems.len(),
                "problem_lines": m.problems.iter().take(MAX_PROBLEMS)
                    .map(|p| format!("{}: {}", p.path, p.error)).collect::<Vec<_>>(),
            })
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r["started_ns"].as_i64().unwrap_or(0)));
    rows.truncate(MAX_RUNS);
    json(
        200,
        &json!({
            "snapshots": rows,
            "metrics": metrics(ctx),
            "last_check": crate::integrity::last_check::read(ctx.repo),
            "check_running": ctx.app.jobs.running("check").map(|j| j.id),
        }),
    )
}

/// The last run as `metrics_dir/bmbackup.prom` records it: `{file, lines}` with each sample's
/// name, labels and value; null without a metrics folder.
fn metrics(ctx: &Ctx<'_>) -> Value {
    let Some(dir) = &ctx.app.settings.config.metrics_dir else {
        return Value::Null;
    };
    let path = dir.join("bmbackup.prom");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return json!({ "file": path, "error": e.to_string() }),
    };
    let samples: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with("bmbackup_"))
        .filter_map(|l| {
            let (name_labels, value) = l.rsplit_once(' ')?;
            let (name, labels) = match name_labels.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (name_labels, ""),
            };
            Some(json!({ "name": name, "labels": labels, "value": value }))
        })
        .collect();
    json!({ "file": path, "samples": samples })
}

/// `POST /api/check/run` `{read_data_percent}`: verifies the store in a background job.
pub fn run_check(ctx: &Ctx<'_>, body: &Value) -> Response {
    if let Some(j) = ctx.app.jobs.running("check") {
        return error(409, &format!("a check is already running (job {})", j.id));
    }
    let percent = body
        .get("read_data_percent")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    if !(0.0..=100.0).contains(&percent) {
        return error(400, "read_data_percent is between 0 and 100");
    }
    log::info!(target: super::LOG_TARGET, "{} started a check of the store (reading {percent}% of the data)", ctx.who);
    let app = std::sync::Arc::clone(ctx.app);
    let what = if percent > 0.0 {
        format!("check, reading {percent}% of the data")
    } else {
        "check of the store's structure".to_string()
    };
    let job = ctx
        .app
        .jobs
        .start("check", what, ctx.who.clone(), move |job| {
            let outcome = (|| -> Result<&'static str, String> {
                let repo = app.open_repo().map_err(|e| e.to_string())?;
                let opts = CheckOptions {
                    read_data_percent: percent,
                };
                let (scan, _) = check(&repo, &opts).map_err(|e| e.to_string())?;
                let r = &scan.report;
                if let Err(e) = crate::integrity::last_check::record(&repo, r, percent > 0.0) {
                    job.log(format!("warning: the outcome was not recorded: {e}"));
                }
                let n = |count: u64, one: &str| {
                    format!("{count} {one}{}", if count == 1 { "" } else { "s" })
                };
                job.log(format!(
                    "{}, {}, {}, {} ({} verified, {} read)",
                    n(r.packs as u64, "pack"),
                    n(r.snapshots as u64, "snapshot"),
                    n(r.trees as u64, "tree"),
                    n(r.chunks as u64, "chunk"),
                    r.chunks_verified,
                    crate::cli::format::size(r.bytes_read)
                ));
                for f in &r.damaged_packs {
                    job.log(format!("damaged pack {}: {}", f.key, f.error));
                }
                for b in r.bad_blobs.iter().take(50) {
                    job.log(format!("{} {} {}", b.kind, b.id, b.state.as_str()));
                }
                job.log(crate::integrity::last_check::summary(r));
                Ok(if r.is_ok() { "complete" } else { "failed" })
            })();
            let outcome = outcome.unwrap_or_else(|e| {
                job.log(format!("error: {e}"));
                "failed"
            });
            log::info!(target: super::LOG_TARGET, "{}: check finished: {outcome}", job.who);
            job.finish(outcome);
        });
    json(200, &json!({ "job": job.id }))
}
