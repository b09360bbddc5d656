//! The outcome of the last `check`, kept beside the catalog (`last-check-<store id>.json`, 0600)
//! so that a front end can warn when the store's last check failed without checking again (the
//! console's overview does).

use super::check::CheckReport;
use crate::repo::Repository;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCheck {
    pub finished_ns: i64,
    pub ok: bool,
    /// What was found, counted: "2 damaged packs, 1 lost blob".
    pub summary: String,
    /// Whether chunk data was read (`--read-data`), not only the store's structure.
    pub read_data: bool,
}

fn file(repo: &Repository) -> Option<PathBuf> {
    let dir = repo.catalog.path().parent()?;
    Some(dir.join(format!("last-check-{}.json", repo.store.info.store_id)))
}

/// The counted findings of a report ("no damage" when there are none).
pub fn summary(r: &CheckReport) -> String {
    let parts: Vec<String> = [
        (r.damaged_packs.len(), "damaged pack(s)"),
        (r.damaged_manifests.len(), "damaged manifest(s)"),
        (r.bad_copies.len(), "damaged cop(ies) of blobs"),
        (r.bad_blobs.len(), "lost or damaged blob(s)"),
        (r.catalog.len(), "catalog disagreement(s)"),
        (r.loose_modes.len(), "store file(s) open to other users"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "no damage".to_string()
    } else {
        parts.join(", ")
    }
}

/// Records `report` as the last check of `repo`'s store (replacing the previous record).
pub fn record(repo: &Repository, report: &CheckReport, read_data: bool) -> std::io::Result<()> {
    let path = file(repo).ok_or_else(|| std::io::Error::other("the catalog has no folder"))?;
    let rec = LastCheck {
        finished_ns: crate::store::now_ns(),
        ok: report.is_ok(),
        summary: summary(report),
        read_data,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = crate::store::private::create_new(&tmp)?;
    f.write_all(&serde_json::to_vec(&rec).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)
}

/// The last recorded check of `repo`'s store, if any (an unreadable record counts as none).
pub fn read(repo: &Repository) -> Option<LastCheck> {
    let bytes = std::fs::read(file(repo)?).ok()?;
    serde_json::from_slice(&bytes).ok()
}
