//! What repair leaves in the store: damaged files set aside under `damaged/` (never deleted, so a
//! human or a forensic tool can still look at them) and one report per snapshot that references
//! lost data, `damage/<snapshot-id>.json`, which `snapshots` shows as status `damaged`. Also finds
//! leftovers of interrupted writes (temp files).

use super::backend::{temp_writer_is_gone, TEMP_PREFIX};
use super::{Store, StoreError, LOCKS_DIR, PACKS_DIR, SNAPSHOTS_DIR};
use crate::id::{Digest, SnapshotId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Folder of damage reports, one per damaged snapshot. Do not change.
pub const DAMAGE_DIR: &str = "damage";
/// Folder damaged packs and manifests are moved into (same relative path below it).
pub const DAMAGED_DIR: &str = "damaged";

/// One file of a snapshot that cannot be restored (whole or in part), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedFile {
    /// Path inside the snapshot, lossily printed when not UTF-8.
    pub path: String,
    /// `chunk` or `tree`.
    pub kind: String,
    /// The lost blob, hex.
    pub blob: String,
    /// `missing` or `damaged`.
    pub state: String,
}

/// The damage report of one snapshot; its manifest is kept unchanged beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamageReport {
    pub snapshot: String,
    pub found_ns: i64,
    pub files: Vec<DamagedFile>,
}

fn report_key(id: &SnapshotId) -> String {
    format!("{DAMAGE_DIR}/{}.json", id.to_hex())
}

impl Store {
    fn io(&self, key: &str) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        let path = self.backend().describe(key);
        move |source| StoreError::Io { path, source }
    }

    /// Writes (or replaces, when the damage changed) a snapshot's damage report.
    pub fn write_damage_report(&self, id: &SnapshotId, r: &DamageReport) -> Result<(), StoreError> {
        let key = report_key(id);
        if let Ok(old) = self.backend().read_all(&key) {
            if let Ok(old) = serde_json::from_slice::<DamageReport>(&old) {
                if old.files == r.files {
                    return Ok(());
                }
            }
        }
        let json = serde_json::to_vec_pretty(r).map_err(|e| StoreError::Corrupt {
            what: "damage report".into(),
            path: self.backend().describe(&key),
            detail: e.to_string(),
        })?;
        self.backend()
            .write_atomic(&key, &json)
            .map_err(self.io(&key))
    }

    /// Removes the report of a snapshot whose lost data was stored again.
    pub fn remove_damage_report(&self, id: &SnapshotId) -> Result<(), StoreError> {
        let key = report_key(id);
        match self.backend().delete(&key) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io(&key)(e)),
            _ => Ok(()),
        }
    }

    /// Every damage report by snapshot; unreadable reports count as damage with no file list.
    pub fn damage_reports(&self) -> Result<HashMap<SnapshotId, DamageReport>, StoreError> {
        let mut out = HashMap::new();
        let names = self
            .backend()
            .list(DAMAGE_DIR)
            .map_err(self.io(DAMAGE_DIR))?;
        for name in names.iter().filter(|n| !n.starts_with(TEMP_PREFIX)) {
            let Some(id) = name
                .strip_suffix(".json")
                .and_then(|h| h.parse::<Digest>().ok())
            else {
                continue;
            };
            let key = format!("{DAMAGE_DIR}/{name}");
            let report = self
                .backend()
                .read_all(&key)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_else(|| DamageReport {
                    snapshot: id.to_hex(),
                    found_ns: 0,
                    files: Vec::new(),
                });
            out.insert(SnapshotId(id), report);
        }
        Ok(out)
    }

    /// Moves a damaged store file (`packs/…` or `snapshots/…`) to `damaged/…`; returns its new key.
    pub fn set_aside(&self, key: &str) -> Result<String, StoreError> {
        let to = format!("{DAMAGED_DIR}/{key}");
        self.backend().rename(key, &to).map_err(self.io(key))?;
        Ok(to)
    }

    /// Removes the temp files of writers on this host that are gone (killed backups): a
    /// backup calls it, so such leftovers do not wait for `repair`. Returns what was removed.
    pub fn remove_orphan_temp_files(&self) -> Result<Vec<String>, StoreError> {
        let mut removed = Vec::new();
        for key in self.temp_files(Duration::ZERO)? {
            let name = key.rsplit('/').next().unwrap_or(&key);
            if !temp_writer_is_gone(name) {
                continue;
            }
            match self.backend().delete(&key) {
                Ok(()) => removed.push(self.backend().describe(&key)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io(&key)(e)),
            }
        }
        Ok(removed)
    }

    /// Temp files (interrupted writes) older than `min_age`, as keys.
    pub fn temp_files(&self, min_age: Duration) -> Result<Vec<String>, StoreError> {
        let mut dirs = vec![
            String::new(),
            SNAPSHOTS_DIR.to_string(),
            LOCKS_DIR.to_string(),
            DAMAGE_DIR.to_string(),
            PACKS_DIR.to_string(),
        ];
        for d in self.backend().list(PACKS_DIR).map_err(self.io(PACKS_DIR))? {
            if d.len() == 2 {
                dirs.push(format!("{PACKS_DIR}/{d}"));
            }
        }
        let now = SystemTime::now();
        let mut out = Vec::new();
        for dir in dirs {
            let names = self.backend().list(&dir).map_err(self.io(&dir))?;
            for name in names.into_iter().filter(|n| n.starts_with(TEMP_PREFIX)) {
                let key = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                let old_enough = match self.backend().modified(&key) {
                    Ok(t) => now.duration_since(t).unwrap_or(Duration::ZERO) >= min_age,
                    Err(_) => false,
                };
                if old_enough {
                    out.push(key);
                }
            }
        }
        Ok(out)
    }
}
