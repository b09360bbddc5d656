//! A repository: an opened store together with its catalog. Everything that reads snapshots
//! (restore, mount, check) goes through here, and every blob it returns has been verified
//! against its hash.

pub mod folder;
pub mod names;
pub mod writer;

use crate::catalog::{default_cache_dir, Catalog, CatalogError, SyncReport};
use crate::id::{ChunkId, Digest, SnapshotId, TreeId};
use crate::model::{Snapshot, SnapshotStatus};
use crate::pages::TreeBlob;
use crate::store::backend::HANDLE_TTL;
use crate::store::pack::{BlobKind, IndexEntry};
use crate::store::{Store, StoreError};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(
        "{kind} {id} is missing from the store (a pack was lost or pruned); run `bmbackup check`"
    )]
    Missing { kind: &'static str, id: Digest },
    #[error("damaged tree {id} in {path}: {detail}")]
    BadTree {
        id: TreeId,
        path: String,
        detail: String,
    },
    #[error("{0}")]
    NotFound(String),
}

impl RepoError {
    /// Data that should be there and is not, or is damaged: EIO on the mount, exit 1 elsewhere.
    pub fn is_corruption(&self) -> bool {
        match self {
            RepoError::Store(e) => e.is_corruption(),
            RepoError::Catalog(CatalogError::Store(e)) => e.is_corruption(),
            RepoError::Missing { .. } | RepoError::BadTree { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, RepoError>;

pub struct Repository {
    pub store: Store,
    pub catalog: Catalog,
}

impl Repository {
    /// Opens the store and brings its catalog (in `cache_dir` or the default cache) up to date.
    pub fn open(store: &Path, cache_dir: Option<&Path>) -> Result<Repository> {
        let store = Store::open(store)?;
        let cache = cache_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(default_cache_dir);
        let catalog = Catalog::open(&cache, &store.info.store_id)?;
        let repo = Repository { store, catalog };
        repo.sync()?;
        Ok(repo)
    }

    pub fn sync(&self) -> Result<SyncReport> {
        Ok(self.catalog.sync(&self.store)?)
    }

    /// Picks up snapshots written or forgotten by other processes or hosts; true if any changed.
    /// Also closes pack handles kept longer than [`HANDLE_TTL`]: a mount refreshes every few
    /// seconds, so the space of packs pruned by another process is not held for long.
    pub fn refresh(&self) -> Result<bool> {
        self.store.backend().close_idle(HANDLE_TTL);
        Ok(self.sync()?.snapshots_changed())
    }

    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        Ok(self.catalog.snapshots()?)
    }

    fn read_blob(&self, kind: BlobKind, id: &Digest) -> Result<Vec<u8>> {
        let mut loc = self.catalog.locate(kind, id)?;
        if loc.is_none() {
            // Another writer may have committed it since we last looked.
            self.sync()?;
            loc = self.catalog.locate(kind, id)?;
        }
        let (pack, entry) = loc.ok_or(RepoError::Missing {
            kind: kind.name(),
            id: *id,
        })?;
        match self.store.read_blob(&pack, &entry) {
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                // The pack was repacked by prune: learn its new place once.
                self.sync()?;
                let (pack, entry) = self.catalog.locate(kind, id)?.ok_or(RepoError::Missing {
                    kind: kind.name(),
                    id: *id,
                })?;
                Ok(self.store.read_blob(&pack, &entry)?)
            }
            other => Ok(other?),
        }
    }

    /// Reads a tree blob (a folder, a page or a tree index) from the catalog's copy when it has
    /// one (verified like any blob), else from its pack.
    pub fn read_tree_blob(&self, id: TreeId) -> Result<TreeBlob> {
        let cached = match self.catalog.tree_frame(&id.0)? {
            Some((raw_len, frame)) => {
                let entry = IndexEntry {
                    kind: BlobKind::Tree,
                    id: id.0,
                    offset: 0,
                    stored_len: frame.len() as u32,
                    raw_len,
                };
                match crate::store::pack::open_blob(&frame, &entry) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        log::warn!(
                            "catalog copy of tree {} is damaged ({e}); reading the store",
                            id.short()
                        );
                        None
                    }
                }
            }
            None => None,
        };
        let bytes = match cached {
            Some(b) => b,
            None => self.read_blob(BlobKind::Tree, &id.0)?,
        };
        TreeBlob::decode(&bytes).map_err(|e| RepoError::BadTree {
            id,
            path: self.store.root().display().to_string(),
            detail: e.to_string(),
        })
    }

    /// Tells the store which chunks will be read, in this order (a restore on object storage
    /// then fetches each needed range of a pack once, several at a time; see
    /// [`crate::store::backend::Backend::plan_reads`]). Chunks not found are left out.
    pub fn plan_chunk_reads(&self, chunks: &[ChunkId]) {
        let mut reads = Vec::with_capacity(chunks.len());
        for c in chunks {
            if let Ok(Some((pack, entry))) = self.catalog.locate(BlobKind::Chunk, &c.0) {
                reads.push((
                    crate::store::Store::pack_key(&pack),
                    entry.offset,
                    entry.stored_len as usize,
                ));
            }
        }
        self.store.backend().plan_reads(reads);
    }

    pub fn read_chunk(&self, id: ChunkId) -> Result<Vec<u8>> {
        self.read_blob(BlobKind::Chunk, &id.0)
    }

    /// The name a new snapshot of `host`'s `part` started at `started_ns` takes: the next free
    /// one among the part's snapshots in the store now (synced first, so a snapshot another
    /// process just committed counts).
    pub fn next_snapshot_name(&self, host: &str, part: &str, started_ns: i64) -> Result<String> {
        self.sync()?;
        let all = self.snapshots()?;
        let of_part: Vec<&Snapshot> = all
            .iter()
            .filter(|s| s.manifest.host == host && s.manifest.part == part)
            .collect();
        Ok(names::next_free(&folder_names(&of_part), started_ns))
    }

    /// Finds a snapshot by id prefix, `HOST/PART/DATE` or `HOST/PART/last`.
    pub fn resolve(&self, spec: &str) -> Result<Snapshot> {
        let all = self.snapshots()?;
        if let Some((hostpart, date)) = spec.rsplit_once('/') {
            if let Some((host, part)) = hostpart.split_once('/') {
                let mut of_part: Vec<&Snapshot> = all
                    .iter()
                    .filter(|s| s.manifest.host == host && s.manifest.part == part)
                    .collect();
                if of_part.is_empty() {
                    return Err(RepoError::NotFound(format!(
                        "no snapshot of {host}/{part}; the store has: {}",
                        known_parts(&all)
                    )));
                }
                if date == "last" {
                    of_part.retain(|s| s.manifest.status == SnapshotStatus::Complete);
                    return of_part.last().map(|s| (*s).clone()).ok_or_else(|| {
                        RepoError::NotFound(format!(
                            "part {part:?} on host {host:?} has no complete snapshot"
                        ))
                    });
                }
                let names = folder_names(&of_part);
                return of_part
                    .iter()
                    .zip(&names)
                    .find(|(_, n)| n.as_str() == date)
                    .map(|(s, _)| (*s).clone())
                    .ok_or_else(|| {
                        RepoError::NotFound(format!(
                            "no snapshot {date:?} of {host}/{part}; it has: {}",
                            names.join(", ")
                        ))
                    });
            }
        }
        let matches: Vec<&Snapshot> = all
            .iter()
            .filter(|s| s.id.to_hex().starts_with(&spec.to_ascii_lowercase()))
            .collect();
        match matches.as_slice() {
            [one] if !spec.is_empty() => Ok((*one).clone()),
            [] | [_] => Err(RepoError::NotFound(format!(
                "no snapshot matches {spec:?}: give an id prefix, HOST/PART/DATE or HOST/PART/last (see `bmbackup snapshots`)"
            ))),
            _ => Err(RepoError::NotFound(format!(
                "{spec:?} matches {} snapshots; give more digits",
                matches.len()
            ))),
        }
    }
}

/// The HOST/PART pairs of `all` (sorted by host and part, as the catalog lists them), or "no
/// snapshots at all".
pub fn known_parts(all: &[Snapshot]) -> String {
    let mut known: Vec<String> = all
        .iter()
        .map(|s| format!("{}/{}", s.manifest.host, s.manifest.part))
        .collect();
    known.sort();
    known.dedup();
    if known.is_empty() {
        "no snapshots at all".into()
    } else {
        known.join(", ")
    }
}

/// Folder names of one part's snapshots (sorted by time, then id): see [`names`].
pub fn folder_names(snaps: &[&Snapshot]) -> Vec<String> {
    names::part_names(snaps)
}

/// Every snapshot with its folder name, for a list sorted by host, part and time (as
/// [`Repository::snapshots`] returns it). Names are computed over each part's whole history, so
/// they match the mount and `snapshots` even when the caller then keeps only a few.
pub fn named_snapshots(all: &[Snapshot]) -> Vec<(&Snapshot, String)> {
    let mut out = Vec::with_capacity(all.len());
    for group in all
        .chunk_by(|a, b| a.manifest.host == b.manifest.host && a.manifest.part == b.manifest.part)
    {
        let refs: Vec<&Snapshot> = group.iter().collect();
        out.extend(group.iter().zip(folder_names(&refs)));
    }
    out
}

/// Short id shown to users.
pub fn short_id(id: &SnapshotId) -> String {
    id.short()
}
