//! `check`: verifies a store from its own files, not from the catalog. Every pack's trailer and
//! index must parse and agree with its size, every manifest must parse and match its name, every
//! tree and chunk a snapshot uses must be in some pack, and (with `read_data`) every chunk, or a
//! random share of them, must decompress to its hash. Each lost blob is reported with every
//! snapshot and path that uses it, so an operator knows exactly which mails are gone.
//! `repair` runs the same scan and acts on it.

use super::uses::find_uses;
pub use super::uses::{MAX_USES, MAX_USES_PER_SNAPSHOT};
use crate::catalog::diskset::{CopiesTable, DiskSet};
use crate::id::{Digest, PackId, SnapshotId, TreeId};
use crate::model::{Manifest, Tree};
use crate::pages::{TreeBlob, TreeIndex};
use crate::repo::{RepoError, Repository};
use crate::store::pack::{open_blob, BlobKind, IndexEntry};
use crate::store::{Store, StoreError};
use crate::tree::MAX_DEPTH;
use std::collections::{HashMap, HashSet};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, CheckError>;

/// Blobs some snapshot needs that no good copy holds.
pub type LostBlobs = HashMap<(BlobKind, Digest), BlobState>;

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Read and verify this percentage of chunks (0 reads none, 100 all). Trees are always read.
    pub read_data_percent: f64,
}

/// A store file (pack or manifest) that cannot be read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DamagedFile {
    /// Key inside the store, e.g. `packs/ab/….pack`.
    pub key: String,
    pub path: String,
    pub error: String,
}

/// One place a blob is used: a snapshot and the path inside it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BlobUse {
    pub snapshot: String,
    pub host: String,
    pub part: String,
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobState {
    /// In no pack at all.
    Missing,
    /// Stored, but no copy decodes to its hash.
    Damaged,
}

impl BlobState {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobState::Missing => "missing",
            BlobState::Damaged => "damaged",
        }
    }
}

/// A tree or chunk that some snapshot needs and the store cannot give back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BadBlob {
    pub kind: &'static str,
    pub id: String,
    pub state: BlobState,
    pub uses: Vec<BlobUse>,
}

/// A stored copy that failed verification (another copy may still be good).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BadCopy {
    pub pack: String,
    pub kind: &'static str,
    pub id: String,
    pub error: String,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct CheckReport {
    pub packs: usize,
    pub snapshots: usize,
    pub trees: usize,
    pub chunks: usize,
    pub chunks_verified: u64,
    pub bytes_read: u64,
    pub damaged_packs: Vec<DamagedFile>,
    pub damaged_manifests: Vec<DamagedFile>,
    pub bad_copies: Vec<BadCopy>,
    pub bad_blobs: Vec<BadBlob>,
    /// Disagreements between the catalog and the store.
    pub catalog: Vec<String>,
    /// Snapshots marked damaged by an earlier repair whose data is complete again.
    pub healed: Vec<String>,
    /// Store files and folders other users may read (`repair --fix-modes` tightens them).
    pub loose_modes: Vec<LooseMode>,
    /// Some uses of lost blobs are not listed (more than [`MAX_USES_PER_SNAPSHOT`] in one
    /// snapshot or [`MAX_USES`] in all).
    pub uses_truncated: bool,
}

/// A store file or folder whose mode lets other users in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LooseMode {
    pub path: String,
    /// Permission bits, e.g. `0644`.
    pub mode: String,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.damaged_packs.is_empty()
            && self.damaged_manifests.is_empty()
            && self.bad_copies.is_empty()
            && self.bad_blobs.is_empty()
            && self.catalog.is_empty()
            && self.loose_modes.is_empty()
    }
}

/// What the store holds, read from its own files.
pub struct Scan {
    /// Packs whose index is readable: size and entries.
    pub packs: Vec<(PackId, u64, Vec<IndexEntry>)>,
    /// Every stored copy of every blob, kept on disk (millions of blobs).
    pub blobs: CopiesTable,
    pub manifests: Vec<(SnapshotId, Manifest)>,
    /// Copies that failed verification, by pack.
    pub bad_copies: HashMap<(PackId, BlobKind, Digest), String>,
    pub report: CheckReport,
}

impl Scan {
    /// A verified copy of a tree blob (folder, page or tree index), decoded; the reason when no
    /// copy is good.
    pub(super) fn read_tree_blob(
        &self,
        store: &Store,
        id: &TreeId,
    ) -> std::result::Result<TreeBlob, BlobState> {
        let copies = self.copies(BlobKind::Tree, &id.0);
        if copies.is_empty() {
            return Err(BlobState::Missing);
        }
        for (pack, e) in &copies {
            if self.bad_copies.contains_key(&(*pack, e.kind, e.id)) {
                continue;
            }
            if let Some(tree) = store
                .read_blob(pack, e)
                .ok()
                .and_then(|b| TreeBlob::decode(&b).ok())
            {
                return Ok(tree);
            }
        }
        Err(BlobState::Damaged)
    }

    /// Page `i` of a paged folder, checked against its index.
    pub(super) fn read_page(
        &self,
        store: &Store,
        index: &TreeIndex,
        i: usize,
    ) -> std::result::Result<Tree, BlobState> {
        let id = index.pages().get(i).ok_or(BlobState::Damaged)?.id;
        match self.read_tree_blob(store, &id)? {
            TreeBlob::Flat(t) if index.check_page(i, &t).is_ok() => Ok(t),
            _ => Err(BlobState::Damaged),
        }
    }

    /// Every stored copy of a blob (none if it is in no pack).
    pub fn copies(&self, kind: BlobKind, id: &Digest) -> Vec<(PackId, IndexEntry)> {
        self.blobs.copies(kind, id).unwrap_or_else(|e| {
            log::error!("check's table of blobs: {e}");
            Vec::new()
        })
    }

    /// Whether a chunk has a copy not known to be bad.
    fn chunk_state(&self, id: &Digest) -> Option<BlobState> {
        let copies = self.copies(BlobKind::Chunk, id);
        match Some(copies).filter(|c| !c.is_empty()) {
            None => Some(BlobState::Missing),
            Some(copies)
                if copies
                    .iter()
                    .all(|(p, e)| self.bad_copies.contains_key(&(*p, e.kind, e.id))) =>
            {
                Some(BlobState::Damaged)
            }
            Some(_) => None,
        }
    }
}

/// Reads pack indexes and manifests, and verifies the chosen share of blob data.
pub fn scan(repo: &Repository, opts: &CheckOptions) -> Result<Scan> {
    let store = &repo.store;
    let cat = |e: crate::catalog::CatalogError| CheckError::Repo(RepoError::from(e));
    let mut report = CheckReport::default();
    let mut packs = Vec::new();
    let mut blobs = repo.catalog.copies_table().map_err(cat)?;
    for id in store.list_packs()? {
        let key = Store::pack_key(&id);
        match store.read_pack_index(&id) {
            Ok((size, entries)) => {
                for e in &entries {
                    blobs.add(&id, e).map_err(cat)?;
                }
                packs.push((id, size, entries));
            }
            Err(e) => report.damaged_packs.push(DamagedFile {
                path: store.backend().describe(&key),
                key,
                error: e.to_string(),
            }),
        }
    }
    blobs.finish().map_err(cat)?;
    let mut manifests = Vec::new();
    for id in store.list_manifests()? {
        match store.read_manifest(&id) {
            Ok(m) => manifests.push((id, m)),
            Err(e) => {
                let key = Store::manifest_key(&id);
                report.damaged_manifests.push(DamagedFile {
                    path: store.backend().describe(&key),
                    key,
                    error: e.to_string(),
                })
            }
        }
    }
    manifests.sort_by(|a, b| {
        (&a.1.host, &a.1.part, a.1.started_ns).cmp(&(&b.1.host, &b.1.part, b.1.started_ns))
    });
    let mut bad_copies = HashMap::new();
    if opts.read_data_percent > 0.0 {
        verify_data(
            store,
            &packs,
            opts.read_data_percent,
            &mut bad_copies,
            &mut report,
        )?;
    }
    report.loose_modes = store
        .backend()
        .loose_modes()
        .map_err(|source| StoreError::Io {
            path: store.root().display().to_string(),
            source,
        })?
        .into_iter()
        .map(|(path, mode)| LooseMode {
            path,
            mode: format!("{mode:04o}"),
        })
        .collect();
    report.packs = packs.len();
    report.snapshots = manifests.len();
    Ok(Scan {
        packs,
        blobs,
        manifests,
        bad_copies,
        report,
    })
}

/// Whether a chunk is in the sample: a keyed hash, so each run samples a different share.
fn sampled(seed: &[u8; 32], id: &Digest, percent: f64) -> bool {
    if percent >= 100.0 {
        return true;
    }
    let h = blake3::keyed_hash(seed, &id.0);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    (u64::from_le_bytes(b) as f64) < percent / 100.0 * u64::MAX as f64
}

/// Reads each pack once, front to back, and verifies its sampled blobs (trees always).
fn verify_data(
    store: &Store,
    packs: &[(PackId, u64, Vec<IndexEntry>)],
    percent: f64,
    bad: &mut HashMap<(PackId, BlobKind, Digest), String>,
    report: &mut CheckReport,
) -> Result<()> {
    let seed = *blake3::hash(crate::store::backend::unique_suffix().as_bytes()).as_bytes();
    for (pack, size, entries) in packs {
        let chosen: Vec<&IndexEntry> = entries
            .iter()
            .filter(|e| e.kind == BlobKind::Tree || sampled(&seed, &e.id, percent))
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let key = Store::pack_key(pack);
        if percent < 100.0 {
            // A sample reads only its frames, not whole packs.
            for e in chosen {
                let outcome = store.read_blob(pack, e).map(|_| ());
                report.bytes_read += u64::from(e.stored_len);
                if e.kind == BlobKind::Chunk {
                    report.chunks_verified += 1;
                }
                if let Err(err) = outcome {
                    report.bad_copies.push(BadCopy {
                        pack: store.describe_pack(pack),
                        kind: e.kind.name(),
                        id: e.id.to_hex(),
                        error: err.to_string(),
                    });
                    bad.insert((*pack, e.kind, e.id), err.to_string());
                }
            }
            continue;
        }
        // A whole pack is one sequential read; packs are tens of MiB, like the backup's buffer.
        let bytes = match store.backend().read_all(&key) {
            Ok(b) => b,
            Err(e) => {
                report.damaged_packs.push(DamagedFile {
                    path: store.backend().describe(&key),
                    key,
                    error: e.to_string(),
                });
                continue;
            }
        };
        report.bytes_read += bytes.len() as u64;
        if bytes.len() as u64 != *size {
            report.damaged_packs.push(DamagedFile {
                path: store.backend().describe(&key),
                key: key.clone(),
                error: format!("changed size while read ({size} then {})", bytes.len()),
            });
        }
        for e in chosen {
            let start = e.offset as usize;
            let frame = bytes.get(start..start.saturating_add(e.stored_len as usize));
            let outcome = match frame {
                Some(f) => open_blob(f, e).map(|_| ()).map_err(|err| err.to_string()),
                None => Err("pack is truncated".to_string()),
            };
            if e.kind == BlobKind::Chunk {
                report.chunks_verified += 1;
            }
            if let Err(error) = outcome {
                report.bad_copies.push(BadCopy {
                    pack: store.describe_pack(pack),
                    kind: e.kind.name(),
                    id: e.id.to_hex(),
                    error: error.clone(),
                });
                bad.insert((*pack, e.kind, e.id), error);
            }
        }
    }
    Ok(())
}

/// Every tree and chunk the snapshots need that no good copy holds. A tree is also damaged
/// when it nests deeper than [`MAX_DEPTH`] or gives a chunk another length than the stored
/// one (a forged tree: readers would trust that length). Each tree is read once, so a forged
/// tree that holds the same subtree many times over costs no more than its size.
fn find_bad(repo: &Repository, scan: &Scan, report: &mut CheckReport) -> Result<LostBlobs> {
    let store = &repo.store;
    let mut bad: LostBlobs = HashMap::new();
    // Trees and chunks already seen, on disk: a store may hold millions.
    let mut seen = repo
        .catalog
        .disk_set()
        .map_err(|e| CheckError::Repo(e.into()))?;
    let mut pages: HashMap<Digest, PageSummary> = HashMap::new();
    let mut todo: Vec<(TreeId, usize)> = scan
        .manifests
        .iter()
        .filter_map(|(_, m)| m.root.parse().ok())
        .map(|id| (id, 0))
        .collect();
    while let Some((id, depth)) = todo.pop() {
        if !seen_insert(&mut seen, BlobKind::Tree, &id.0)? {
            continue;
        }
        if depth > MAX_DEPTH {
            bad.insert((BlobKind::Tree, id.0), BlobState::Damaged);
            continue;
        }
        let blob = match scan.read_tree_blob(store, &id) {
            Ok(t) => t,
            Err(state) => {
                bad.insert((BlobKind::Tree, id.0), state);
                continue;
            }
        };
        match blob {
            TreeBlob::Flat(tree) => {
                if forged_chunks(scan, &tree, &mut seen, &mut bad, &mut todo, depth) {
                    bad.insert((BlobKind::Tree, id.0), BlobState::Damaged);
                }
            }
            TreeBlob::Index(ix) => {
                // Each page is read once across the store; what the index says of it (count,
                // first and last names) is checked against what it held, for every index.
                for (i, p) in ix.pages().iter().enumerate() {
                    let summary = match pages.get(&p.id.0) {
                        Some(s) => s.clone(),
                        None => {
                            seen_insert(&mut seen, BlobKind::Tree, &p.id.0)?;
                            let s = match scan.read_tree_blob(store, &p.id) {
                                Ok(TreeBlob::Flat(t)) => {
                                    let forged = forged_chunks(
                                        scan, &t, &mut seen, &mut bad, &mut todo, depth,
                                    );
                                    let first = t.entries.first().map(|e| e.name.clone());
                                    let last = t.entries.last().map(|e| e.name.clone());
                                    (forged, None, t.entries.len(), first, last)
                                }
                                Ok(TreeBlob::Index(_)) => {
                                    (true, Some(BlobState::Damaged), 0, None, None)
                                }
                                Err(state) => (false, Some(state), 0, None, None),
                            };
                            pages.insert(p.id.0, s.clone());
                            s
                        }
                    };
                    let (forged, state, count, first, last) = summary;
                    if let Some(state) = state {
                        bad.insert((BlobKind::Tree, p.id.0), state);
                        continue;
                    }
                    let next = ix.pages().get(i + 1).map(|n| &n.first);
                    let fits = count == p.count as usize
                        && first.as_ref() == Some(&p.first)
                        && next.is_none_or(|n| last.as_ref().is_some_and(|l| l < n));
                    if forged {
                        bad.insert((BlobKind::Tree, p.id.0), BlobState::Damaged);
                    }
                    if !fits {
                        bad.insert((BlobKind::Tree, id.0), BlobState::Damaged);
                    }
                }
            }
        }
    }
    let count = |k| seen.count(k).map_err(|e| CheckError::Repo(e.into()));
    report.trees = count(BlobKind::Tree)? as usize;
    report.chunks = count(BlobKind::Chunk)? as usize;
    Ok(bad)
}

fn seen_insert(seen: &mut DiskSet, kind: BlobKind, id: &Digest) -> Result<bool> {
    seen.insert(kind, id)
        .map_err(|e| CheckError::Repo(RepoError::from(e)))
}

/// What a page held, for the indexes that list it: whether it gives a chunk a forged length,
/// why it is unreadable, its entry count, first and last names.
type PageSummary = (
    bool,
    Option<BlobState>,
    usize,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// Notes the chunks of one folder or page (lost ones in `bad`) and queues its subfolders;
/// true when an entry gives a chunk another length than the stored one (a forged tree).
fn forged_chunks(
    scan: &Scan,
    tree: &Tree,
    seen: &mut DiskSet,
    bad: &mut LostBlobs,
    todo: &mut Vec<(TreeId, usize)>,
    depth: usize,
) -> bool {
    let mut forged = false;
    for e in &tree.entries {
        for c in e.chunks() {
            if seen.insert(BlobKind::Chunk, &c.id.0).unwrap_or(true) {
                if let Some(state) = scan.chunk_state(&c.id.0) {
                    bad.insert((BlobKind::Chunk, c.id.0), state);
                }
            }
            let copies = scan.copies(BlobKind::Chunk, &c.id.0);
            forged |= !copies.is_empty() && copies.iter().all(|(_, ie)| ie.raw_len != c.len);
        }
        if let Some(sub) = e.subtree() {
            todo.push((sub, depth + 1));
        }
    }
    forged
}

/// Checks the store behind `repo` (whose catalog `open` just synced).
pub fn check(repo: &Repository, opts: &CheckOptions) -> Result<(Scan, LostBlobs)> {
    let mut scan = scan(repo, opts)?;
    let mut report = std::mem::take(&mut scan.report);
    let bad = find_bad(repo, &scan, &mut report)?;
    let (mut uses, truncated) = if bad.is_empty() {
        (HashMap::new(), false)
    } else {
        find_uses(&repo.store, &scan, &bad)
    };
    report.uses_truncated = truncated;
    let mut lost: Vec<BadBlob> = bad
        .iter()
        .map(|(key, state)| BadBlob {
            kind: key.0.name(),
            id: key.1.to_hex(),
            state: *state,
            uses: uses.remove(key).unwrap_or_default(),
        })
        .collect();
    lost.sort_by(|a, b| a.id.cmp(&b.id));
    report.bad_blobs = lost;
    compare_catalog(repo, &scan, &mut report)?;
    let damaged: HashSet<SnapshotId> = repo.store.damage_reports()?.into_keys().collect();
    let still: HashSet<&str> = report
        .bad_blobs
        .iter()
        .flat_map(|b| b.uses.iter().map(|u| u.snapshot.as_str()))
        .collect();
    report.healed = damaged
        .iter()
        .map(|id| id.to_hex())
        .filter(|h| !still.contains(h.as_str()))
        .collect();
    scan.report = report;
    Ok((scan, bad))
}

/// The catalog must list exactly the readable packs (with their blobs) and manifests.
fn compare_catalog(repo: &Repository, scan: &Scan, report: &mut CheckReport) -> Result<()> {
    let cat = |e: crate::catalog::CatalogError| CheckError::Repo(RepoError::from(e));
    let known: HashMap<PackId, u64> = repo.catalog.packs().map_err(cat)?.into_iter().collect();
    for (id, size, entries) in &scan.packs {
        match known.get(id) {
            None => report.catalog.push(format!(
                "pack {} is not in the catalog",
                repo.store.describe_pack(id)
            )),
            Some(s) if s != size => report.catalog.push(format!(
                "pack {}: catalog says {s} bytes, the file has {size}",
                repo.store.describe_pack(id)
            )),
            Some(_) => {
                let listed = repo.catalog.pack_entries(id).map_err(cat)?.len();
                if listed != entries.len() {
                    report.catalog.push(format!(
                        "pack {}: catalog lists {listed} blobs, its index {}",
                        repo.store.describe_pack(id),
                        entries.len()
                    ));
                }
            }
        }
    }
    let readable: HashSet<PackId> = scan.packs.iter().map(|p| p.0).collect();
    for id in known.keys().filter(|id| !readable.contains(id)) {
        report.catalog.push(format!(
            "catalog lists pack {} that the store does not have (readable)",
            id.0.to_hex()
        ));
    }
    let snaps: HashSet<SnapshotId> = repo.snapshots()?.iter().map(|s| s.id).collect();
    let manifests: HashSet<SnapshotId> = scan.manifests.iter().map(|m| m.0).collect();
    for id in snaps.symmetric_difference(&manifests) {
        report.catalog.push(format!(
            "snapshot {}: catalog and store disagree",
            id.to_hex()
        ));
    }
    Ok(())
}
