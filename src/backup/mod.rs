//! `backup`: walks one part of a server and writes a snapshot of it. Each directory becomes a tree
//! blob; each file is compared with the same path in the parent snapshot and only read when its
//! size, mtime, ctime or inode changed, through the pipeline of `pipeline.rs` (readers, then
//! compressors, `threads` of each); a folder whose entries all equal the parent's keeps its tree
//! id (`walk.rs`: the folder walk, in bounded memory; `stat.rs`: what it learns from `lstat` and
//! the parent).
//!
//! Filesystems mounted inside a part are crossed unless `one_file_system` is set (then a mount
//! point is recorded as an empty folder). Each filesystem met gets a per-part index recorded in
//! its entries (`Entry::dev`), so inode numbers, which repeat across filesystems, are only ever
//! compared together with it: for hard links and for the parent-snapshot comparison.

pub mod hooks;
mod meta;
pub mod metrics;
mod pipeline;
mod read;
pub mod run;
pub mod settings;
mod stat;
mod walk;

use crate::id::{ChunkId, SnapshotId};
use crate::model::{ChunkRef, Entry, Manifest, Problem, SnapshotStatus};
use crate::repo::writer::{BlobWriter, WriteError};
use crate::repo::{RepoError, Repository};
use crate::store::lock::{LockError, LockKind, StoreLock};
use crate::store::now_ns;
use crate::store::pack::Codec;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot back up part {part:?}: source {path}: {source}")]
    Source {
        part: String,
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("part {0}: the backup was not run")]
    NotRun(String),
    #[error("part {part} of host {host} is being backed up by {holder}; not backed up again at the same time (waited {waited_s} s; see --lock-wait)")]
    PartBusy {
        host: String,
        part: String,
        holder: String,
        waited_s: u64,
    },
}

/// zstd level of new data unless the config or `--compression-level` says otherwise: measured
/// on the bench's mail data (README, "Compression"), level 1 costs a few % of store size
/// against level 3 and halves the compression time.
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 1;

/// One part to back up: its name (`mail/imap`) and source folder.
#[derive(Debug, Clone)]
pub struct PartSpec {
    pub name: String,
    pub path: PathBuf,
    /// The part's own zstd level (config `[parts.NAME] compression_level`), over the run's.
    pub compression_level: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub host: String,
    pub compression_level: i32,
    pub threads: usize,
    /// Record the snapshot as started at this Unix time (ns) instead of now: for simulating a
    /// history of days in tests and benchmarks, never for real backups.
    pub started_at_ns: Option<i64>,
    /// Do not descend into filesystems mounted inside a part (`--one-file-system`): their
    /// mount points are recorded as empty folders.
    pub one_file_system: bool,
    /// How long to wait for another backup of the same host and part to finish.
    pub lock_wait: std::time::Duration,
}

/// What one part's backup produced.
#[derive(Debug, Clone)]
pub struct PartReport {
    pub id: SnapshotId,
    pub manifest: Manifest,
}

/// Counters shared by the threads of one part's backup.
#[derive(Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub dirs: AtomicU64,
    pub bytes: AtomicU64,
    pub bytes_read: AtomicU64,
    /// Bytes of unchanged files taken from the parent: with `bytes_read`, how far the run is.
    pub bytes_unchanged: AtomicU64,
    /// Most entries of one folder held at once by the walk (its batch and the pages being
    /// built): what keeps a million-entry folder's backup in bounded memory.
    pub entries_held_peak: AtomicU64,
}

impl Progress {
    fn note_held(&self, n: usize) {
        self.entries_held_peak
            .fetch_max(n as u64, Ordering::Relaxed);
    }
}

/// A hard-linked file already read, reused for its other names.
pub(crate) struct LinkedFile {
    pub size: u64,
    pub mtime: crate::model::Timestamp,
    pub chunks: Vec<ChunkRef>,
    pub flags: u32,
}

struct Ctx<'a> {
    repo: &'a Repository,
    writer: BlobWriter<'a>,
    progress: &'a Progress,
    problems: Mutex<Vec<Problem>>,
    /// Hard-linked files already read in this run, by [`Entry::link_id`].
    links: Mutex<HashMap<(u32, u64), LinkedFile>>,
    /// The part's filesystems: `st_dev` -> index in the order the walk met them (the walk runs
    /// on one thread in name order, so the numbering is the same every run).
    devs: Mutex<HashMap<u64, u32>>,
    /// `st_dev` of the part's folder, for `one_file_system`.
    root_dev: u64,
    one_file_system: bool,
    threads: usize,
    /// Compression context of the walking thread, which writes tree blobs.
    tree_codec: Mutex<Codec>,
    /// The compress stage new chunks go to.
    compressors: pipeline::Compressors,
    /// Whether an entry of the snapshot has extended attributes (`Manifest::has_xattrs`).
    xattrs_seen: AtomicBool,
}

/// A reader thread's read buffer and its end of the compress queue.
pub(crate) struct Scratch {
    pub buf: Vec<u8>,
    pub tx: pipeline::ChunkSender,
}

impl Ctx<'_> {
    fn dev_index(&self, dev: u64) -> u32 {
        let mut devs = self.devs.lock();
        let next = devs.len() as u32;
        *devs.entry(dev).or_insert(next)
    }

    /// Records whether a folder's final entries carry xattrs (`walk.rs` passes each entry it
    /// keeps, a batch at a time). Every folder of the snapshot passes here, also one whose entries all come from the parent (their xattrs are copied
    /// with them), so the answer is exact. A walk that ever reuses a folder's tree id WITHOUT
    /// listing its entries must set this from the parent's `has_xattrs` instead (unknown or
    /// true => true), or a mount could hide xattrs it has.
    fn note_xattrs(&self, entries: &[Entry]) {
        if entries.iter().any(|e| !e.xattrs.is_empty()) {
            self.xattrs_seen.store(true, Ordering::Relaxed);
        }
    }

    fn problem(&self, rel: &Path, error: String) {
        // The part's summary lists every problem; a warning here printed each one twice.
        log::debug!("{}: {error}", rel.display());
        self.problems.lock().push(Problem {
            path: rel.to_string_lossy().into_owned(),
            error,
        });
    }
}

/// Backs up `part` as host `opts.host` and writes its manifest.
/// `lock` is the caller's shared store lock: checked right before the manifest is written, so a
/// backup whose lock was removed as stale (and whose chunks prune may have deleted) never commits.
pub fn backup_part(
    repo: &Repository,
    part: &PartSpec,
    opts: &BackupOptions,
    progress: &Progress,
    lock: &StoreLock,
) -> Result<PartReport, BackupError> {
    let _part_lock = lock_part(repo, &opts.host, &part.name, opts.lock_wait)?;
    let wall_start = now_ns();
    let started_ns = opts.started_at_ns.unwrap_or(wall_start);
    let source = std::fs::canonicalize(&part.path).map_err(|source| BackupError::Source {
        part: part.name.clone(),
        path: part.path.display().to_string(),
        source,
    })?;
    let md = std::fs::metadata(&source).map_err(|source_err| BackupError::Source {
        part: part.name.clone(),
        path: source.display().to_string(),
        source: source_err,
    })?;
    if !md.is_dir() {
        return Err(BackupError::Source {
            part: part.name.clone(),
            path: source.display().to_string(),
            source: std::io::Error::other("not a directory"),
        });
    }
    let parent = repo
        .snapshots()?
        .into_iter()
        .filter(|s| s.manifest.host == opts.host && s.manifest.part == part.name)
        .max_by_key(|s| s.manifest.started_ns);
    let parent_folder = match &parent {
        Some(p) => match repo.read_folder(p.root) {
            Ok(t) => Some(t),
            Err(e) => {
                log::warn!(
                    "parent snapshot {} unreadable, reading every file: {e}",
                    p.id.short()
                );
                None
            }
        },
        None => None,
    };
    let writer = BlobWriter::new(
        repo,
        part.compression_level.unwrap_or(opts.compression_level),
    );
    let tree_codec = Mutex::new(writer.codec()?);
    let (compressors, chunk_tx) = pipeline::Compressors::new(opts.threads.max(1));
    let ctx = Ctx {
        repo,
        writer,
        progress,
        problems: Mutex::new(Vec::new()),
        links: Mutex::new(HashMap::new()),
        devs: Mutex::new(HashMap::from([(md.dev(), 0)])),
        root_dev: md.dev(),
        one_file_system: opts.one_file_system,
        threads: opts.threads.max(1),
        tree_codec,
        compressors,
        xattrs_seen: AtomicBool::new(false),
    };
    let (jobs, queue) = mpsc::channel::<pipeline::Job>();
    let queue = Mutex::new(queue);
    let root_meta = {
        crate::model::RootMeta {
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime_sec: md.mtime(),
            mtime_nsec: md.mtime_nsec() as u32,
            flags: meta::path_flags(&source),
        }
    };
    // Readers and compressors, `threads` of each: readers wait on the disk and compressors on
    // the readers, so together they keep `threads` cores busy.
    let root = std::thread::scope(|s| {
        for _ in 0..ctx.threads {
            s.spawn(|| ctx.compressors.run(&ctx.writer));
        }
        for _ in 0..ctx.threads {
            let tx = chunk_tx.clone();
            s.spawn(|| pipeline::worker(&ctx, &queue, tx));
        }
        drop(chunk_tx);
        let root = walk::backup_dir(&ctx, &jobs, &source, Path::new(""), parent_folder);
        drop(jobs);
        root
    });
    if let Some(e) = ctx.compressors.take_error() {
        return Err(e.into());
    }
    let root = root?;
    ctx.writer.flush()?;
    let mut problems = ctx.problems.into_inner();
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        host: opts.host.clone(),
        part: part.name.clone(),
        source: source.display().to_string(),
        started_ns,
        finished_ns: started_ns + (now_ns() - wall_start),
        root: root.to_hex(),
        files: progress.files.load(Ordering::Relaxed),
        dirs: progress.dirs.load(Ordering::Relaxed),
        bytes: progress.bytes.load(Ordering::Relaxed),
        bytes_read: progress.bytes_read.load(Ordering::Relaxed),
        bytes_added: ctx.writer.bytes_added.load(Ordering::Relaxed),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        status: if problems.is_empty() {
            SnapshotStatus::Complete
        } else {
            SnapshotStatus::Partial
        },
        problems,
        parent: parent.map(|p| p.id.to_hex()),
        root_meta: Some(root_meta),
        name: Some(repo.next_snapshot_name(&opts.host, &part.name, started_ns)?),
        has_xattrs: Some(ctx.xattrs_seen.load(Ordering::Relaxed)),
    };
    lock.check()?;
    let id = repo
        .store
        .write_manifest(&manifest)
        .map_err(RepoError::from)?;
    repo.catalog
        .add_snapshot(&id, &manifest)
        .map_err(RepoError::from)?;
    Ok(PartReport { id, manifest })
}

/// Takes the `HOST/PART` lock, so that one part is backed up by one process at a time: two
/// would read the same files and write the same data twice. Waits up to `wait` for a running
/// backup of the part (telling so), then syncs the catalog so that its snapshot is the parent
/// and only what changed since it is read.
fn lock_part(
    repo: &Repository,
    host: &str,
    part: &str,
    wait: std::time::Duration,
) -> Result<StoreLock, BackupError> {
    let scope = format!("{host}/{part}");
    let command = format!("backup of {scope}");
    let take = |wait| {
        StoreLock::acquire_scoped(
            repo.store.shared_backend(),
            LockKind::Shared,
            &command,
            Some(&scope),
            wait,
        )
    };
    let busy = |holder| BackupError::PartBusy {
        host: host.to_string(),
        part: part.to_string(),
        holder,
        waited_s: wait.as_secs(),
    };
    let lock = match take(std::time::Duration::ZERO) {
        Err(LockError::Busy(holder)) if wait.is_zero() => return Err(busy(holder)),
        Err(LockError::Busy(holder)) => {
            log::warn!(
                "part {part} of host {host} is being backed up by {holder}; waiting up to {} s for it to finish",
                wait.as_secs()
            );
            match take(wait) {
                Err(LockError::Busy(holder)) => return Err(busy(holder)),
                other => other?,
            }
        }
        other => other?,
    };
    repo.sync()?;
    Ok(lock)
}

/// Chunk list of a file; used by tests and `read.rs`.
pub(crate) fn chunk_ref(data: &[u8]) -> ChunkRef {
    ChunkRef {
        id: ChunkId::of(data),
        len: data.len() as u32,
    }
}
