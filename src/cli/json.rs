//! The JSON documents `--json` prints for reports that have no serde form of their own (prune,
//! restore, forget plans), so every command writes them alike.

use crate::restore::RestoreReport;
use crate::retention::forget::Plan;
use crate::retention::prune::PruneReport;
use serde_json::{json, Value};

pub fn prune(r: &PruneReport) -> Value {
    json!({
        "dry_run": r.dry_run,
        "snapshots": r.snapshots,
        "packs_before": r.packs_before,
        "bytes_before": r.bytes_before,
        "packs_deleted": r.packs_deleted,
        "packs_rewritten": r.packs_rewritten,
        "packs_written": r.packs_written,
        "blobs_removed": r.blobs_removed,
        "bytes_after": r.bytes_after,
        "bytes_freed": r.bytes_freed(),
        "unused_kept_bytes": r.unused_kept_bytes,
    })
}

pub fn restore(r: &RestoreReport, dest: &std::path::Path, dry_run: bool) -> Value {
    json!({
        "dest": dest.display().to_string(),
        "dry_run": dry_run,
        "files": r.files,
        "other": r.other,
        "dirs": r.dirs,
        "bytes": r.bytes,
        "skipped_identical": r.skipped_identical,
        "failed": r.failed.iter().map(|(p, e)| json!({"path": p, "error": e})).collect::<Vec<_>>(),
        "planned": if dry_run { Some(&r.planned) } else { None },
    })
}

/// Each snapshot of a forget plan with its verdict and the rules that keep it.
pub fn plan(p: &Plan) -> Value {
    Value::Array(
        p.verdicts
            .iter()
            .map(|v| {
                let m = &v.snapshot.manifest;
                json!({
                    "id": v.snapshot.id.to_hex(),
                    "host": m.host,
                    "part": m.part,
                    "name": v.name,
                    "status": m.status.as_str(),
                    "bytes": m.bytes,
                    "keep": v.decision.keep,
                    "reasons": v.decision.reasons,
                })
            })
            .collect(),
    )
}

/// Prints `doc` as the command's one JSON document on stdout.
pub fn print(doc: &Value) -> anyhow::Result<()> {
    crate::say!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}
