//! The compress stage of a backup's content pipeline: readers (walk → read → chunk + hash) hand
//! each new chunk to a bounded queue, and `threads` compressors take them from it (compress,
//! verify, append to the pack), so one big file keeps every core busy and memory stays flat
//! (the queue holds at most a few chunks per thread). A chunk already stored never reaches the
//! queue: it costs its hash and one catalog look-up ([`BlobWriter::claim`]).
//!
//! The order of chunks in a file and of entries in a tree is decided by the readers and the
//! walk, never by which compressor finishes first, so snapshots stay deterministic.

use crate::id::Digest;
use crate::repo::writer::{BlobWriter, WriteError};
use crate::store::pack::BlobKind;
use parking_lot::Mutex;
use std::sync::mpsc;

/// Chunks waiting per compressor thread: enough to ride out a slow pack commit, few enough
/// that the queue stays under a few MiB whatever the file sizes.
const QUEUE_PER_THREAD: usize = 8;

/// A new chunk on its way to a compressor.
pub(crate) struct ChunkJob {
    pub id: Digest,
    pub data: Vec<u8>,
}

/// The compressors' shared state: the queue they take chunks from and the first error one hit.
pub(crate) struct Compressors {
    queue: Mutex<mpsc::Receiver<ChunkJob>>,
    error: Mutex<Option<WriteError>>,
}

/// The queue's sending side, one per reader thread.
pub(crate) type ChunkSender = mpsc::SyncSender<ChunkJob>;

impl Compressors {
    pub fn new(threads: usize) -> (Compressors, ChunkSender) {
        let (tx, rx) = mpsc::sync_channel(threads.max(1) * QUEUE_PER_THREAD);
        (
            Compressors {
                queue: Mutex::new(rx),
                error: Mutex::new(None),
            },
            tx,
        )
    }

    /// One compressor thread: runs until every sender is gone. After an error it keeps
    /// draining the queue (without compressing) so that no reader blocks on a full queue.
    pub fn run(&self, writer: &BlobWriter<'_>) {
        let mut codec = match writer.codec() {
            Ok(c) => Some(c),
            Err(e) => {
                self.fail(e);
                None
            }
        };
        loop {
            let job = match self.queue.lock().recv() {
                Ok(job) => job,
                Err(_) => return,
            };
            let Some(c) = codec.as_mut() else { continue };
            if self.failed() {
                continue;
            }
            if let Err(e) = writer.store_claimed(BlobKind::Chunk, job.id, &job.data, c) {
                self.fail(e);
            }
        }
    }

    fn fail(&self, e: WriteError) {
        let mut slot = self.error.lock();
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    /// True once a compressor failed: readers stop early, the backup fails.
    pub fn failed(&self) -> bool {
        self.error.lock().is_some()
    }

    /// The first error a compressor hit (the one to report: readers only see that they stopped).
    pub fn take_error(&self) -> Option<WriteError> {
        self.error.lock().take()
    }
}

/// Hands a chunk to the compressors if the store does not have it yet. An `Err` means the
/// backup cannot go on (the store failed, or the compressors stopped).
pub(crate) fn submit(
    writer: &BlobWriter<'_>,
    compressors: &Compressors,
    tx: &ChunkSender,
    id: Digest,
    data: &[u8],
) -> Result<(), WriteError> {
    if compressors.failed() {
        return Err(stopped(&id));
    }
    if !writer.claim(BlobKind::Chunk, &id)? {
        return Ok(());
    }
    tx.send(ChunkJob {
        id,
        data: data.to_vec(),
    })
    .map_err(|_| stopped(&id))
}

fn stopped(id: &Digest) -> WriteError {
    WriteError::Encode {
        kind: "chunk",
        id: *id,
        detail: "the compressor threads stopped".into(),
    }
}
