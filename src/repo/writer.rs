//! Writes new blobs into packs for one backup process: deduplicates against the catalog and
//! against blobs written earlier in this run, compresses outside the lock so several threads can
//! work at once, and commits each full pack (temp, fsync, rename) before recording it.

use crate::id::{Digest, PackId};
use crate::repo::Repository;
use crate::store::pack::{encode_frame, BlobKind, Codec, Frame, IndexEntry, PackBuilder};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Packs are cut at this size: tens of MiB keeps file counts low and reads contiguous.
pub const TARGET_PACK_SIZE: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error("cannot compress {kind} {id}: {detail}")]
    Encode {
        kind: &'static str,
        id: Digest,
        detail: String,
    },
}

pub struct BlobWriter<'a> {
    repo: &'a Repository,
    level: i32,
    target_size: usize,
    builder: Mutex<PackBuilder>,
    written: Mutex<HashSet<(u8, Digest)>>,
    /// Stored (compressed) bytes added to the store by this writer.
    pub bytes_added: AtomicU64,
    pub packs_written: AtomicU64,
}

impl<'a> BlobWriter<'a> {
    pub fn new(repo: &'a Repository, level: i32) -> Self {
        BlobWriter {
            repo,
            level,
            target_size: TARGET_PACK_SIZE,
            builder: Mutex::new(PackBuilder::new()),
            written: Mutex::new(HashSet::new()),
            bytes_added: AtomicU64::new(0),
            packs_written: AtomicU64::new(0),
        }
    }

    fn known(&self, kind: BlobKind, id: &Digest) -> Result<bool, WriteError> {
        if self.written.lock().contains(&(kind.code(), *id)) {
            return Ok(true);
        }
        Ok(self
            .repo
            .catalog
            .has_blob(kind, id)
            .map_err(crate::repo::RepoError::from)?)
    }

    /// Stores `data` under `id` unless it is already stored; returns true when it was new.
    pub fn add(
        &self,
        kind: BlobKind,
        id: Digest,
        data: &[u8],
        codec: &mut Codec,
    ) -> Result<bool, WriteError> {
        if self.known(kind, &id)? {
            return Ok(false);
        }
        let frame = self.encode(kind, id, data, codec)?;
        if !self.written.lock().insert((kind.code(), id)) {
            return Ok(false);
        }
        self.append(kind, id, &frame)?;
        Ok(true)
    }

    /// Claims `id` for this run when the store does not have it yet: true means the caller must
    /// now hand the blob to [`BlobWriter::store_claimed`] (and nobody else will), false that it
    /// is stored or claimed already. What the content pipeline calls before compressing, so a
    /// chunk already stored costs its hash and this look-up, and each new one is compressed once.
    pub fn claim(&self, kind: BlobKind, id: &Digest) -> Result<bool, WriteError> {
        if self.known(kind, id)? {
            return Ok(false);
        }
        Ok(self.written.lock().insert((kind.code(), *id)))
    }

    /// Compresses, verifies and appends a blob claimed with [`BlobWriter::claim`].
    pub fn store_claimed(
        &self,
        kind: BlobKind,
        id: Digest,
        data: &[u8],
        codec: &mut Codec,
    ) -> Result<(), WriteError> {
        let frame = self.encode(kind, id, data, codec)?;
        self.append(kind, id, &frame)
    }

    fn encode(
        &self,
        kind: BlobKind,
        id: Digest,
        data: &[u8],
        codec: &mut Codec,
    ) -> Result<Frame, WriteError> {
        encode_frame(data, &id, codec).map_err(|e| WriteError::Encode {
            kind: kind.name(),
            id,
            detail: e.to_string(),
        })
    }

    /// Appends an encoded frame to the pack being filled, committing the pack when full.
    fn append(&self, kind: BlobKind, id: Digest, frame: &Frame) -> Result<(), WriteError> {
        let full = {
            let mut builder = self.builder.lock();
            builder.add(kind, id, frame);
            self.bytes_added
                .fetch_add(frame.bytes.len() as u64, Ordering::Relaxed);
            if builder.len() >= self.target_size {
                Some(std::mem::take(&mut *builder))
            } else {
                None
            }
        };
        if let Some(b) = full {
            self.commit(b)?;
        }
        Ok(())
    }

    fn commit(&self, builder: PackBuilder) -> Result<(), WriteError> {
        if builder.is_empty() {
            return Ok(());
        }
        let (bytes, id, index) = builder.finish();
        let id = PackId(id);
        self.repo
            .store
            .write_pack(&id, &bytes)
            .map_err(crate::repo::RepoError::from)?;
        self.repo
            .catalog
            .add_pack(
                &id,
                bytes.len() as u64,
                &index,
                &tree_frames(&bytes, &index),
            )
            .map_err(crate::repo::RepoError::from)?;
        self.packs_written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A compression context at this writer's level, one per thread.
    pub fn codec(&self) -> Result<Codec, WriteError> {
        Codec::new(self.level).map_err(|e| WriteError::Encode {
            kind: "codec",
            id: Digest([0; 32]),
            detail: e.to_string(),
        })
    }

    /// Commits the pack being filled. Call before writing a manifest that references its blobs.
    pub fn flush(&self) -> Result<(), WriteError> {
        let b = std::mem::take(&mut *self.builder.lock());
        self.commit(b)
    }
}

/// The frames of a finished pack's trees, for the catalog.
pub fn tree_frames<'b>(pack: &'b [u8], index: &[IndexEntry]) -> Vec<(IndexEntry, &'b [u8])> {
    index
        .iter()
        .filter(|e| e.kind == BlobKind::Tree)
        .filter_map(|e| {
            let start = usize::try_from(e.offset).ok()?;
            let end = start.checked_add(e.stored_len as usize)?;
            pack.get(start..end).map(|f| (*e, f))
        })
        .collect()
}
