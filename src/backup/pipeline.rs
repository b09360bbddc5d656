//! The reader and compress stages of a backup's content pipeline: the walk hands a folder's
//! changed files to `threads` readers ([`read_files`]) in a bounded window; readers (read →
//! chunk + hash) hand each new chunk to a bounded queue, and `threads` compressors take them
//! from it (compress, verify, append to the pack), so one big file keeps every core busy and
//! memory stays flat (the queue holds at most a few chunks per thread). A chunk already stored never reaches the
//! queue: it costs its hash and one catalog look-up ([`BlobWriter::claim`]).
//!
//! The order of chunks in a file and of entries in a tree is decided by the readers and the
//! walk, never by which compressor finishes first, so snapshots stay deterministic.

use super::{read, BackupError, Ctx, Scratch};
use crate::id::Digest;
use crate::model::{Content, Entry};
use crate::repo::writer::{BlobWriter, WriteError};
use crate::store::pack::BlobKind;
use parking_lot::Mutex;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
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

/// A file for a worker to read, and where to send the outcome.
pub(super) struct Job {
    path: PathBuf,
    entry: Entry,
    idx: usize,
    reply: mpsc::Sender<(usize, Result<read::Outcome, BackupError>)>,
}

/// Reads files handed out by the walker until the walk is over.
pub(super) fn worker(ctx: &Ctx<'_>, queue: &Mutex<mpsc::Receiver<Job>>, tx: ChunkSender) {
    let mut scratch = Scratch {
        buf: Vec::new(),
        tx,
    };
    loop {
        let job = match queue.lock().recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let outcome = read::read_file(ctx, &job.path, &job.entry, &mut scratch);
        let _ = job.reply.send((job.idx, outcome));
    }
}

/// Has the workers read the changed files of one directory. Returns the indexes of files that
/// could not be stored (they are left out of the tree).
pub(super) fn read_files(
    ctx: &Ctx<'_>,
    jobs: &mpsc::Sender<Job>,
    abs: &Path,
    rel: &Path,
    entries: &mut [Entry],
    to_read: &[usize],
) -> Result<Vec<usize>, BackupError> {
    let (reply, replies) = mpsc::channel();
    // Jobs go out in a bounded window: queuing a million-file folder at once would hold a copy
    // of every entry and path in the queue.
    let window = ctx.threads * 32;
    let mut in_flight = 0usize;
    let mut results = Vec::with_capacity(to_read.len());
    let mut fatal = None;
    let mut take = |r: (usize, Result<read::Outcome, BackupError>)| match r {
        (idx, Ok(o)) => results.push((idx, o)),
        (_, Err(e)) => fatal = Some(e),
    };
    for &idx in to_read {
        if in_flight >= window {
            // Every job sent is answered (workers reply whatever happens), so this returns.
            if let Ok(r) = replies.recv() {
                take(r);
                in_flight -= 1;
            }
        }
        let entry = &entries[idx];
        let job = Job {
            path: abs.join(std::ffi::OsStr::from_bytes(&entry.name)),
            entry: entry.clone(),
            idx,
            reply: reply.clone(),
        };
        if jobs.send(job).is_err() {
            return Err(BackupError::Source {
                part: String::new(),
                path: abs.display().to_string(),
                source: std::io::Error::other("reader threads stopped"),
            });
        }
        in_flight += 1;
    }
    drop(reply);
    for r in replies.iter() {
        take(r);
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    let mut skipped = Vec::new();
    for (idx, outcome) in results {
        let entry = &mut entries[idx];
        let rel_path = rel.join(std::ffi::OsStr::from_bytes(&entry.name));
        match outcome {
            read::Outcome::Read {
                chunks,
                size,
                warning,
                stat,
                flags,
            } => {
                if let Some(w) = warning {
                    ctx.problem(&rel_path, w);
                }
                if let Some(s) = stat {
                    entry.mtime = s.mtime;
                    entry.ctime = s.ctime;
                    entry.ino = s.ino;
                    entry.nlink = s.nlink;
                    entry.blocks = Some(s.blocks);
                    entry.flags = s.flags;
                }
                if let Some(f) = flags {
                    entry.flags = f;
                }
                entry.size = size;
                entry.content = Content::Chunks(chunks);
                ctx.progress.files.fetch_add(1, Ordering::Relaxed);
                ctx.progress.bytes.fetch_add(size, Ordering::Relaxed);
            }
            read::Outcome::Vanished(why) => {
                log::warn!("{}: {why}, skipped", rel_path.display());
                skipped.push(idx);
            }
            read::Outcome::Unreadable(e) => {
                ctx.problem(&rel_path, format!("cannot read: {e}"));
                skipped.push(idx);
            }
        }
    }
    Ok(skipped)
}
