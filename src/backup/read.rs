//! Reads one regular file into chunks, safely beside a live server: never blocks on a file that
//! turned into a fifo, never follows a symlink swapped in, and re-reads a file that changed while
//! being read (reporting it when it keeps changing).

use super::{chunk_ref, BackupError, Ctx, Scratch};
use crate::chunker::for_each_chunk;
use crate::model::{ChunkRef, Entry, Timestamp};
use crate::store::pack::BlobKind;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;

const ATTEMPTS: usize = 3;

/// The stat that goes with the content that was read.
pub struct Stat {
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub ino: u64,
    pub nlink: u32,
}

pub enum Outcome {
    Read {
        chunks: Vec<ChunkRef>,
        size: u64,
        /// Set when the file kept changing: its content may be torn.
        warning: Option<String>,
        stat: Option<Stat>,
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
        if let Some((size, mtime, chunks)) = ctx.links.lock().get(&entry.ino) {
            if *size == entry.size && *mtime == entry.mtime {
                return Ok(Outcome::Read {
                    chunks: chunks.clone(),
                    size: *size,
                    warning: None,
                    stat: None,
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
        let Scratch { buf, codec } = &mut *scratch;
        let read = for_each_chunk(
            &file,
            ctx.repo.store.info.chunking,
            buf,
            |data: &[u8]| -> Result<(), io::Error> {
                let r = chunk_ref(data);
                if let Err(e) = ctx.writer.add(BlobKind::Chunk, r.id.0, data, codec) {
                    write_err = Some(e.into());
                    return Err(io::Error::other("store write failed"));
                }
                ctx.progress
                    .bytes_read
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                size += data.len() as u64;
                chunks.push(r);
                Ok(())
            },
            |e| e,
        );
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
        };
        if fingerprint(&before) == fingerprint(&after) && size == before.size() {
            if entry.nlink > 1 {
                ctx.links
                    .lock()
                    .insert(entry.ino, (size, stat.mtime, chunks.clone()));
            }
            return Ok(Outcome::Read {
                chunks,
                size,
                warning: None,
                stat: Some(stat),
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
        }),
        None => Ok(Outcome::Unreadable(io::Error::other("not read"))),
    }
}
