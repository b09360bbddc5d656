//! What the mount reads from: the `SnapshotSource` trait (the repository implements it) and the
//! error kinds a source reports, which decide the errno a reader sees.

use crate::id::{ChunkId, TreeId};
use crate::model::Snapshot;
use crate::pages::TreeBlob;

/// Why a source could not deliver. The kinds matter: damage must reach the reader as EIO,
/// never as "no such file", and an interrupted call must not look like damage.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The object is missing or fails its hash check: the store is damaged (or was pruned).
    #[error("damaged store: {0}")]
    Damaged(String),
    /// Any other I/O failure (disk, network share, catalog).
    #[error("{0}")]
    Io(String),
    #[error("interrupted")]
    Interrupted,
}

/// A read-only view of a store. Every method may be called from several threads at once.
pub trait SnapshotSource: Send + Sync {
    /// All snapshots of the store.
    fn snapshots(&self) -> Result<Vec<Snapshot>, SourceError>;
    /// Looks for snapshots written since the last call (possibly by other machines); true if
    /// the set changed.
    fn refresh(&self) -> Result<bool, SourceError>;
    /// A tree blob (a folder, a page of a paged folder or its index), hash-verified.
    fn read_tree_blob(&self, id: TreeId) -> Result<TreeBlob, SourceError>;
    /// A chunk's plain bytes, hash-verified.
    fn read_chunk(&self, id: ChunkId) -> Result<Vec<u8>, SourceError>;
    /// Bytes the store holds (what `df` on the mount shows as used); 0 when unknown.
    fn stored_bytes(&self) -> u64 {
        0
    }
}

/// The store seen through its catalog. Damage and missing objects become `Damaged` (EIO);
/// an interrupted system call stays `Interrupted`.
impl SnapshotSource for crate::repo::Repository {
    fn snapshots(&self) -> Result<Vec<Snapshot>, SourceError> {
        crate::repo::Repository::snapshots(self).map_err(classify)
    }

    fn refresh(&self) -> Result<bool, SourceError> {
        crate::repo::Repository::refresh(self).map_err(classify)
    }

    fn read_tree_blob(&self, id: TreeId) -> Result<TreeBlob, SourceError> {
        crate::repo::Repository::read_tree_blob(self, id).map_err(classify)
    }

    fn read_chunk(&self, id: ChunkId) -> Result<Vec<u8>, SourceError> {
        crate::repo::Repository::read_chunk(self, id).map_err(classify)
    }

    fn stored_bytes(&self) -> u64 {
        self.catalog.packs_size().unwrap_or(0)
    }
}

fn classify(e: crate::repo::RepoError) -> SourceError {
    use crate::repo::RepoError;
    use crate::store::StoreError;
    if e.is_corruption() {
        return SourceError::Damaged(e.to_string());
    }
    match &e {
        RepoError::Store(StoreError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::Interrupted =>
        {
            SourceError::Interrupted
        }
        _ => SourceError::Io(e.to_string()),
    }
}
