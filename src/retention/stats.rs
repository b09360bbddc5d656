//! `stats`: the figures an admin needs to size the backup disk: logical size per snapshot and per
//! part, and for the store what is really stored, how much unique data that is, and what dedup
//! and compression save. Unique data is found by walking every snapshot's trees once (a tree or
//! chunk shared by many snapshots is counted once).

use crate::id::TreeId;
use crate::model::Snapshot;
use crate::pages::TreeBlob;
use crate::repo::{named_snapshots, RepoError, Repository};
use crate::retention::prune::{self, Live, PruneOptions};
use crate::store::pack::BlobKind;
use crate::timefmt;
use serde::Serialize;

/// One snapshot's logical size.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStats {
    pub id: String,
    pub host: String,
    pub part: String,
    /// Folder name, as in the mount.
    pub name: String,
    pub date: String,
    pub status: String,
    /// Sum of the sizes of its regular files.
    pub logical_bytes: u64,
}

/// One host's part across its history.
#[derive(Debug, Clone, Serialize)]
pub struct PartStats {
    pub host: String,
    pub part: String,
    pub snapshots: usize,
    pub newest_name: String,
    pub newest_logical_bytes: u64,
    /// Sum over its snapshots: what plain copies of every snapshot would take.
    pub total_logical_bytes: u64,
}

/// Store-wide figures. Ratios are `None` when their denominator is 0 (an empty store).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    pub snapshots: usize,
    /// Sum of every snapshot's logical size.
    pub logical_bytes: u64,
    /// Sum of the pack files' sizes: the disk space the store's data takes.
    pub stored_bytes: u64,
    /// Distinct chunks referenced by some snapshot, and their uncompressed size.
    pub unique_chunks: u64,
    pub unique_bytes: u64,
    /// Distinct trees (folders) referenced.
    pub trees: u64,
    /// Stored (compressed) size of the referenced chunks and trees.
    pub referenced_stored_bytes: u64,
    /// What `prune` (default `--repack-below 50`) would free: computed by prune's own plan
    /// ([`prune::plan_packs`]), so a prune right after frees exactly this. `None` when some tree
    /// could not be read (prune would refuse or keep that data; run `check`).
    pub prune_freeable_bytes: Option<u64>,
    /// Unused data that prune leaves in packs still used above the threshold (a prune with a
    /// higher `--repack-below` would rewrite them).
    pub unused_kept_bytes: Option<u64>,
    /// `logical_bytes / unique_bytes`: how many times over dedup stores the data only once.
    pub dedup_ratio: Option<f64>,
    /// `unique_bytes / stored_bytes`: what compression (and pack overhead) leave of it.
    pub compression_ratio: Option<f64>,
    /// Trees that could not be read (missing or damaged; `check` says more). Their content is
    /// not counted in the unique figures.
    pub unreadable_trees: u64,
    /// Referenced chunks the catalog does not know (missing from the store).
    pub missing_chunks: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub snapshots: Vec<SnapshotStats>,
    pub parts: Vec<PartStats>,
    pub store: StoreStats,
}

/// Computes every figure. Reads every distinct tree once, never file contents.
pub fn compute(repo: &Repository) -> Result<Stats, RepoError> {
    let all = repo.snapshots()?;
    let named = named_snapshots(&all);
    let snapshots: Vec<SnapshotStats> = named
        .iter()
        .map(|(s, name)| SnapshotStats {
            id: s.id.to_hex(),
            host: s.manifest.host.clone(),
            part: s.manifest.part.clone(),
            name: name.clone(),
            date: timefmt::iso8601(s.manifest.started_ns),
            status: s.manifest.status.as_str().to_string(),
            logical_bytes: s.manifest.bytes,
        })
        .collect();
    let mut parts: Vec<PartStats> = Vec::new();
    // `snapshots` is sorted by host, part and time, so each part's newest comes last.
    for group in snapshots.chunk_by(|a, b| a.host == b.host && a.part == b.part) {
        let Some(newest) = group.last() else { continue };
        parts.push(PartStats {
            host: newest.host.clone(),
            part: newest.part.clone(),
            snapshots: group.len(),
            newest_name: newest.name.clone(),
            newest_logical_bytes: newest.logical_bytes,
            total_logical_bytes: group.iter().map(|s| s.logical_bytes).sum(),
        });
    }
    let (mut store, live) = unique_data(repo, &all)?;
    if store.unreadable_trees == 0 {
        let plan = prune::plan_packs(repo, &live, PruneOptions::default().repack_below)?;
        store.prune_freeable_bytes = Some(plan.bytes_freed());
        store.unused_kept_bytes = Some(plan.unused_kept_bytes);
    }
    store.snapshots = snapshots.len();
    store.logical_bytes = snapshots.iter().map(|s| s.logical_bytes).sum();
    store.stored_bytes = repo.catalog.packs_size()?;
    store.dedup_ratio = ratio(store.logical_bytes, store.unique_bytes);
    store.compression_ratio = ratio(store.unique_bytes, store.stored_bytes);
    Ok(Stats {
        snapshots,
        parts,
        store,
    })
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Walks the trees of every snapshot, each distinct tree once, and sums distinct chunks; also
/// returns what it saw as live, for prune's plan.
fn unique_data(repo: &Repository, all: &[Snapshot]) -> Result<(StoreStats, Live), RepoError> {
    let mut out = StoreStats::default();
    let mut live = Live::new(repo)?;
    let mut todo: Vec<TreeId> = all.iter().map(|s| s.root).collect();
    while let Some(id) = todo.pop() {
        if !live.insert(BlobKind::Tree, &id.0)? {
            continue;
        }
        let blob = match repo.read_tree_blob(id) {
            Ok(t) => t,
            Err(e) if e.is_corruption() => {
                log::warn!("stats: {e}");
                out.unreadable_trees += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        out.trees += 1;
        if let Some((_, entry)) = repo.catalog.locate(BlobKind::Tree, &id.0)? {
            out.referenced_stored_bytes += u64::from(entry.stored_len);
        }
        let tree = match blob {
            TreeBlob::Flat(t) => t,
            // A paged folder: its pages are tree blobs of their own.
            TreeBlob::Index(ix) => {
                todo.extend(ix.pages().iter().map(|p| p.id));
                continue;
            }
        };
        for e in &tree.entries {
            if let Some(sub) = e.subtree() {
                todo.push(sub);
            }
            for c in e.chunks() {
                if !live.insert(BlobKind::Chunk, &c.id.0)? {
                    continue;
                }
                out.unique_chunks += 1;
                out.unique_bytes += u64::from(c.len);
                match repo.catalog.locate(BlobKind::Chunk, &c.id.0)? {
                    Some((_, entry)) => out.referenced_stored_bytes += u64::from(entry.stored_len),
                    None => out.missing_chunks += 1,
                }
            }
        }
    }
    Ok((out, live))
}
