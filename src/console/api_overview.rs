//! The overview page (per host and part: the last backup, the policy, the store's size and
//! savings, and the warnings an admin must see) and the snapshot list the timeline and the
//! browser draw from.

use super::app::Ctx;
use super::http::Response;
use super::http::{error, json};
use crate::model::{Snapshot, SnapshotStatus};
use crate::repo::named_snapshots;
use crate::timefmt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;

/// A part without a complete backup for longer than this is a warning.
const STALE_NS: i64 = 26 * 3600 * 1_000_000_000;

fn snapshot_json(s: &Snapshot, name: &str, damaged: bool) -> Value {
    let m = &s.manifest;
    json!({
        "id": s.id.to_hex(),
        "short": s.id.short(),
        "host": m.host,
        "part": m.part,
        "name": name,
        "source": m.source,
        "started": timefmt::iso8601(m.started_ns),
        "started_ns": m.started_ns,
        "seconds": (m.finished_ns - m.started_ns) as f64 / 1e9,
        "status": if damaged { "damaged" } else { m.status.as_str() },
        "files": m.files,
        "dirs": m.dirs,
        "bytes": m.bytes,
        "bytes_added": m.bytes_added,
        "problems": m.problems.len(),
    })
}

fn damaged_ids(ctx: &Ctx<'_>) -> HashSet<String> {
    match ctx.repo.store.damage_reports() {
        Ok(r) => r.keys().map(|id| id.to_hex()).collect(),
        Err(e) => {
            log::warn!("console: damage reports unreadable: {e}");
            HashSet::new()
        }
    }
}

/// Every snapshot, oldest first, with its folder name and status.
pub fn snapshots(ctx: &Ctx<'_>) -> Response {
    if let Err(e) = ctx.repo.sync() {
        return error(500, &e.to_string());
    }
    let all = match ctx.repo.snapshots() {
        Ok(a) => a,
        Err(e) => return error(500, &e.to_string()),
    };
    let damaged = damaged_ids(ctx);
    let list: Vec<Value> = named_snapshots(&all)
        .iter()
        .map(|(s, n)| snapshot_json(s, n, damaged.contains(&s.id.to_hex())))
        .collect();
    json(200, &Value::Array(list))
}

pub fn overview(ctx: &Ctx<'_>) -> Response {
    if let Err(e) = ctx.repo.sync() {
        return error(500, &e.to_string());
    }
    let all = match ctx.repo.snapshots() {
        Ok(a) => a,
        Err(e) => return error(500, &e.to_string()),
    };
    let damaged = damaged_ids(ctx);
    let now = crate::store::now_ns();
    let mut parts: BTreeMap<(String, String), Vec<(&Snapshot, String)>> = BTreeMap::new();
    for (s, n) in named_snapshots(&all) {
        parts
            .entry((s.manifest.host.clone(), s.manifest.part.clone()))
            .or_default()
            .push((s, n));
    }
    let mut warnings = Vec::new();
    let mut rows = Vec::new();
    for ((host, part), snaps) in &parts {
        let last = snaps.iter().max_by_key(|(s, _)| s.manifest.started_ns);
        let complete = snaps
            .iter()
            .filter(|(s, _)| s.manifest.status == SnapshotStatus::Complete)
            .max_by_key(|(s, _)| s.manifest.finished_ns);
        match complete {
            None => warnings.push(format!("{host}/{part}: no complete backup at all")),
            Some((s, _)) if now - s.manifest.finished_ns > STALE_NS => warnings.push(format!(
                "{host}/{part}: no complete backup for more than 26 h (last {} UTC)",
                timefmt::display(s.manifest.finished_ns)
            )),
            _ => {}
        }
        if let Some((s, n)) = last {
            if s.manifest.status == SnapshotStatus::Partial {
                warnings.push(format!(
                    "{host}/{part}: the last backup ({n}) is partial: {} file(s) were not backed up",
                    s.manifest.problems.len()
                ));
            }
        }
        for (s, n) in snaps {
            if damaged.contains(&s.id.to_hex()) {
                warnings.push(format!(
                    "{host}/{part}/{n} is damaged (data lost; `bmbackup check` names the files)"
                ));
            }
        }
        rows.push(json!({
            "host": host,
            "part": part,
            "snapshots": snaps.len(),
            "last": last.map(|(s, n)| snapshot_json(s, n, damaged.contains(&s.id.to_hex()))),
            "last_complete": complete.map(|(_, n)| n),
        }));
    }
    warnings.extend(store_warnings(ctx));
    let retention = ctx.app.settings.config.retention.as_ref().map(|r| {
        json!({
            "keep_last": r.keep_last, "keep_days": r.keep_days, "keep_ages": r.keep_ages,
            "keep_daily": r.keep_daily, "keep_weekly": r.keep_weekly, "keep_monthly": r.keep_monthly,
        })
    });
    json(
        200,
        &json!({
            "host": ctx.app.settings.host,
            "store": ctx.app.settings.store.display().to_string(),
            "parts": rows,
            "retention": retention,
            "stats": *ctx.app.stats.lock(),
            "warnings": warnings,
            "last_check": crate::integrity::last_check::read(ctx.repo),
        }),
    )
}

/// Warnings about the store itself: readable by others, damaged files set aside, a failed check.
fn store_warnings(ctx: &Ctx<'_>) -> Vec<String> {
    let mut w = Vec::new();
    let store = &ctx.app.settings.store;
    for dir in [store.clone(), store.join("packs"), store.join("snapshots")] {
        if let Ok(md) = std::fs::metadata(&dir) {
            if md.permissions().mode() & 0o077 != 0 {
                w.push(format!(
                    "{} may be read by other users (mode {:04o}): `chmod 700` it",
                    dir.display(),
                    md.permissions().mode() & 0o7777
                ));
            }
        }
    }
    match crate::integrity::last_check::read(ctx.repo) {
        Some(c) if !c.ok => w.push(format!(
            "the last check ({} UTC) failed: {}; `bmbackup check` names the files, `bmbackup repair` sets damage aside",
            crate::timefmt::display(c.finished_ns),
            c.summary
        )),
        _ => {}
    }
    let damaged = store.join(crate::store::damage::DAMAGED_DIR);
    if std::fs::read_dir(&damaged).is_ok_and(|mut d| d.next().is_some()) {
        w.push(format!(
            "{} holds damaged files repair set aside: the last check found damage",
            damaged.display()
        ));
    }
    w
}
