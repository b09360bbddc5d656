//! `prune`: deletes data no snapshot references. Marks every tree and chunk reachable from the
//! store's manifests, deletes packs with nothing live, and rewrites packs whose live share fell
//! below a threshold (new packs are committed before old ones are deleted, so a crash leaves
//! duplicates, never losses). Runs under an exclusive store lock: no backup can be deduplicating
//! against a chunk while prune decides it is garbage.

use crate::catalog::diskset::DiskSet;
use crate::id::{Digest, PackId, TreeId};
use crate::pages::TreeBlob;
use crate::repo::writer::TARGET_PACK_SIZE;
use crate::repo::{RepoError, Repository};
use crate::store::lock::{LockError, LockKind, StoreLock};
use crate::store::pack::{
    BlobKind, Frame, IndexEntry, PackBuilder, INDEX_ENTRY_LEN, PACK_MAGIC, TRAILER_LEN,
};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot prune: {0}; nothing was deleted. Run `bmbackup check` to find the damage")]
    Unreachable(String),
    #[error(
        "cannot prune: {0}; nothing was deleted. Run `bmbackup check`, then `bmbackup repair`"
    )]
    DamagedStore(String),
}

#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Rewrite a pack when less than this fraction of its bytes is still used.
    pub repack_below: f64,
    /// Report what would be done without changing the store.
    pub dry_run: bool,
    /// How long to wait for running backups to finish.
    pub wait: Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            repack_below: 0.5,
            dry_run: false,
            wait: Duration::ZERO,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct PruneReport {
    pub snapshots: usize,
    pub packs_before: usize,
    pub bytes_before: u64,
    pub packs_deleted: usize,
    pub packs_rewritten: usize,
    pub packs_written: usize,
    pub bytes_after: u64,
    pub blobs_removed: u64,
    /// Stored bytes of unused blobs left in packs still used above `--repack-below`.
    pub unused_kept_bytes: u64,
    /// Nothing was changed: the other figures are what a prune would do.
    pub dry_run: bool,
}

impl PruneReport {
    /// What the prune freed (or, dry, would free).
    pub fn bytes_freed(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            return write!(
                f,
                "dry run: {} snapshots kept; {} packs ({} bytes); would delete {} packs and rewrite {} into {}, removing {} unused blobs; {} bytes after, {} bytes freed, {} unused bytes left in packs above --repack-below; nothing was changed",
                self.snapshots,
                self.packs_before,
                self.bytes_before,
                self.packs_deleted,
                self.packs_rewritten,
                self.packs_written,
                self.blobs_removed,
                self.bytes_after,
                self.bytes_freed(),
                self.unused_kept_bytes
            );
        }
        write!(
            f,
            "{} snapshots kept; {} packs ({} bytes) before; deleted {} packs, rewrote {} into {}; {} unused blobs removed; {} bytes after, {} bytes freed, {} unused bytes left in packs above --repack-below",
            self.snapshots,
            self.packs_before,
            self.bytes_before,
            self.packs_deleted,
            self.packs_rewritten,
            self.packs_written,
            self.blobs_removed,
            self.bytes_after,
            self.bytes_freed(),
            self.unused_kept_bytes
        )
    }
}

/// The trees and chunks some snapshot references, kept on disk (a store of millions of blobs
/// would otherwise hold them all in memory).
pub struct Live {
    pub set: DiskSet,
}

impl Live {
    pub fn new(repo: &Repository) -> Result<Live, RepoError> {
        Ok(Live {
            set: repo.catalog.disk_set()?,
        })
    }

    /// Adds a blob; true when it was not live yet.
    pub fn insert(&mut self, kind: BlobKind, id: &Digest) -> Result<bool, RepoError> {
        Ok(self.set.insert(kind, id)?)
    }

    /// Whether a blob is live; a set that cannot be read says yes, so nothing is deleted on a
    /// guess.
    pub fn contains(&self, kind: BlobKind, id: &Digest) -> bool {
        self.set.contains(kind, id).unwrap_or_else(|e| {
            log::warn!("live set: {e}; keeping blob {}", id.to_hex());
            true
        })
    }
}

/// What a prune does with the store's packs, decided from the live blobs. `prune` carries it
/// out and `stats` reports what it frees: one computation, so the two cannot disagree.
#[derive(Debug, Default)]
pub struct PrunePlan {
    pub packs_before: usize,
    pub bytes_before: u64,
    /// Packs with nothing live, with their sizes.
    pub to_delete: Vec<(PackId, u64)>,
    /// Packs whose live share fell below the threshold, with their sizes and live blobs.
    pub to_rewrite: Vec<(PackId, u64, Vec<IndexEntry>)>,
    /// Unused blobs in deleted or rewritten packs.
    pub blobs_removed: u64,
    /// The packs the rewrite writes and their total size (exact unless a blob turns out damaged).
    pub packs_to_write: usize,
    pub bytes_to_write: u64,
    /// Stored bytes of unused blobs that stay, in packs still used above the threshold.
    pub unused_kept_bytes: u64,
}

impl PrunePlan {
    /// The store's pack bytes after the prune.
    pub fn bytes_after(&self) -> u64 {
        let gone: u64 = self.to_delete.iter().map(|(_, s)| s).sum::<u64>()
            + self.to_rewrite.iter().map(|(_, s, _)| s).sum::<u64>();
        self.bytes_before.saturating_sub(gone) + self.bytes_to_write
    }

    /// What the prune frees.
    pub fn bytes_freed(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after())
    }
}

/// The size of a pack of `count` blobs whose frames take `frames` bytes (magic, frames, index,
/// trailer: see `store::pack`).
fn pack_len(frames: u64, count: usize) -> u64 {
    PACK_MAGIC.len() as u64 + frames + (count * INDEX_ENTRY_LEN + TRAILER_LEN) as u64
}

/// Decides, for every pack in the catalog, whether a prune with `repack_below` deletes it,
/// rewrites its live blobs, or leaves it. A blob kept in several packs is claimed by one verified
/// copy (read once here); the other copies are garbage.
pub fn plan_packs(
    repo: &Repository,
    live: &Live,
    repack_below: f64,
) -> Result<PrunePlan, RepoError> {
    let packs = repo.catalog.packs()?;
    let mut plan = PrunePlan {
        packs_before: packs.len(),
        bytes_before: packs.iter().map(|(_, s)| s).sum(),
        ..Default::default()
    };
    // Unverified, a damaged claimed copy would be kept while the good ones were deleted.
    let mut claimed: HashSet<(u8, Digest)> = HashSet::new();
    let mut chosen: HashMap<(u8, Digest), PackId> = HashMap::new();
    let mut keep_as_is: HashSet<PackId> = HashSet::new();
    for (kind, id) in repo.catalog.duplicate_blobs()? {
        if !live.contains(kind, &id) {
            continue;
        }
        let copies = repo.catalog.locate_all(kind, &id)?;
        let good = copies
            .iter()
            .find(|(pack, e)| repo.store.read_blob(pack, e).is_ok());
        match good {
            Some((pack, _)) => {
                chosen.insert((kind.code(), id), *pack);
            }
            None => {
                log::error!(
                    "every copy of {} {id} is damaged; keeping their packs",
                    kind.name()
                );
                keep_as_is.extend(copies.iter().map(|(p, _)| *p));
            }
        }
    }
    for (pack, size) in &packs {
        let entries = repo.catalog.pack_entries(pack)?;
        let mut live_blobs = Vec::new();
        let mut live_bytes = 0u64;
        let mut unused_bytes = 0u64;
        for e in &entries {
            let key = (e.kind.code(), e.id);
            let mine = chosen.get(&key).is_none_or(|p| p == pack);
            if live.contains(e.kind, &e.id) && mine && claimed.insert(key) {
                live_bytes += u64::from(e.stored_len);
                live_blobs.push(*e);
            } else {
                unused_bytes += u64::from(e.stored_len);
            }
        }
        let unused = (entries.len() - live_blobs.len()) as u64;
        if keep_as_is.contains(pack) {
            plan.unused_kept_bytes += unused_bytes;
            continue;
        }
        if live_blobs.is_empty() {
            plan.to_delete.push((*pack, *size));
            plan.blobs_removed += unused;
        } else if live_blobs.len() < entries.len()
            && (live_bytes as f64) < repack_below * (*size as f64)
        {
            // Only packs with garbage: rewriting a fully live pack would gain nothing.
            plan.to_rewrite.push((*pack, *size, live_blobs));
            plan.blobs_removed += unused;
        } else {
            plan.unused_kept_bytes += unused_bytes;
        }
    }
    // The rewrite cuts a new pack as soon as its frames reach the target size, as `prune` does.
    let (mut frames, mut count) = (PACK_MAGIC.len() as u64, 0usize);
    for e in plan.to_rewrite.iter().flat_map(|(_, _, l)| l) {
        frames += u64::from(e.stored_len);
        count += 1;
        if frames >= TARGET_PACK_SIZE as u64 {
            plan.packs_to_write += 1;
            plan.bytes_to_write += pack_len(frames - PACK_MAGIC.len() as u64, count);
            (frames, count) = (PACK_MAGIC.len() as u64, 0);
        }
    }
    if count > 0 {
        plan.packs_to_write += 1;
        plan.bytes_to_write += pack_len(frames - PACK_MAGIC.len() as u64, count);
    }
    Ok(plan)
}

/// Every tree and chunk reachable from the snapshots in the store.
/// A tree that cannot be read fails the mark (its chunks would be taken for garbage), except in
/// a snapshot `repair` already reported damaged: its lost trees are known and cannot come back.
pub fn mark_live(repo: &Repository) -> Result<(Live, usize), PruneError> {
    let snaps = repo.snapshots()?;
    let damaged: HashSet<String> = repo
        .store
        .damage_reports()
        .map_err(RepoError::from)?
        .keys()
        .map(|id| format!("snapshot {}", id.short()))
        .collect();
    let mut live = Live::new(repo)?;
    let mut todo: Vec<(TreeId, String)> = snaps
        .iter()
        .map(|s| (s.root, format!("snapshot {}", s.id.short())))
        .collect();
    while let Some((id, owner)) = todo.pop() {
        if !live.insert(BlobKind::Tree, &id.0)? {
            continue;
        }
        let tree = match repo.read_tree_blob(id) {
            Ok(TreeBlob::Flat(t)) => t,
            // A paged folder: its pages are trees like any other (marked when taken).
            Ok(TreeBlob::Index(ix)) => {
                for p in ix.pages() {
                    if !live.contains(BlobKind::Tree, &p.id.0) {
                        todo.push((p.id, owner.clone()));
                    }
                }
                continue;
            }
            Err(e) if e.is_corruption() && damaged.contains(&owner) => {
                log::warn!("{owner} is damaged: tree {} is lost ({e})", id.short());
                continue;
            }
            Err(e) => {
                return Err(PruneError::Unreachable(format!(
                    "tree {} of {owner}: {e}",
                    id.short()
                )))
            }
        };
        for e in &tree.entries {
            for c in e.chunks() {
                live.insert(BlobKind::Chunk, &c.id.0)?;
            }
            if let Some(sub) = e.subtree() {
                if !live.contains(BlobKind::Tree, &sub.0) {
                    todo.push((sub, owner.clone()));
                }
            }
        }
    }
    Ok((live, snaps.len()))
}

pub fn prune(repo: &Repository, opts: &PruneOptions) -> Result<PruneReport, PruneError> {
    let lock = StoreLock::acquire(
        repo.store.shared_backend(),
        LockKind::Exclusive,
        "prune",
        opts.wait,
    )?;
    refuse_damaged_manifests(repo)?;
    let (live, snapshots) = mark_live(repo)?;
    let plan = plan_packs(repo, &live, opts.repack_below)?;
    let mut report = PruneReport {
        snapshots,
        packs_before: plan.packs_before,
        bytes_before: plan.bytes_before,
        packs_deleted: plan.to_delete.len(),
        packs_rewritten: plan.to_rewrite.len(),
        blobs_removed: plan.blobs_removed,
        unused_kept_bytes: plan.unused_kept_bytes,
        dry_run: opts.dry_run,
        ..Default::default()
    };
    if opts.dry_run {
        report.packs_written = plan.packs_to_write;
        report.bytes_after = plan.bytes_after();
        return Ok(report);
    }
    let to_delete: Vec<PackId> = plan.to_delete.iter().map(|(p, _)| *p).collect();
    let to_rewrite: Vec<(PackId, Vec<IndexEntry>)> = plan
        .to_rewrite
        .into_iter()
        .map(|(p, _, l)| (p, l))
        .collect();
    // Copy live blobs out of sparse packs; frames are copied as stored, after verifying them.
    let mut builder = PackBuilder::new();
    let mut kept_damaged: HashSet<PackId> = HashSet::new();
    let mut written: HashSet<PackId> = HashSet::new();
    for (pack, live) in &to_rewrite {
        for e in live {
            let frame = repo.store.read_frame(pack, e).map_err(RepoError::from)?;
            if let Err(err) = crate::store::pack::open_blob(&frame, e) {
                log::error!(
                    "{} {} in {} is damaged ({err}); keeping that pack",
                    e.kind.name(),
                    e.id,
                    repo.store.describe_pack(pack)
                );
                kept_damaged.insert(*pack);
                continue;
            }
            builder.add(
                e.kind,
                e.id,
                &Frame {
                    bytes: frame,
                    raw_len: e.raw_len,
                },
            );
            if builder.len() >= TARGET_PACK_SIZE {
                written.extend(commit(repo, std::mem::take(&mut builder), &mut report)?);
            }
        }
    }
    written.extend(commit(repo, builder, &mut report)?);
    lock.check()?;
    // A rewritten pack can come out byte-identical to an old one (same blobs in the same order),
    // and so under the same name: deleting the "old" one would then delete the new one.
    for pack in to_delete
        .iter()
        .chain(to_rewrite.iter().map(|(p, _)| p))
        .filter(|p| !kept_damaged.contains(p) && !written.contains(p))
    {
        repo.store.delete_pack(pack).map_err(RepoError::from)?;
        repo.catalog.remove_pack(pack).map_err(RepoError::from)?;
    }
    report.bytes_after = repo.catalog.packs_size().map_err(RepoError::from)?;
    Ok(report)
}

/// Refuses while any manifest cannot be read: prune would take its snapshot for absent and delete
/// its data. Syncs first, so the catalog lists every readable manifest.
fn refuse_damaged_manifests(repo: &Repository) -> Result<(), PruneError> {
    let sync = repo.sync()?;
    // Every manifest is read again, not only new ones: one that rotted after the catalog
    // recorded it must stop prune too.
    let mut unreadable: Vec<String> = Vec::new();
    for id in repo.store.list_manifests().map_err(RepoError::from)? {
        match repo.store.read_manifest(&id) {
            Ok(_) => {}
            Err(crate::store::StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => unreadable.push(e.to_string()),
        }
    }
    if !unreadable.is_empty() {
        return Err(PruneError::DamagedStore(format!(
            "{} snapshot manifest(s) cannot be read: {}",
            unreadable.len(),
            unreadable.join("; ")
        )));
    }
    if sync.damaged > 0 {
        return Err(PruneError::DamagedStore(format!(
            "{} damaged pack(s) or manifest(s) found while reading the store",
            sync.damaged
        )));
    }
    Ok(())
}

/// Writes a rewritten pack; returns its id.
fn commit(
    repo: &Repository,
    builder: PackBuilder,
    report: &mut PruneReport,
) -> Result<Option<PackId>, PruneError> {
    if builder.is_empty() {
        return Ok(None);
    }
    let (bytes, id, index) = builder.finish();
    let id = PackId(id);
    repo.store
        .write_pack(&id, &bytes)
        .map_err(RepoError::from)?;
    repo.catalog
        .add_pack(
            &id,
            bytes.len() as u64,
            &index,
            &crate::repo::writer::tree_frames(&bytes, &index),
        )
        .map_err(RepoError::from)?;
    report.packs_written += 1;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_len_is_what_the_builder_writes() {
        let mut b = PackBuilder::new();
        let mut frames = 0u64;
        for (i, n) in [10usize, 300, 7].into_iter().enumerate() {
            let bytes = vec![i as u8; n];
            frames += n as u64;
            b.add(
                BlobKind::Chunk,
                Digest::of(&bytes),
                &Frame {
                    bytes,
                    raw_len: n as u32,
                },
            );
        }
        let (bytes, _, _) = b.finish();
        assert_eq!(pack_len(frames, 3), bytes.len() as u64);
    }
}
