//! The walk of one part: each folder's names sorted, `lstat`ed a batch at a time, turned into
//! entries (compared with the parent snapshot's, whose folders are read a page at a time) and
//! streamed into a [`FolderBuilder`], so the memory of a backup does not grow with its largest
//! folder; a folder equal to the parent's keeps the parent's tree id without being encoded.

use super::{meta, pipeline, stat, BackupError, Ctx};
use crate::id::TreeId;
use crate::model::{Content, Entry, EntryKind, Tree};
use crate::pages::FolderBuilder;
use crate::repo::folder::{Cursor, Folder};
use crate::repo::RepoError;
use crate::store::pack::BlobKind;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

/// Backs up one folder and returns its tree id. `parent` is the same folder in the parent
/// snapshot (its top blob; pages are read one at a time through a [`Cursor`] as the sorted
/// names reach them). Names are `lstat`ed and turned into entries a batch of
/// [`stat::LSTAT_BATCH`] at a time, and each batch goes into a [`FolderBuilder`] that writes
/// full pages as it goes, so a folder of a million entries holds its names and one batch, never
/// every entry (nor the parent's). While every entry equals the parent's, nothing is encoded
/// ([`Out`]): when the folder comes out equal, the parent's tree id is reused.
pub(super) fn backup_dir(
    ctx: &Ctx<'_>,
    jobs: &mpsc::Sender<pipeline::Job>,
    abs: &Path,
    rel: &Path,
    parent: Option<Folder>,
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
    let mut out = Out::new(parent.as_ref().map(|f| (f.id, f.len())));
    let mut cursor = parent.map(|f| Cursor::new(ctx.repo, f));
    let dir = meta::open_dir(abs).ok();
    for (b, batch) in names.chunks(stat::LSTAT_BATCH).enumerate() {
        let first = b * stat::LSTAT_BATCH;
        let stats = stat::lstat_all(ctx, dir.as_ref(), abs, batch);
        let mut entries: Vec<Entry> = Vec::with_capacity(batch.len());
        // Beside each entry: its name's index and the parent's entry of that name.
        let mut origin: Vec<(usize, Option<Entry>)> = Vec::with_capacity(batch.len());
        let mut to_read: Vec<usize> = Vec::new();
        // Files whose stat is the parent's: reused once their chunks are known to be stored.
        let mut reused: Vec<usize> = Vec::new();
        for (j, (name, md)) in batch.iter().zip(stats).enumerate() {
            let os_name = std::ffi::OsStr::from_bytes(name);
            let path = abs.join(os_name);
            let rel_path = rel.join(os_name);
            let md = match md {
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
            let Some(mut entry) = meta::entry_from_metadata(name, &md) else {
                ctx.problem(&rel_path, "unknown file type".into());
                continue;
            };
            entry.dev = ctx.dev_index(md.dev);
            let before = match cursor.as_mut().map(|c| c.find(name)) {
                None => None,
                Some(Ok(b)) => b.cloned(),
                Some(Err(e)) => {
                    // As an unreadable parent folder: the rest is read and compared with nothing.
                    log::warn!(
                        "{}: parent snapshot's folder unreadable, reading the rest: {e}",
                        rel.display()
                    );
                    cursor = None;
                    None
                }
            };
            if let Some(b) = before.as_ref().filter(|b| stat::unchanged(&entry, b)) {
                entry.xattrs = b.xattrs.clone();
                entry.content = b.content.clone();
                // `chattr` changes ctime, so an unchanged file has its parent's flags; a parent
                // recorded before format 1.2 (no `blocks`) did not record them.
                entry.flags = match b.blocks {
                    Some(_) => b.flags,
                    None => meta::path_flags(&path),
                };
                reused.push(entries.len());
                entries.push(entry);
                origin.push((first + j, before));
                continue;
            }
            let same_dir = before.as_ref().filter(|b| stat::dir_unchanged(&entry, b));
            match same_dir {
                Some(b) => entry.xattrs = b.xattrs.clone(),
                None => match meta::read_xattrs(&path) {
                    Ok(x) => entry.xattrs = x,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        log::warn!(
                            "{}: vanished during the backup, skipped",
                            rel_path.display()
                        );
                        continue;
                    }
                    Err(e) => {
                        log::warn!("{}: extended attributes not read: {e}", rel_path.display())
                    }
                },
            }
            match entry.kind {
                EntryKind::Symlink => match std::fs::read_link(&path) {
                    Ok(t) => entry.target = t.as_os_str().as_bytes().to_vec(),
                    Err(e) => {
                        ctx.problem(&rel_path, format!("cannot read symlink: {e}"));
                        continue;
                    }
                },
                EntryKind::File => {
                    log_read(&rel_path, before.is_some());
                    to_read.push(entries.len());
                }
                EntryKind::Dir => {
                    entry.flags = match same_dir {
                        Some(b) => b.flags,
                        None => meta::path_flags(&path),
                    };
                    let sub = if ctx.one_file_system && md.dev != ctx.root_dev {
                        log::info!(
                            "{}: another filesystem, recorded as an empty folder (--one-file-system)",
                            rel_path.display()
                        );
                        ctx.progress.dirs.fetch_add(1, Ordering::Relaxed);
                        write_tree(ctx, Tree::default())?
                    } else {
                        let sub_parent = before
                            .as_ref()
                            .and_then(Entry::subtree)
                            .and_then(|t| ctx.repo.read_folder(t).ok());
                        backup_dir(ctx, jobs, &path, &rel_path, sub_parent)?
                    };
                    entry.content = Content::Tree(sub);
                }
                _ => {}
            }
            entries.push(entry);
            origin.push((first + j, before));
        }
        let stored = stat::chunks_stored(ctx, &entries, &reused)?;
        for (&i, stored) in reused.iter().zip(stored) {
            let entry = &mut entries[i];
            if stored {
                ctx.progress.files.fetch_add(1, Ordering::Relaxed);
                ctx.progress.bytes.fetch_add(entry.size, Ordering::Relaxed);
                ctx.progress
                    .bytes_unchanged
                    .fetch_add(entry.size, Ordering::Relaxed);
                continue;
            }
            // A chunk is gone from the store (see `chunks_stored`): read the file again.
            let rel_path = rel.join(std::ffi::OsStr::from_bytes(&entry.name));
            entry.content = Content::None;
            match meta::read_xattrs(&abs.join(std::ffi::OsStr::from_bytes(&entry.name))) {
                Ok(x) => entry.xattrs = x,
                Err(e) => log::warn!("{}: extended attributes not read: {e}", rel_path.display()),
            }
            log_read(&rel_path, true);
            to_read.push(i);
        }
        let skipped = pipeline::read_files(ctx, jobs, abs, rel, &mut entries, &to_read)?;
        let mut keep = vec![true; entries.len()];
        for i in skipped {
            keep[i] = false;
        }
        ctx.progress
            .note_held(entries.len() + out.builder.buffered());
        for ((entry, (idx, before)), keep) in entries.into_iter().zip(origin).zip(keep) {
            if keep {
                ctx.note_xattrs(std::slice::from_ref(&entry));
                out.push(ctx, &names, entry, before.as_ref(), idx)?;
            }
        }
    }
    out.finish(ctx, &names)
}

/// A folder's entries on their way to its tree. While each entry equals the parent's entry of
/// the same name, only its name's index is kept: if the folder ends with as many entries as the
/// parent, it is the parent's folder and its tree id is reused without encoding anything (a
/// no-change run of a million-entry folder writes and hashes no tree). At the first difference
/// the entries kept back are taken again from the parent, a page at a time, and everything goes
/// into the builder from there on.
struct Out {
    builder: FolderBuilder,
    /// The parent folder's id and entry count, while every entry so far equals the parent's.
    same: Option<(TreeId, u64)>,
    /// Indexes (in the sorted names) of the entries kept back while `same`.
    held_back: Vec<u32>,
}

impl Out {
    fn new(parent: Option<(TreeId, u64)>) -> Self {
        Out {
            builder: FolderBuilder::new(),
            same: parent,
            held_back: Vec::new(),
        }
    }

    fn push(
        &mut self,
        ctx: &Ctx<'_>,
        names: &[Vec<u8>],
        entry: Entry,
        before: Option<&Entry>,
        idx: usize,
    ) -> Result<(), BackupError> {
        if self.same.is_some() {
            if before == Some(&entry) {
                self.held_back.push(idx as u32);
                return Ok(());
            }
            self.diverge(ctx, names)?;
        }
        self.builder.push(entry, &mut |b| emit_tree(ctx, b))
    }

    /// Pushes the entries kept back (the parent's, equal to this run's) into the builder.
    fn diverge(&mut self, ctx: &Ctx<'_>, names: &[Vec<u8>]) -> Result<(), BackupError> {
        let Some((id, _)) = self.same.take() else {
            return Ok(());
        };
        let held = std::mem::take(&mut self.held_back);
        if held.is_empty() {
            return Ok(());
        }
        let mut parent = Cursor::new(ctx.repo, ctx.repo.read_folder(id)?);
        for i in held {
            let name = &names[i as usize];
            let Some(e) = parent.find(name)?.cloned() else {
                return Err(RepoError::BadTree {
                    id,
                    path: ctx.repo.store.root().display().to_string(),
                    detail: format!(
                        "entry {:?} found once and then not (run `bmbackup check`)",
                        String::from_utf8_lossy(name)
                    ),
                }
                .into());
            };
            self.builder.push(e, &mut |b| emit_tree(ctx, b))?;
        }
        Ok(())
    }

    fn finish(mut self, ctx: &Ctx<'_>, names: &[Vec<u8>]) -> Result<TreeId, BackupError> {
        if let Some((id, count)) = self.same {
            // Every entry equals the parent's entry of its name, and names are unique: with as
            // many entries, the folders are equal and encode to the same bytes, hence the same
            // id; the parent's tree was just read from the catalog, so it is stored.
            if self.held_back.len() as u64 == count {
                return Ok(id);
            }
            self.diverge(ctx, names)?;
        }
        self.builder.finish(&mut |b| emit_tree(ctx, b))
    }
}

/// `-v`: each file read, as borg's --list (A added, M changed).
fn log_read(rel_path: &Path, changed: bool) {
    log::info!(
        target: "bmbackup::list",
        "{} {}",
        if changed { 'M' } else { 'A' },
        rel_path.display()
    );
}

/// Stores one encoded tree blob (a folder, a page or a tree index) and returns its id.
fn emit_tree(ctx: &Ctx<'_>, bytes: Vec<u8>) -> Result<TreeId, BackupError> {
    let id = TreeId::of(&bytes);
    ctx.writer
        .add(BlobKind::Tree, id.0, &bytes, &mut ctx.tree_codec.lock())?;
    Ok(id)
}

/// Writes a folder held whole (entries sorted; small ones only): one tree blob, or pages and a
/// tree index when it has more than `pages::PAGE_MAX` entries (format 1.3).
fn write_tree(ctx: &Ctx<'_>, tree: Tree) -> Result<TreeId, BackupError> {
    let mut folder = FolderBuilder::new();
    for e in tree.entries {
        folder.push(e, &mut |b| emit_tree(ctx, b))?;
    }
    folder.finish(&mut |b| emit_tree(ctx, b))
}

#[cfg(test)]
mod tests;
