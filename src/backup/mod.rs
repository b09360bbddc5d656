//! `backup`: walks one part of a server and writes a snapshot of it. Each directory becomes a tree
//! blob; each file is compared with the same path in the parent snapshot and only read when its
//! size, mtime, ctime or inode changed. Files of one directory are read by several threads.

mod meta;
mod read;

use crate::id::{ChunkId, SnapshotId, TreeId};
use crate::model::{ChunkRef, Content, Entry, EntryKind, Manifest, Problem, SnapshotStatus, Tree};
use crate::repo::{RepoError, Repository};
use crate::store::now_ns;
use crate::store::pack::BlobKind;
use crate::writer::{BlobWriter, WriteError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
}

/// One part to back up: its name (`mail/imap`) and source folder.
#[derive(Debug, Clone)]
pub struct PartSpec {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub host: String,
    pub compression_level: i32,
    pub threads: usize,
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
}

/// A hard-linked file already read: (size, mtime, chunks), reused for its other names.
type LinkedFile = (u64, crate::model::Timestamp, Vec<ChunkRef>);

struct Ctx<'a> {
    repo: &'a Repository,
    writer: BlobWriter<'a>,
    progress: &'a Progress,
    problems: Mutex<Vec<Problem>>,
    /// Hard-linked files already read in this run: inode -> (size, mtime, chunks).
    links: Mutex<HashMap<u64, LinkedFile>>,
    threads: usize,
}

impl Ctx<'_> {
    fn problem(&self, rel: &Path, error: String) {
        log::warn!("{}: {error}", rel.display());
        self.problems.lock().push(Problem {
            path: rel.to_string_lossy().into_owned(),
            error,
        });
    }
}

/// Backs up `part` as host `opts.host` and writes its manifest.
pub fn backup_part(
    repo: &Repository,
    part: &PartSpec,
    opts: &BackupOptions,
    progress: &Progress,
) -> Result<PartReport, BackupError> {
    let started_ns = now_ns();
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
    let parent_tree = match &parent {
        Some(p) => match repo.read_tree(p.root) {
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
    let ctx = Ctx {
        repo,
        writer: BlobWriter::new(repo, opts.compression_level),
        progress,
        problems: Mutex::new(Vec::new()),
        links: Mutex::new(HashMap::new()),
        threads: opts.threads.max(1),
    };
    let root = backup_dir(&ctx, &source, Path::new(""), parent_tree.as_ref())?;
    ctx.writer.flush()?;
    let mut problems = ctx.problems.into_inner();
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        host: opts.host.clone(),
        part: part.name.clone(),
        source: source.display().to_string(),
        started_ns,
        finished_ns: now_ns(),
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
    };
    let id = repo
        .store
        .write_manifest(&manifest)
        .map_err(RepoError::from)?;
    repo.catalog
        .add_snapshot(&id, &manifest)
        .map_err(RepoError::from)?;
    Ok(PartReport { id, manifest })
}

/// True when the parent's entry describes the same unchanged file, so its chunks can be reused.
fn unchanged(now: &Entry, before: &Entry) -> bool {
    before.kind == EntryKind::File
        && now.size == before.size
        && now.mtime == before.mtime
        && now.ctime == before.ctime
        && now.ino == before.ino
}

fn backup_dir(
    ctx: &Ctx<'_>,
    abs: &Path,
    rel: &Path,
    parent: Option<&Tree>,
) -> Result<TreeId, BackupError> {
    ctx.progress.dirs.fetch_add(1, Ordering::Relaxed);
    let mut names: Vec<Vec<u8>> = Vec::new();
    match std::fs::read_dir(abs) {
        Ok(rd) => {
            for ent in rd {
                match ent {
                    Ok(ent) => names.push(ent.file_name().as_bytes().to_vec()),
                    Err(e) => ctx.problem(rel, format!("cannot list folder: {e}")),
                }
            }
        }
        Err(e) if rel.as_os_str().is_empty() => {
            return Err(BackupError::Source {
                part: String::new(),
                path: abs.display().to_string(),
                source: e,
            })
        }
        Err(e) => ctx.problem(rel, format!("cannot list folder: {e}")),
    }
    names.sort();
    let mut entries: Vec<Entry> = Vec::with_capacity(names.len());
    let mut to_read: Vec<usize> = Vec::new();
    for name in names {
        let os_name = std::ffi::OsStr::from_bytes(&name);
        let path = abs.join(os_name);
        let rel_path = rel.join(os_name);
        let md = match std::fs::symlink_metadata(&path) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::warn!(
                    "{}: vanished during the backup, skipped",
                    rel_path.display()
                );
                continue;
            }
            Err(e) => {
                ctx.problem(&rel_path, format!("cannot stat: {e}"));
                continue;
            }
        };
        let Some(mut entry) = meta::entry_from_metadata(&name, &md) else {
            ctx.problem(&rel_path, "unknown file type".into());
            continue;
        };
        let before = parent.and_then(|t| t.find(&name));
        if let Some(b) = before.filter(|b| unchanged(&entry, b)) {
            entry.xattrs = b.xattrs.clone();
            entry.content = b.content.clone();
            ctx.progress.files.fetch_add(1, Ordering::Relaxed);
            ctx.progress.bytes.fetch_add(entry.size, Ordering::Relaxed);
            entries.push(entry);
            continue;
        }
        match meta::read_xattrs(&path) {
            Ok(x) => entry.xattrs = x,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::warn!(
                    "{}: vanished during the backup, skipped",
                    rel_path.display()
                );
                continue;
            }
            Err(e) => log::warn!("{}: extended attributes not read: {e}", rel_path.display()),
        }
        match entry.kind {
            EntryKind::Symlink => match std::fs::read_link(&path) {
                Ok(t) => entry.target = t.as_os_str().as_bytes().to_vec(),
                Err(e) => {
                    ctx.problem(&rel_path, format!("cannot read symlink: {e}"));
                    continue;
                }
            },
            EntryKind::File => to_read.push(entries.len()),
            EntryKind::Dir => {
                let sub_parent = match before.and_then(Entry::subtree) {
                    Some(t) => ctx.repo.read_tree(t).ok(),
                    None => None,
                };
                let sub = backup_dir(ctx, &path, &rel_path, sub_parent.as_ref())?;
                entry.content = Content::Tree(sub);
            }
            _ => {}
        }
        entries.push(entry);
    }
    let skipped = read_files(ctx, abs, rel, &mut entries, &to_read)?;
    if !skipped.is_empty() {
        let mut keep = vec![true; entries.len()];
        for i in skipped {
            keep[i] = false;
        }
        let mut flags = keep.into_iter();
        entries.retain(|_| flags.next().unwrap_or(true));
    }
    let tree = Tree { entries };
    let bytes = tree.encode();
    let id = TreeId::of(&bytes);
    ctx.writer.add(BlobKind::Tree, id.0, &bytes)?;
    Ok(id)
}

/// Reads the changed files of one directory, on several threads when there are several. Returns
/// the indexes of files that could not be stored (they are left out of the tree).
fn read_files(
    ctx: &Ctx<'_>,
    abs: &Path,
    rel: &Path,
    entries: &mut [Entry],
    to_read: &[usize],
) -> Result<Vec<usize>, BackupError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, read::Outcome)>> = Mutex::new(Vec::new());
    let fatal: Mutex<Option<BackupError>> = Mutex::new(None);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(&idx) = to_read.get(i) else { break };
        let entry = &entries[idx];
        let name = std::ffi::OsStr::from_bytes(&entry.name);
        match read::read_file(ctx, &abs.join(name), entry) {
            Ok(o) => results.lock().push((idx, o)),
            Err(e) => {
                *fatal.lock() = Some(e);
                break;
            }
        }
    };
    let threads = ctx.threads.min(to_read.len());
    if threads > 1 {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    } else {
        work();
    }
    if let Some(e) = fatal.into_inner() {
        return Err(e);
    }
    let mut skipped = Vec::new();
    for (idx, outcome) in results.into_inner() {
        let entry = &mut entries[idx];
        let rel_path = rel.join(std::ffi::OsStr::from_bytes(&entry.name));
        match outcome {
            read::Outcome::Read {
                chunks,
                size,
                warning,
                stat,
            } => {
                if let Some(w) = warning {
                    ctx.problem(&rel_path, w);
                }
                if let Some(s) = stat {
                    entry.mtime = s.mtime;
                    entry.ctime = s.ctime;
                    entry.ino = s.ino;
                    entry.nlink = s.nlink;
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

/// Chunk list of a file; used by tests and `read.rs`.
pub(crate) fn chunk_ref(data: &[u8]) -> ChunkRef {
    ChunkRef {
        id: ChunkId::of(data),
        len: data.len() as u32,
    }
}
