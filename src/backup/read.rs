//! Reads one regular file into chunks, safely beside a live server: never blocks on a file that
//! turned into a fifo, never follows a symlink swapped in, and re-reads a file that changed while
//! being read (reporting it when it keeps changing). A file with holes (fewer blocks allocated
//! than its size needs) is read extent by extent (`SEEK_DATA`/`SEEK_HOLE`): holes are recorded as
//! zero chunks ([`crate::holes`]) without being read.

use super::{chunk_ref, BackupError, Ctx, LinkedFile, Scratch};
use crate::chunker::{for_each_chunk, ChunkParams};
use crate::model::{ChunkRef, Entry, Timestamp};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::Ordering;

const ATTEMPTS: usize = 3;

/// The stat that goes with the content that was read.
pub struct Stat {
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub ino: u64,
    pub nlink: u32,
    pub blocks: u64,
    pub flags: u32,
}

pub enum Outcome {
    Read {
        chunks: Vec<ChunkRef>,
        size: u64,
        /// Set when the file kept changing: its content may be torn.
        warning: Option<String>,
        stat: Option<Stat>,
        /// The inode flags of a hard link read under another name (`stat` is then None).
        flags: Option<u32>,
    },
    /// Gone or no longer a regular file: skipped with a warning, as if it had not been there.
    Vanished(String),
    Unreadable(io::Error),
}

fn open(path: &Path) -> io::Result<File> {
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    // O_NOATIME spares the mail server's disk an atime write per file; only the owner or root may use it.
    match OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NOATIME)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            OpenOptions::new().read(true).custom_flags(flags).open(path)
        }
        other => other,
    }
}

#[derive(PartialEq)]
struct Fingerprint {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

fn fingerprint(md: &std::fs::Metadata) -> Fingerprint {
    Fingerprint {
        size: md.size(),
        mtime: (md.mtime(), md.mtime_nsec()),
        ctime: (md.ctime(), md.ctime_nsec()),
        ino: md.ino(),
    }
}

pub(crate) fn read_file(
    ctx: &Ctx<'_>,
    path: &Path,
    entry: &Entry,
    scratch: &mut Scratch,
) -> Result<Outcome, BackupError> {
    if entry.nlink > 1 {
        if let Some(l) = ctx.links.lock().get(&entry.link_id()) {
            if l.size == entry.size && l.mtime == entry.mtime {
                return Ok(Outcome::Read {
                    chunks: l.chunks.clone(),
                    size: l.size,
                    warning: None,
                    stat: None,
                    flags: Some(l.flags),
                });
            }
        }
    }
    let mut last: Option<(Vec<ChunkRef>, u64, Stat)> = None;
    for _ in 0..ATTEMPTS {
        let file = match open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Outcome::Vanished("vanished during the backup".into()))
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Ok(Outcome::Vanished(
                    "replaced by a symlink during the backup".into(),
                ))
            }
            Err(e) => return Ok(Outcome::Unreadable(e)),
        };
        let before = match file.metadata() {
            Ok(md) if md.is_file() => md,
            Ok(_) => {
                return Ok(Outcome::Vanished(
                    "no longer a regular file during the backup".into(),
                ))
            }
            Err(e) => return Ok(Outcome::Unreadable(e)),
        };
        // The descriptor was opened non-blocking only to survive a fifo swap; regular files ignore it.
        let mut chunks = Vec::new();
        let mut size = 0u64;
        let mut write_err: Option<BackupError> = None;
        let Scratch { buf, tx } = &mut *scratch;
        let mut add = |r: ChunkRef, data: &[u8], read: bool| -> Result<(), io::Error> {
            if let Err(e) = super::pipeline::submit(&ctx.writer, &ctx.compressors, tx, r.id.0, data)
            {
                write_err = Some(e.into());
                return Err(io::Error::other("store write failed"));
            }
            if read {
                ctx.progress
                    .bytes_read
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            size += data.len() as u64;
            chunks.push(r);
            Ok(())
        };
        let params = ctx.repo.store.info.chunking;
        let read = if before.blocks().saturating_mul(512) < before.size() {
            read_sparse(&file, before.size(), params, buf, &mut add)
        } else {
            read_dense(&file, params, buf, &mut add)
        };
        if let Some(e) = write_err {
            return Err(e);
        }
        if let Err(e) = read {
            return Ok(Outcome::Unreadable(e));
        }
        let after = match file.metadata() {
            Ok(md) => md,
            Err(e) => return Ok(Outcome::Unreadable(e)),
        };
        let stat = Stat {
            mtime: Timestamp {
                sec: before.mtime(),
                nsec: before.mtime_nsec() as u32,
            },
            ctime: Timestamp {
                sec: before.ctime(),
                nsec: before.ctime_nsec() as u32,
            },
            ino: before.ino(),
            nlink: before.nlink() as u32,
            blocks: before.blocks(),
            flags: super::meta::inode_flags(&file),
        };
        if fingerprint(&before) == fingerprint(&after) && size == before.size() {
            if entry.nlink > 1 {
                ctx.links.lock().insert(
                    entry.link_id(),
                    LinkedFile {
                        size,
                        mtime: stat.mtime,
                        chunks: chunks.clone(),
                        flags: stat.flags,
                    },
                );
            }
            return Ok(Outcome::Read {
                chunks,
                size,
                warning: None,
                stat: Some(stat),
                flags: None,
            });
        }
        last = Some((chunks, size, stat));
    }
    match last {
        Some((chunks, size, stat)) => Ok(Outcome::Read {
            chunks,
            size,
            warning: Some(format!(
                "changed while being read ({ATTEMPTS} attempts); the stored copy may be inconsistent"
            )),
            stat: Some(stat),
            flags: None,
        }),
        None => Ok(Outcome::Unreadable(io::Error::other("not read"))),
    }
}

/// Where a chunk's bytes come from: read from the file, or a hole (not read).
type AddChunk<'a> = dyn FnMut(ChunkRef, &[u8], bool) -> Result<(), io::Error> + 'a;

/// Reads the whole file from its start into content-defined chunks.
fn read_dense(
    file: &File,
    params: ChunkParams,
    buf: &mut Vec<u8>,
    add: &mut AddChunk<'_>,
) -> io::Result<()> {
    for_each_chunk(
        file,
        params,
        buf,
        |data| add(chunk_ref(data), data, true),
        |e| e,
    )
}

/// Reads a file with holes: each data extent into content-defined chunks, each hole into zero
/// chunks without reading it. `size` is the file's size when opened; a file that changes
/// meanwhile is caught by the caller's before/after comparison.
fn read_sparse(
    mut file: &File,
    size: u64,
    params: ChunkParams,
    buf: &mut Vec<u8>,
    add: &mut AddChunk<'_>,
) -> io::Result<()> {
    let mut pos = 0u64;
    while pos < size {
        let data = match seek(file, pos, libc::SEEK_DATA) {
            Ok(d) => d.min(size),
            // No data after `pos`: the rest is a hole.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => size,
            // The filesystem cannot tell: read the rest.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => pos,
            Err(e) => return Err(e),
        };
        if data > pos {
            crate::holes::hole_chunks(data - pos, |c| add(c, crate::holes::zeros(&c), false))?;
        }
        if data >= size {
            break;
        }
        let hole = match seek(file, data, libc::SEEK_HOLE) {
            Ok(h) => h.clamp(data, size),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => size,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => size,
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(data))?;
        let mut got = 0u64;
        for_each_chunk(
            file.take(hole - data),
            params,
            buf,
            |d| {
                got += d.len() as u64;
                add(chunk_ref(d), d, true)
            },
            |e| e,
        )?;
        if got < hole - data {
            // Shrunk while being read: the caller sees the size change and reads again.
            return Ok(());
        }
        pos = hole;
    }
    Ok(())
}

/// `lseek` with `SEEK_DATA` or `SEEK_HOLE`, which `std` does not offer.
fn seek(file: &File, offset: u64, whence: libc::c_int) -> io::Result<u64> {
    let offset = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: lseek on a descriptor we own; no memory is passed.
    let r = unsafe { libc::lseek(file.as_raw_fd(), offset, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as u64)
    }
}
