//! `bmbackup backup --json`: the run's events as JSON lines on stderr and, gathered under
//! their keys, one document printed on stdout at the end.

use super::backup_printer::Printer;
use crate::backup::run::RunEvent;
use serde_json::{json, Value};

/// The JSON document of `--json`, filled as events come.
pub(super) struct Doc(pub(super) Value);

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

impl Printer {
    /// In JSON mode, an event as one line on stderr and, under `key`, in the document.
    pub(super) fn record(&self, key: &str, kind: &str, v: Value) {
        let mut line = v.clone();
        line["type"] = json!(kind);
        crate::tell!("{line}");
        let mut doc = self.doc.lock();
        match key {
            "retention" | "prune" => doc.0[key] = v,
            _ => doc.push(key, v),
        }
    }

    /// One event of the run, in JSON.
    pub(super) fn json_event(&self, event: RunEvent<'_>) {
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
                        // The folder on the mount (HOST/PART/NAME) and `--at NAME`.
                        "name": m.name,
                        "date": crate::timefmt::iso8601(m.started_ns),
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
            RunEvent::Pruned(report) => self.record("prune", "prune", super::json::prune(report)),
            RunEvent::PruneSkipped { holder } => {
                self.record("prune", "prune", json!({"skipped": true, "holder": holder}))
            }
        }
    }
}
