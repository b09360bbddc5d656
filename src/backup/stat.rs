//! What the walk learns from `lstat` and the parent snapshot: whether a file or folder is the
//! parent's (so its chunks, xattrs and flags are reused), whether reused chunks are still stored,
//! and the `lstat` of a folder's names spread over the run's threads.

use super::{meta, BackupError, Ctx};
use crate::model::{Entry, EntryKind};
use crate::repo::RepoError;
use crate::store::pack::BlobKind;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// True when the parent's entry describes the same unchanged file, so its chunks can be reused.
pub(super) fn unchanged(now: &Entry, before: &Entry) -> bool {
    before.kind == EntryKind::File
        && now.size == before.size
        && now.mtime == before.mtime
        && now.ctime == before.ctime
        && now.link_id() == before.link_id()
}

/// True when a folder's own metadata is the parent's: its extended attributes and inode flags
/// (which change its ctime) are the parent's too, so they are not read again.
pub(super) fn dir_unchanged(now: &Entry, before: &Entry) -> bool {
    before.kind == EntryKind::Dir
        && now.mtime == before.mtime
        && now.ctime == before.ctime
        && now.link_id() == before.link_id()
}

/// Which of `candidates` (indexes of files taken from the parent) have every chunk still in
/// the store. After a `repair` the catalog no longer lists lost chunks: such a file is read
/// again, so the new snapshot is complete and the lost chunks are stored anew while the source
/// still has them. One catalog transaction for the whole folder.
pub(super) fn chunks_stored(
    ctx: &Ctx<'_>,
    entries: &[Entry],
    candidates: &[usize],
) -> Result<Vec<bool>, BackupError> {
    let ids: Vec<_> = candidates
        .iter()
        .flat_map(|&i| entries[i].chunks().iter().map(|c| c.id.0))
        .collect();
    let found = ctx
        .repo
        .catalog
        .has_blobs(BlobKind::Chunk, &ids)
        .map_err(RepoError::from)?;
    let mut found = found.into_iter();
    Ok(candidates
        .iter()
        .map(|&i| {
            let n = entries[i].chunks().len();
            // Counts rather than `all`, which would stop early and misalign the rest.
            found.by_ref().take(n).filter(|f| !f).count() == 0
        })
        .collect())
}

/// `lstat` of every name of a folder, spread over the run's threads when the folder is big
/// enough to pay for them (a cold inode is a disk read; a warm one a few microseconds).
pub(super) fn lstat_all(
    ctx: &Ctx<'_>,
    dir: Option<&std::os::fd::OwnedFd>,
    abs: &Path,
    names: &[Vec<u8>],
) -> Vec<std::io::Result<meta::Lstat>> {
    let stat = |name: &Vec<u8>| match dir {
        Some(fd) => meta::Lstat::at(fd, name),
        None => meta::Lstat::of(&abs.join(std::ffi::OsStr::from_bytes(name))),
    };
    let threads = ctx.threads.min(names.len() / LSTAT_PER_THREAD).max(1);
    if threads == 1 {
        return names.iter().map(stat).collect();
    }
    let per = names.len().div_ceil(threads);
    let stat = &stat;
    std::thread::scope(|s| {
        let parts: Vec<_> = names
            .chunks(per)
            .map(|part| {
                (
                    part.len(),
                    s.spawn(move || part.iter().map(stat).collect::<Vec<_>>()),
                )
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|(n, h)| {
                h.join().unwrap_or_else(|_| {
                    (0..n)
                        .map(|_| Err(std::io::Error::other("lstat thread failed")))
                        .collect()
                })
            })
            .collect()
    })
}

/// Below this many names per thread a folder is stat'ed on the walking thread alone.
const LSTAT_PER_THREAD: usize = 64;
/// Names stat'ed at once (spread over the threads).
pub(super) const LSTAT_BATCH: usize = 4096;
