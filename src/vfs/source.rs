//! What the mount reads from: the `SnapshotSource` trait (the repository implements it) and the
//! error kinds a source reports, which decide the errno a reader sees.

use crate::id::{ChunkId, TreeId};
use crate::model::{Snapshot, Tree};

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
    /// A directory, hash-verified.
    fn read_tree(&self, id: TreeId) -> Result<Tree, SourceError>;
    /// A chunk's plain bytes, hash-verified.
    fn read_chunk(&self, id: ChunkId) -> Result<Vec<u8>, SourceError>;
}
