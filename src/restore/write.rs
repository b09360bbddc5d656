//! `restore`: writes a snapshot (or a subtree or file of it) back to a folder with its owners,
//! modes, times, xattrs, hard links and sparse holes. Every chunk is verified on read; a file that
//! cannot be restored is reported and the rest goes on.
//!
//! Writing as root into folders that users can write: DEST is opened once ([`super::dest`]) and
//! everything below it is walked with directory descriptors. A folder is entered with
//! `openat(O_DIRECTORY|O_NOFOLLOW)`, made with `mkdirat`; a file is created
//! `O_CREAT|O_EXCL|O_NOFOLLOW` and gets its owner, xattrs, mode and times on its descriptor;
//! symlinks, fifos and devices are made with `symlinkat`/`mknodat` and get their metadata through
//! an `O_PATH` descriptor; hard links are `linkat` between folder descriptors; a rename stays in
//! one folder descriptor. No name is resolved twice, so a name swapped for a symlink by the
//! owner of a folder in DEST can never redirect a write or a `chmod`. Where a name turns out to
//! be something other than what the restore made, that file is reported ("was replaced during
//! the restore") and nothing is followed. The unsafe system calls are `rustix`'s.
//!
//! Resuming: a regular file is written under a temporary name in its own folder
//! (`.bmbackup-partial-<hash of its name>`), given its owner, mode, xattrs and times, and only
//! then renamed to its real name. So a file under its real name is always complete, and a rerun
//! skips it when its size and mtime match the snapshot's (with `--overwrite`: when its content
//! hashes to the snapshot's chunk ids and its mode, owner and mtime match). Symlinks, fifos and
//! devices the killed run made are recognised as done, and DEST gets its folder's metadata
//! again, so a rerun ends exactly like an uninterrupted restore.

use crate::model::{Entry, EntryKind, Snapshot, Tree};
use crate::repo::{RepoError, Repository};
use crate::restore::glob::Glob;
use crate::restore::links::{link_group_flags, link_id, link_to_first, FirstLink, LinkId};
use crate::restore::{dest, file, fsmeta};
use rustix::fs::{self as rfs, AtFlags, Stat};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
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

/// The inode flags (`FS_IOC_GETFLAGS` bits, [`crate::model::inode_flags`]) recorded for `e`.
pub fn entry_flags(e: &Entry) -> u32 {
    e.flags
}

pub(super) struct Ctx<'a> {
    pub(super) repo: &'a Repository,
    pub(super) opts: &'a RestoreOptions,
    pub(super) report: RestoreReport,
    pub(super) is_root: bool,
    pub(super) root: BorrowedFd<'a>,
    dest: &'a Path,
    /// Length of DEST's absolute path, to keep every restored path within PATH_MAX.
    base_len: usize,
    pub(super) links: HashMap<LinkId, FirstLink>,
}

impl Ctx<'_> {
    pub(super) fn shown(&self, rel: &[Vec<u8>], name: &[u8]) -> PathBuf {
        let mut p = self.dest.to_path_buf();
        for c in rel.iter().map(Vec::as_slice).chain([name]) {
            p.push(std::ffi::OsStr::from_bytes(c));
        }
        p
    }

    pub(super) fn fail(&mut self, path: &Path, err: impl std::fmt::Display) {
        log::error!("{}: not restored: {err}", path.display());
        self.report
            .failed
            .push((path.display().to_string(), err.to_string()));
    }
}

pub(super) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.display().to_string(),
        source,
    }
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
    if parts.is_empty() {
        folder = snap.manifest.root_meta.as_ref().map(|m| m.as_entry());
    }
    if opts.dry_run {
        let mut report = RestoreReport::default();
        match &single {
            Some(e) => plan_entry(repo, opts, e, dest, &mut report),
            None => plan_tree(repo, opts, &tree, dest, &mut report),
        }
        return Ok(report);
    }
    raise_open_files_limit();
    // On object storage, announce every chunk this restore reads, in its order: each needed
    // range of a pack is then fetched once, several at a time.
    let planning = repo.store.backend().plans_reads();
    if planning {
        let mut chunks = Vec::new();
        match &single {
            Some(e) => chunks.extend(e.chunks().iter().map(|c| c.id)),
            None => collect_chunks(repo, opts, &tree, &mut chunks),
        }
        repo.plan_chunk_reads(&chunks);
    }
    let root = dest::open_dest(dest, true).map_err(io_error(dest))?;
    // DEST stands for the restored folder, and gets its metadata, when it holds nothing but
    // the folder's own entries (made by this restore or by an interrupted run of it); an
    // existing folder such as /tmp is never re-moded.
    let dest_is_ours =
        single.is_none() && holds_only(root.as_fd(), &tree).map_err(io_error(dest))?;
    let mut ctx = Ctx {
        repo,
        opts,
        report: RestoreReport::default(),
        is_root: rustix::process::geteuid().is_root(),
        root: root.as_fd(),
        dest,
        base_len: std::path::absolute(dest).map_or(dest.as_os_str().len(), |p| p.as_os_str().len()),
        links: HashMap::new(),
    };
    match single {
        Some(e) => restore_entry(&mut ctx, &e, root.as_fd(), &mut Vec::new()),
        None => {
            restore_tree(&mut ctx, &tree, root.as_fd(), &mut Vec::new());
            let wanted = opts.folder_metadata || dest_is_ours;
            if let (Some(e), true) = (&folder, wanted) {
                let applied = fsmeta::apply_fd(root.as_fd(), e, ctx.is_root, &dest.display())
                    .and_then(|()| {
                        fsmeta::apply_flags(
                            root.as_fd(),
                            entry_flags(e),
                            ctx.is_root,
                            &dest.display(),
                        )
                    });
                if let Err(err) = applied {
                    ctx.fail(dest, err);
                }
            }
        }
    }
    link_group_flags(&mut ctx);
    if planning {
        repo.store.backend().plan_reads(Vec::new());
    }
    // DEST's own name was looked up once, at the start; if it now leads elsewhere, what was
    // written is not where the admin will look: say so.
    let held = rfs::fstat(&root).map_err(|e| io_error(dest)(e.into()))?;
    let again = dest::open_dest(dest, false).and_then(|fd| Ok(rfs::fstat(&fd)?));
    if !again.is_ok_and(|st| (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)) {
        ctx.fail(dest, fsmeta::replaced());
    }
    Ok(ctx.report)
}

/// The walk holds one descriptor per folder level (up to ~2000 for the deepest path Linux
/// allows): lift the soft limit on open files to the hard one, as far as 65536.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    let want = lim.maximum.map_or(65536, |m| m.min(65536));
    if lim.current.is_some_and(|c| c < want) {
        lim.current = Some(want);
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            log::debug!("open files limit not raised: {e}");
        }
    }
}

/// Whether the folder `dir` holds no name but `tree`'s entries and temporary names.
fn holds_only(dir: BorrowedFd<'_>, tree: &Tree) -> io::Result<bool> {
    for ent in rfs::Dir::read_from(dir)? {
        let ent = ent?;
        let name = ent.file_name().to_bytes();
        let ours = matches!(name, b"." | b"..")
            || name.starts_with(PARTIAL_PREFIX.as_bytes())
            || tree.find(name).is_some();
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

fn excluded(opts: &RestoreOptions, e: &Entry) -> bool {
    if e.kind == EntryKind::Dir {
        return opts.files_only;
    }
    opts.exclude
        .iter()
        .any(|g| g.matches_entry(&e.name, &e.name))
}

fn plan_tree(
    repo: &Repository,
    opts: &RestoreOptions,
    tree: &Tree,
    dir: &Path,
    report: &mut RestoreReport,
) {
    for e in &tree.entries {
        plan_entry(repo, opts, e, dir, report);
    }
}

fn plan_entry(
    repo: &Repository,
    opts: &RestoreOptions,
    e: &Entry,
    dir: &Path,
    report: &mut RestoreReport,
) {
    if excluded(opts, e) {
        return;
    }
    let path = dir.join(std::ffi::OsStr::from_bytes(&e.name));
    report.planned.push(path.display().to_string());
    if let Some(sub) = e.subtree() {
        // Page by page: a paged folder is never held whole.
        let planned = repo.read_folder(sub).and_then(|f| {
            f.for_each_page(repo, |t| {
                plan_tree(repo, opts, t, &path, report);
                Ok::<_, crate::repo::RepoError>(())
            })
        });
        if let Err(err) = planned {
            report
                .failed
                .push((path.display().to_string(), err.to_string()));
        }
    }
}

/// Chunks announced at most (about 32 GB of data at the average chunk size): the plan of a
/// bigger restore covers its start, the rest is read window by window, so a restore of a
/// whole large server does not hold tens of millions of entries.
const PLANNED_CHUNKS_MAX: usize = 1_000_000;

/// The chunks of the files under `tree` in the order the restore reads them (depth first, as
/// [`restore_tree`] walks), up to [`PLANNED_CHUNKS_MAX`].
fn collect_chunks(
    repo: &Repository,
    opts: &RestoreOptions,
    tree: &Tree,
    out: &mut Vec<crate::id::ChunkId>,
) {
    for e in &tree.entries {
        if excluded(opts, e) {
            continue;
        }
        if out.len() >= PLANNED_CHUNKS_MAX {
            return;
        }
        match e.subtree() {
            Some(sub) => {
                // A folder that cannot be read fails in the restore itself, with its path.
                let _ = repo.read_folder(sub).and_then(|f| {
                    f.for_each_page(repo, |t| {
                        collect_chunks(repo, opts, t, out);
                        Ok::<_, crate::repo::RepoError>(())
                    })
                });
            }
            None => out.extend(e.chunks().iter().map(|c| c.id)),
        }
    }
}

fn restore_tree(ctx: &mut Ctx<'_>, tree: &Tree, dir: BorrowedFd<'_>, rel: &mut Vec<Vec<u8>>) {
    for e in &tree.entries {
        restore_entry(ctx, e, dir, rel);
    }
}

/// A name the tree decoder should never let through; checked again because a wrong one here
/// would be resolved by the kernel as a path.
fn bad_name(name: &[u8]) -> bool {
    name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
}

fn restore_entry(ctx: &mut Ctx<'_>, e: &Entry, dir: BorrowedFd<'_>, rel: &mut Vec<Vec<u8>>) {
    if excluded(ctx.opts, e) {
        return;
    }
    let path = ctx.shown(rel, &e.name);
    if bad_name(&e.name) {
        return ctx.fail(&path, "invalid name in the snapshot");
    }
    // Descriptors could go deeper than any path, but nothing else could then reach the file
    // (and only a forged tree is that deep: see tree::MAX_DEPTH).
    let len = ctx.base_len + rel.iter().map(|c| c.len() + 1).sum::<usize>() + 1 + e.name.len();
    if len >= libc::PATH_MAX as usize {
        return ctx.fail(
            &path,
            "its path would be longer than Linux allows (PATH_MAX, 4096 bytes): restore this \
             folder into a shorter DEST",
        );
    }
    let existing = match fsmeta::stat_at(dir, &e.name) {
        Ok(st) => st,
        Err(err) => return ctx.fail(&path, err),
    };
    if e.kind == EntryKind::Dir {
        return restore_dir(ctx, e, dir, rel, existing, &path);
    }
    match restore_leaf(ctx, e, dir, rel, existing, &path) {
        Ok(true) => {
            ctx.report.add_written(e.kind);
            if let Some(p) = &ctx.opts.progress {
                p.files.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(false) => ctx.report.skipped_identical += 1,
        Err(err) => ctx.fail(&path, err),
    }
}

fn restore_dir(
    ctx: &mut Ctx<'_>,
    e: &Entry,
    dir: BorrowedFd<'_>,
    rel: &mut Vec<Vec<u8>>,
    existing: Option<Stat>,
    path: &Path,
) {
    let name = e.name.as_slice();
    let sub = match existing.as_ref().map(fsmeta::kind_of) {
        Some(Some(EntryKind::Dir)) => fsmeta::open_dir_at(dir, name).and_then(|fd| {
            fsmeta::lift_protective_flags(fd.as_fd(), entry_flags(e), ctx.is_root)?;
            Ok(fd)
        }),
        Some(_) if !ctx.opts.overwrite => {
            return ctx.fail(path, "exists and is not a folder (use --overwrite)")
        }
        Some(_) => fsmeta::remove_at(dir, name).and_then(|()| fsmeta::make_dir_at(dir, name)),
        None => fsmeta::make_dir_at(dir, name),
    };
    let sub = match sub {
        Ok(fd) => fd,
        Err(err) => return ctx.fail(path, err),
    };
    let Some(tid) = e.subtree() else {
        return ctx.fail(path, "folder without a tree in the snapshot");
    };
    // Page by page: a paged folder of a million files is never held whole.
    let repo = ctx.repo;
    let folder = match repo.read_folder(tid) {
        Ok(f) => f,
        Err(err) => return ctx.fail(path, err),
    };
    rel.push(name.to_vec());
    for i in 0..folder.page_count() {
        match folder.page(repo, i) {
            Ok(t) => restore_tree(ctx, &t, sub.as_fd(), rel),
            Err(err) => {
                rel.pop();
                return ctx.fail(path, err);
            }
        }
    }
    rel.pop();
    ctx.report.dirs += 1;
    let done = fsmeta::apply_fd(sub.as_fd(), e, ctx.is_root, &path.display())
        .and_then(|()| still_there(dir, name, &sub))
        .and_then(|()| {
            fsmeta::apply_flags(sub.as_fd(), entry_flags(e), ctx.is_root, &path.display())
        });
    if let Err(err) = done {
        ctx.fail(path, err);
    }
}

/// Checks that `name` in `dir` still is the inode held open as `fd` (not swapped meanwhile).
fn still_there(dir: BorrowedFd<'_>, name: &[u8], fd: &OwnedFd) -> io::Result<()> {
    let held = rfs::fstat(fd)?;
    match fsmeta::stat_at(dir, name)? {
        Some(st) if (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino) => Ok(()),
        _ => Err(fsmeta::replaced()),
    }
}

/// Restores a file, symlink or special file; `Ok(false)` when it was already there.
fn restore_leaf(
    ctx: &mut Ctx<'_>,
    e: &Entry,
    dir: BorrowedFd<'_>,
    rel: &[Vec<u8>],
    existing: Option<Stat>,
    path: &Path,
) -> Result<bool, RestoreError> {
    let name = e.name.as_slice();
    let first = e
        .is_hardlinked()
        .then(|| ctx.links.get(&link_id(e)))
        .flatten();
    if let Some(st) = &existing {
        if already_there(ctx, e, dir, st, path).map_err(io_error(path))? {
            if e.is_hardlinked() {
                ctx.links.entry(link_id(e)).or_insert(FirstLink {
                    dirs: rel.to_vec(),
                    name: name.to_vec(),
                    dev: st.st_dev,
                    ino: st.st_ino,
                    flags: entry_flags(e),
                });
            } else if e.kind == EntryKind::File && entry_flags(e) != 0 {
                // The interrupted run may have died between the rename and the flags.
                file::flags_on_existing(ctx, e, dir, st, path)?;
            }
            return Ok(false);
        }
        if !ctx.opts.overwrite {
            return Err(RestoreError::Usage(
                "already exists (use --overwrite to replace it)".into(),
            ));
        }
        // A new file replaces the old name by rename, atomically; anything else (or a folder
        // in the way of the rename) goes first.
        let by_rename = e.kind == EntryKind::File
            && first.is_none()
            && fsmeta::kind_of(st) != Some(EntryKind::Dir);
        if !by_rename {
            fsmeta::remove_at(dir, name).map_err(io_error(path))?;
        }
    }
    if let Some(first) = first {
        match link_to_first(ctx, first, dir, rel, name) {
            Ok(()) => return Ok(true),
            Err(err) if fsmeta::is_replaced(&err) => return Err(io_error(path)(err)),
            Err(err) => log::warn!(
                "{}: hard link to {} failed ({err}), writing a copy",
                path.display(),
                ctx.shown(&first.dirs, &first.name).display()
            ),
        }
    }
    let (dev, ino) = match e.kind {
        EntryKind::File => file::write_then_rename(ctx, e, dir, path)?,
        _ => make_special(ctx, e, dir, path).map_err(io_error(path))?,
    };
    if e.is_hardlinked() {
        ctx.links.insert(
            link_id(e),
            FirstLink {
                dirs: rel.to_vec(),
                name: name.to_vec(),
                dev,
                ino,
                flags: entry_flags(e),
            },
        );
    }
    Ok(true)
}

/// Whether the existing `st` at `e`'s name already is `e` (left by an interrupted run, or
/// the same file restored before), fixing a special file's owner, mode and times if needed.
fn already_there(
    ctx: &Ctx<'_>,
    e: &Entry,
    dir: BorrowedFd<'_>,
    st: &Stat,
    path: &Path,
) -> io::Result<bool> {
    if fsmeta::kind_of(st) != Some(e.kind) {
        return Ok(false);
    }
    let name = e.name.as_slice();
    if e.kind == EntryKind::File {
        let quick = st.st_size as u64 == e.size
            && st.st_mtime == e.mtime.sec
            && st.st_mtime_nsec as i64 == i64::from(e.mtime.nsec);
        let linked = match e
            .is_hardlinked()
            .then(|| ctx.links.get(&link_id(e)))
            .flatten()
        {
            Some(f) => (f.dev, f.ino) == (st.st_dev, st.st_ino),
            None => true,
        };
        if !quick || !linked {
            return Ok(false);
        }
        if !ctx.opts.overwrite {
            return Ok(true);
        }
        // --overwrite trusts no size and mtime: bit rot and ransomware keep both.
        return Ok(fsmeta::same_metadata(st, e, ctx.is_root) && file::same_content(dir, name, e)?);
    }
    let same = match e.kind {
        EntryKind::Symlink => rfs::readlinkat(dir, name, Vec::new())?.as_bytes() == e.target,
        EntryKind::CharDev | EntryKind::BlockDev => st.st_rdev == e.rdev,
        _ => true,
    };
    if !same {
        return Ok(false);
    }
    let mode_ok = e.kind == EntryKind::Symlink || st.st_mode & 0o7777 == e.mode & 0o7777;
    let owner_ok = !ctx.is_root || (st.st_uid, st.st_gid) == (e.uid, e.gid);
    let time_ok = st.st_mtime == e.mtime.sec && st.st_mtime_nsec as i64 == i64::from(e.mtime.nsec);
    if !(mode_ok && owner_ok && time_ok) {
        fsmeta::apply_special_at(dir, name, e, ctx.is_root, false, &path.display())?;
    }
    Ok(true)
}

/// Makes a symlink, fifo, device node or socket and gives it its metadata; on failure the
/// name is removed again (unlinking never follows anything).
fn make_special(
    ctx: &Ctx<'_>,
    e: &Entry,
    dir: BorrowedFd<'_>,
    path: &Path,
) -> io::Result<(u64, u64)> {
    let name = e.name.as_slice();
    fsmeta::make_special_at(dir, name, e)?;
    let made = fsmeta::apply_special_at(dir, name, e, ctx.is_root, true, &path.display())
        .and_then(|()| fsmeta::stat_at(dir, name)?.ok_or_else(fsmeta::replaced));
    match made {
        Ok(st) => Ok((st.st_dev, st.st_ino)),
        Err(err) => {
            let _ = rfs::unlinkat(dir, name, AtFlags::empty());
            Err(err)
        }
    }
}
