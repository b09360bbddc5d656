//! `repair`: brings a damaged or interrupted store back to a consistent state without deleting
//! data. Under an exclusive lock it removes leftovers of interrupted writes, verifies every blob,
//! copies the good blobs of damaged packs into new packs, sets damaged packs and manifests aside
//! in `damaged/`, rebuilds the catalog from the store, and writes a damage report for every
//! snapshot that references lost data (its manifest is kept: the rest of it still restores).
//!
//! After a repair the catalog lists no lost blob, so the next backup stores again every lost
//! chunk its source still has (it also re-reads unchanged files whose chunks are gone).

use crate::id::{PackId, SnapshotId};
use crate::integrity::check::{check, scan, CheckError, CheckOptions};
use crate::model::Manifest;
use crate::repo::{RepoError, Repository};
use crate::store::damage::{DamageReport, DamagedFile};
use crate::store::lock::{LockError, LockKind, StoreLock};
use crate::store::pack::{open_blob, Frame, PackBuilder};
use crate::store::{now_ns, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Temp files younger than this may belong to a running write (a backup that started after we
/// looked, or one on another host with a skewed clock), so they are left alone by default.
pub const TEMP_SAFETY_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl From<crate::catalog::CatalogError> for RepairError {
    fn from(e: crate::catalog::CatalogError) -> Self {
        RepairError::Repo(e.into())
    }
}

#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// Remove every temp file, however young (safe only because we hold the exclusive lock and
    /// no other bmbackup can be writing).
    pub now: bool,
    /// How long to wait for running backups.
    pub wait: Duration,
    /// Only make the store private again (no lock, no scan): see [`fix_modes`].
    pub fix_modes_only: bool,
}

#[derive(Debug, Default)]
pub struct RepairReport {
    /// Store files and folders that were open to other users, with their old modes.
    pub modes_fixed: Vec<(String, u32)>,
    pub temp_removed: Vec<String>,
    /// Files moved into `damaged/`: (from, to).
    pub set_aside: Vec<(String, String)>,
    pub blobs_salvaged: usize,
    pub manifests_rewritten: Vec<String>,
    /// Damaged snapshots and how many of their files lost data.
    pub damaged_snapshots: Vec<(SnapshotId, usize)>,
    pub healed_snapshots: Vec<SnapshotId>,
}

/// Takes the group and other bits off every file and folder of the store (an older bmbackup
/// made them 0644/0755). Needs no lock: it only ever removes access, as writers do themselves.
pub fn fix_modes(store: &Store) -> Result<Vec<(String, u32)>, RepairError> {
    store.backend().tighten_modes().map_err(|source| {
        RepairError::Store(StoreError::Io {
            path: store.root().display().to_string(),
            source,
        })
    })
}

pub fn repair(repo: &Repository, opts: &RepairOptions) -> Result<RepairReport, RepairError> {
    if opts.fix_modes_only {
        return Ok(RepairReport {
            modes_fixed: fix_modes(&repo.store)?,
            ..RepairReport::default()
        });
    }
    let _lock = StoreLock::acquire(
        repo.store.shared_backend(),
        LockKind::Exclusive,
        "repair",
        opts.wait,
    )?;
    let mut report = RepairReport {
        modes_fixed: fix_modes(&repo.store)?,
        ..RepairReport::default()
    };
    let min_age = if opts.now {
        Duration::ZERO
    } else {
        TEMP_SAFETY_AGE
    };
    for key in repo.store.temp_files(min_age)? {
        match repo.store.backend().delete(&key) {
            Ok(()) => report
                .temp_removed
                .push(repo.store.backend().describe(&key)),
            Err(e) => log::warn!("cannot remove {}: {e}", repo.store.backend().describe(&key)),
        }
    }
    let full = CheckOptions {
        read_data_percent: 100.0,
    };
    let found = scan(repo, &full)?;
    salvage_packs(&repo.store, &found, &mut report)?;
    for f in &found.report.damaged_packs {
        // verify_data may list a pack twice (index fine, size changed): move it once.
        if report.set_aside.iter().any(|(from, _)| from == &f.path) {
            continue;
        }
        if let Ok(to) = repo.store.set_aside(&f.key) {
            report
                .set_aside
                .push((f.path.clone(), repo.store.backend().describe(&to)));
        }
    }
    for f in &found.report.damaged_manifests {
        if let Some(id) = rescue_manifest(&repo.store, &f.key) {
            report.manifests_rewritten.push(id.to_hex());
        }
        let to = repo.store.set_aside(&f.key)?;
        report
            .set_aside
            .push((f.path.clone(), repo.store.backend().describe(&to)));
    }
    // Rebuilt from the store alone: no lost blob stays listed, so backups store them again.
    repo.catalog.reset()?;
    repo.sync()?;
    let (after, _) = check(repo, &CheckOptions::default())?;
    mark_damage(&repo.store, &after.report, &mut report)?;
    Ok(report)
}

/// Copies every good blob of a pack that has bad ones into new packs, then sets the pack aside.
fn salvage_packs(
    store: &Store,
    found: &crate::integrity::check::Scan,
    report: &mut RepairReport,
) -> Result<(), RepairError> {
    let damaged: HashSet<PackId> = found.bad_copies.keys().map(|k| k.0).collect();
    let mut builder = PackBuilder::new();
    for (pack, _, entries) in found.packs.iter().filter(|p| damaged.contains(&p.0)) {
        let bytes = store
            .backend()
            .read_all(&Store::pack_key(pack))
            .unwrap_or_default();
        for e in entries {
            let start = e.offset as usize;
            let Some(frame) = bytes.get(start..start.saturating_add(e.stored_len as usize)) else {
                continue;
            };
            if open_blob(frame, e).is_err() {
                continue;
            }
            builder.add(
                e.kind,
                e.id,
                &Frame {
                    bytes: frame.to_vec(),
                    raw_len: e.raw_len,
                },
            );
            report.blobs_salvaged += 1;
            if builder.len() >= crate::repo::writer::TARGET_PACK_SIZE {
                write_pack(store, std::mem::take(&mut builder))?;
            }
        }
    }
    write_pack(store, builder)?;
    // Only once the good blobs are safely elsewhere.
    for pack in &damaged {
        let key = Store::pack_key(pack);
        let to = store.set_aside(&key)?;
        report.set_aside.push((
            store.backend().describe(&key),
            store.backend().describe(&to),
        ));
    }
    Ok(())
}

fn write_pack(store: &Store, builder: PackBuilder) -> Result<(), RepairError> {
    if builder.is_empty() {
        return Ok(());
    }
    let (bytes, id, _) = builder.finish();
    store.write_pack(&PackId(id), &bytes)?;
    Ok(())
}

/// A manifest whose bytes no longer match its name but still parse (a flipped byte in a text
/// field) is written again under its new hash, so its snapshot and data survive; the walk that
/// follows marks it damaged if its root or any file is lost.
fn rescue_manifest(store: &Store, key: &str) -> Option<SnapshotId> {
    let bytes = store.backend().read_all(key).ok()?;
    let m: Manifest = serde_json::from_slice(&bytes).ok()?;
    m.root.parse::<crate::id::Digest>().ok()?;
    store.write_manifest(&m).ok()
}

/// Writes a damage report for each snapshot using lost blobs and removes reports of snapshots
/// whose data is complete again (a backup stored the lost chunks anew).
fn mark_damage(
    store: &Store,
    check: &crate::integrity::check::CheckReport,
    report: &mut RepairReport,
) -> Result<(), RepairError> {
    let mut per_snap: HashMap<String, Vec<DamagedFile>> = HashMap::new();
    for b in &check.bad_blobs {
        for u in &b.uses {
            per_snap
                .entry(u.snapshot.clone())
                .or_default()
                .push(DamagedFile {
                    path: u.path.clone(),
                    kind: b.kind.to_string(),
                    blob: b.id.clone(),
                    state: b.state.as_str().to_string(),
                });
        }
    }
    let now = now_ns();
    for (snap, mut files) in per_snap {
        let Ok(id) = snap.parse::<crate::id::Digest>().map(SnapshotId) else {
            continue;
        };
        files.sort_by(|a, b| (&a.path, &a.blob).cmp(&(&b.path, &b.blob)));
        report.damaged_snapshots.push((id, files.len()));
        store.write_damage_report(
            &id,
            &DamageReport {
                snapshot: snap,
                found_ns: now,
                files,
            },
        )?;
    }
    for h in &check.healed {
        if let Ok(id) = h.parse::<crate::id::Digest>().map(SnapshotId) {
            store.remove_damage_report(&id)?;
            report.healed_snapshots.push(id);
        }
    }
    report.damaged_snapshots.sort();
    Ok(())
}
