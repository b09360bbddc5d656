//! `restore`: writes a snapshot (or a subtree or file of it) back to a folder with its owners,
//! modes, times, xattrs, hard links and sparse holes. Every chunk is verified on read; a file that
//! cannot be restored is reported and the rest goes on. Never writes outside the destination:
//! names come from the tree decoder, which rejects `..`, `/` and NUL, and no path is followed
//! through a symlink.
//!
//! Resuming: a regular file is written under a temporary name in its own folder
//! (`.bmbackup-partial-<hash of its name>`), given its owner, mode, xattrs and times, and only
//! then renamed to its real name. So a file under its real name is always complete, and a rerun
//! skips it when its size and mtime match the snapshot's; a half-written file left by a killed
//! run keeps its temporary name and is removed when the rerun reaches that file again.

use crate::model::{Entry, EntryKind, Snapshot, Tree};
use crate::repo::{RepoError, Repository};
use crate::restore::fsmeta;
use crate::restore::glob::Glob;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0}")]
    Usage(String),
}

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Replace existing files in the destination instead of reporting them.
    pub overwrite: bool,
    /// Only list what would be written.
    pub dry_run: bool,
    /// Files (not folders) whose name matches one of these are left out.
    pub exclude: Vec<Glob>,
    /// When PATH is a folder, also give DEST that folder's owner, mode, times and xattrs (for
    /// a destination that stands for the folder itself, e.g. a user's mailbox put back).
    pub folder_metadata: bool,
    /// Only the folder's own files, not its subfolders (one Cyrus mailbox of a legacy spool,
    /// whose subfolders are other mailboxes).
    pub files_only: bool,
    /// Counters a progress display may read while the restore runs.
    pub progress: Option<Arc<RestoreProgress>>,
}

/// Files and bytes written so far, updated as the restore goes.
#[derive(Debug, Default)]
pub struct RestoreProgress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
}

/// Prefix of the temporary name a file is written under before it is renamed into place.
pub const PARTIAL_PREFIX: &str = ".bmbackup-partial-";

/// The temporary name of `name` in the same folder: fixed length, so it never exceeds NAME_MAX.
fn partial_name(name: &[u8]) -> String {
    let h = blake3::hash(name);
    format!("{PARTIAL_PREFIX}{}", &h.to_hex()[..16])
}

/// What a restore did; `failed` lists files not restored and why.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// Regular files, as a snapshot's `files` counts them.
    pub files: u64,
    /// Symlinks, fifos, devices and sockets.
    pub other: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub skipped_identical: u64,
    pub failed: Vec<(String, String)>,
    pub planned: Vec<String>,
}

impl RestoreReport {
    /// Counts one restored non-folder entry under `files` or `other`.
    pub fn add_written(&mut self, kind: EntryKind) {
        if kind == EntryKind::File {
            self.files += 1;
        } else {
            self.other += 1;
        }
    }
}

struct Ctx<'a> {
    repo: &'a Repository,
    opts: &'a RestoreOptions,
    links: HashMap<u64, PathBuf>,
    report: RestoreReport,
    is_root: bool,
}

/// Restores `path` (raw bytes, `/`-separated, empty for the whole snapshot) of `snap` into `dest`.
/// A folder's content goes into `dest`; a single file goes into `dest/<its name>`.
pub fn restore(
    repo: &Repository,
    snap: &Snapshot,
    path: &[u8],
    dest: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let mut tree = repo.read_tree(snap.root)?;
    let mut single: Option<Entry> = None;
    let mut folder: Option<Entry> = None;
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    for (i, comp) in parts.iter().enumerate() {
        let entry = tree.find(comp).cloned().ok_or_else(|| {
            RestoreError::Usage(format!(
                "{} is not in snapshot {}",
                String::from_utf8_lossy(path),
                snap.id.short()
            ))
        })?;
        match entry.subtree() {
            Some(sub) => {
                tree = repo.read_tree(sub)?;
                folder = Some(entry);
            }
            None if i + 1 == parts.len() => single = Some(entry),
            None => {
                return Err(RestoreError::Usage(format!(
                    "{} is not a folder in snapshot {}",
                    String::from_utf8_lossy(&parts[..=i].join(&b'/')),
                    snap.id.short()
                )))
            }
        }
    }
    let mut ctx = Ctx {
        repo,
        opts,
        links: HashMap::new(),
        report: RestoreReport::default(),
        // SAFETY: geteuid has no preconditions.
        is_root: unsafe { libc::geteuid() } == 0,
    };
    // A destination made (or found empty) by this restore stands for the restored folder and
    // gets its metadata; an existing folder such as /tmp is never re-moded.
    let dest_is_ours = match fs::read_dir(dest) {
        Ok(mut rd) => rd.next().is_none(),
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    };
    if parts.is_empty() {
        folder = snap.manifest.root_meta.as_ref().map(|m| m.as_entry());
    }
    if !opts.dry_run {
        fs::create_dir_all(dest).map_err(|source| RestoreError::Io {
            path: dest.display().to_string(),
            source,
        })?;
    }
    match single {
        Some(e) => restore_entry(&mut ctx, &e, dest),
        None => {
            restore_tree(&mut ctx, &tree, dest);
            let wanted = opts.folder_metadata || dest_is_ours;
            if let (Some(e), true, false) = (&folder, wanted, opts.dry_run) {
                if let Err(err) = fsmeta::apply(dest, e, ctx.is_root) {
                    fail(&mut ctx, dest, err);
                }
            }
        }
    }
    Ok(ctx.report)
}

fn restore_tree(ctx: &mut Ctx<'_>, tree: &Tree, dir: &Path) {
    for e in &tree.entries {
        restore_entry(ctx, e, dir);
    }
}

fn fail(ctx: &mut Ctx<'_>, path: &Path, err: impl std::fmt::Display) {
    log::error!("{}: not restored: {err}", path.display());
    ctx.report
        .failed
        .push((path.display().to_string(), err.to_string()));
}

fn restore_entry(ctx: &mut Ctx<'_>, e: &Entry, dir: &Path) {
    if e.kind == EntryKind::Dir && ctx.opts.files_only {
        return;
    }
    if e.kind != EntryKind::Dir
        && ctx
            .opts
            .exclude
            .iter()
            .any(|g| g.matches_entry(&e.name, &e.name))
    {
        return;
    }
    let path = dir.join(std::ffi::OsStr::from_bytes(&e.name));
    if ctx.opts.dry_run {
        ctx.report.planned.push(path.display().to_string());
        if let Some(sub) = e.subtree() {
            match ctx.repo.read_tree(sub) {
                Ok(t) => restore_tree(ctx, &t, &path),
                Err(err) => fail(ctx, &path, err),
            }
        }
        return;
    }
    let existing = fs::symlink_metadata(&path).ok();
    if e.kind == EntryKind::Dir {
        match &existing {
            Some(md) if md.is_dir() => {}
            Some(_) if !ctx.opts.overwrite => {
                return fail(ctx, &path, "exists and is not a folder (use --overwrite)")
            }
            _ => {
                if existing.is_some() {
                    if let Err(err) = fs::remove_file(&path) {
                        return fail(ctx, &path, err);
                    }
                }
                if let Err(err) = fs::create_dir(&path) {
                    return fail(ctx, &path, err);
                }
            }
        }
        let Some(sub) = e.subtree() else {
            return fail(ctx, &path, "folder without a tree in the snapshot");
        };
        match ctx.repo.read_tree(sub) {
            Ok(t) => restore_tree(ctx, &t, &path),
            Err(err) => fail(ctx, &path, err),
        }
        ctx.report.dirs += 1;
        if let Err(err) = fsmeta::apply(&path, e, ctx.is_root) {
            fail(ctx, &path, err);
        }
        return;
    }
    if let Some(md) = &existing {
        if e.kind == EntryKind::File
            && md.is_file()
            && md.size() == e.size
            && md.mtime() == e.mtime.sec
            && md.mtime_nsec() == i64::from(e.mtime.nsec)
        {
            // Already restored by an earlier (interrupted) run: its mtime is set last.
            ctx.report.skipped_identical += 1;
            if e.is_hardlinked() {
                ctx.links.entry(e.ino).or_insert(path);
            }
            return;
        }
        if !ctx.opts.overwrite {
            return fail(ctx, &path, "already exists (use --overwrite to replace it)");
        }
        let removed = if md.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if let Err(err) = removed {
            return fail(ctx, &path, err);
        }
    }
    if e.is_hardlinked() {
        if let Some(first) = ctx.links.get(&e.ino) {
            match fs::hard_link(first, &path) {
                Ok(()) => {
                    ctx.report.add_written(e.kind);
                    return;
                }
                Err(err) => log::warn!(
                    "{}: hard link to {} failed ({err}), writing a copy",
                    path.display(),
                    first.display()
                ),
            }
        }
    }
    let result = match e.kind {
        EntryKind::File => write_then_rename(ctx, e, dir, &path),
        EntryKind::Symlink => fsmeta::symlink(&e.target, &path)
            .map_err(|source| io_error(&path, source))
            .and_then(|()| apply(ctx, &path, e)),
        _ => fsmeta::mknod(&path, e)
            .map_err(|source| io_error(&path, source))
            .and_then(|()| apply(ctx, &path, e)),
    };
    if let Err(err) = result {
        if e.kind != EntryKind::File {
            let _ = fs::remove_file(&path);
        }
        return fail(ctx, &path, err);
    }
    ctx.report.add_written(e.kind);
    if let Some(p) = &ctx.opts.progress {
        p.files.fetch_add(1, Ordering::Relaxed);
    }
    if e.is_hardlinked() {
        ctx.links.insert(e.ino, path);
    }
}

fn io_error(path: &Path, source: io::Error) -> RestoreError {
    RestoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn apply(ctx: &Ctx<'_>, path: &Path, e: &Entry) -> Result<(), RestoreError> {
    fsmeta::apply(path, e, ctx.is_root).map_err(|source| io_error(path, source))
}

/// Writes a regular file under its temporary name with all its metadata, then renames it into
/// place (see the module doc: this is what makes an interrupted restore safe to resume).
fn write_then_rename(
    ctx: &mut Ctx<'_>,
    e: &Entry,
    dir: &Path,
    path: &Path,
) -> Result<(), RestoreError> {
    let tmp = dir.join(partial_name(&e.name));
    let written = write_file(ctx, e, &tmp)
        .and_then(|()| apply(ctx, &tmp, e))
        .and_then(|()| fs::rename(&tmp, path).map_err(|err| io_error(path, err)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Writes a file's chunks; runs of zeros become holes so sparse files stay sparse.
fn write_file(ctx: &mut Ctx<'_>, e: &Entry, path: &Path) -> Result<(), RestoreError> {
    let io_err = |source| RestoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    let mut f = match open() {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            // Only a killed earlier run leaves a file under this temporary name.
            fs::remove_file(path).map_err(io_err)?;
            log::info!(
                "{}: removed the half-written copy of an earlier run",
                path.display()
            );
            open()
        }
        other => other,
    }
    .map_err(io_err)?;
    let mut pos = 0u64;
    let mut ends_in_hole = false;
    for c in e.chunks() {
        let data = ctx.repo.read_chunk(c.id)?;
        for block in data.chunks(64 << 10) {
            ends_in_hole = block.iter().all(|&b| b == 0);
            if ends_in_hole {
                f.seek(SeekFrom::Current(block.len() as i64))
                    .map_err(io_err)?;
            } else {
                f.write_all(block).map_err(io_err)?;
            }
        }
        pos += data.len() as u64;
        if let Some(p) = &ctx.opts.progress {
            p.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
    if ends_in_hole {
        // A trailing hole is only a seek so far: give the file its length.
        f.set_len(pos).map_err(io_err)?;
    }
    ctx.report.bytes += pos;
    Ok(())
}
