//! A regular file's restore: its chunks written under a temporary name in its folder's
//! descriptor, its metadata set on the descriptor, then a rename within that folder and a check
//! that the real name now is the inode written. Also the content comparison `--overwrite`
//! uses instead of trusting size and mtime.

use crate::id::ChunkId;
use crate::model::Entry;
use crate::restore::fsmeta;
use crate::restore::write::{entry_flags, Ctx, RestoreError, PARTIAL_PREFIX};
use rustix::fs::{self as rfs, AtFlags};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::Ordering;

/// Chunks longer than this are not read into memory to compare: such a file is rewritten.
const MAX_COMPARED_CHUNK: u32 = 64 << 20;

/// The temporary name of `name` in the same folder: fixed length, so it never exceeds NAME_MAX.
pub fn partial_name(name: &[u8]) -> String {
    let h = blake3::hash(name);
    format!("{PARTIAL_PREFIX}{}", &h.to_hex()[..16])
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `e` as `e.name` in `dir` by way of its temporary name; returns the (dev, ino) now
/// under the real name. On failure the temporary name is removed.
pub(super) fn write_then_rename(
    ctx: &mut Ctx<'_>,
    e: &Entry,
    dir: BorrowedFd<'_>,
    path: &Path,
) -> Result<(u64, u64), RestoreError> {
    let tmp = partial_name(&e.name);
    // Made and registered in one step: removed if the process is interrupted meanwhile (the
    // next run would remove it too), and never made once the interrupt's clean-up has run.
    let (fd, _registered) = crate::store::interrupt::create(|| {
        let fd = match fsmeta::create_file_at(dir, tmp.as_bytes()) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                // Left by a killed earlier run (or swapped in by someone): the name is removed,
                // whatever it is, without following it.
                rfs::unlinkat(dir, tmp.as_str(), AtFlags::empty())
                    .map_err(|err| io_err(path)(err.into()))?;
                log::info!(
                    "{}: removed the half-written copy of an earlier run",
                    path.display()
                );
                fsmeta::create_file_at(dir, tmp.as_bytes())
            }
            other => other,
        }
        .map_err(io_err(path))?;
        let d = rustix::io::dup(dir).map_err(|err| io_err(path)(err.into()))?;
        Ok::<_, RestoreError>((fd, crate::store::interrupt::Leftover::At(d, tmp.clone())))
    })?;
    fsmeta::apply_early_flags(fd.as_fd(), entry_flags(e), ctx.is_root);
    let mut f = File::from(fd);
    let written = write_data(ctx, e, &mut f, path)
        .and_then(|()| {
            fsmeta::apply_fd(f.as_fd(), e, ctx.is_root, &path.display()).map_err(io_err(path))
        })
        .and_then(|()| rename_checked(dir, &tmp, &e.name, &f).map_err(io_err(path)));
    match written {
        // A hard-linked file gets its flags once all its names are linked (see write.rs).
        Ok(id) if e.is_hardlinked() => Ok(id),
        Ok(id) => {
            fsmeta::apply_flags(f.as_fd(), entry_flags(e), ctx.is_root, &path.display())
                .map_err(io_err(path))?;
            Ok(id)
        }
        Err(err) => {
            let _ = rfs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
            Err(err)
        }
    }
}

/// Renames `tmp` to `name` in `dir` and checks that `name` then is the inode of `f`; when it is
/// not (the temporary name was swapped), whatever landed there is removed and reported.
fn rename_checked(dir: BorrowedFd<'_>, tmp: &str, name: &[u8], f: &File) -> io::Result<(u64, u64)> {
    let held = rfs::fstat(f)?;
    match rfs::renameat(dir, tmp, dir, name) {
        Ok(()) => {}
        Err(rustix::io::Errno::NOENT) => return Err(fsmeta::replaced()),
        Err(err) => return Err(err.into()),
    }
    match fsmeta::stat_at(dir, name)? {
        Some(st) if (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino) => {
            Ok((held.st_dev, held.st_ino))
        }
        Some(st) => {
            if fsmeta::kind_of(&st) != Some(crate::model::EntryKind::Dir) {
                let _ = rfs::unlinkat(dir, name, AtFlags::empty());
            }
            Err(fsmeta::replaced())
        }
        None => Err(fsmeta::replaced()),
    }
}

/// Writes a file's chunks; runs of zeros become holes so sparse files stay sparse.
fn write_data(ctx: &mut Ctx<'_>, e: &Entry, f: &mut File, path: &Path) -> Result<(), RestoreError> {
    let mut pos = 0u64;
    let mut ends_in_hole = false;
    for c in e.chunks() {
        let data = ctx.repo.read_chunk(c.id)?;
        for block in data.chunks(64 << 10) {
            ends_in_hole = block.iter().all(|&b| b == 0);
            if ends_in_hole {
                f.seek(SeekFrom::Current(block.len() as i64))
                    .map_err(io_err(path))?;
            } else {
                f.write_all(block).map_err(io_err(path))?;
            }
        }
        pos += data.len() as u64;
        if let Some(p) = &ctx.opts.progress {
            p.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
    if ends_in_hole {
        // A trailing hole is only a seek so far: give the file its length.
        f.set_len(pos).map_err(io_err(path))?;
    }
    ctx.report.bytes += pos;
    Ok(())
}

/// Whether the regular file `name` in `dir` holds exactly `e`'s content: cut at the snapshot's
/// chunk lengths, each piece must hash to the chunk's id (BLAKE3 of its plain bytes), with
/// nothing after the last.
pub(super) fn same_content(dir: BorrowedFd<'_>, name: &[u8], e: &Entry) -> io::Result<bool> {
    let mut f = File::from(fsmeta::open_file_at(dir, name)?);
    let mut buf = Vec::new();
    let mut total = 0u64;
    for c in e.chunks() {
        if c.len > MAX_COMPARED_CHUNK {
            return Ok(false);
        }
        buf.resize(c.len as usize, 0);
        match f.read_exact(&mut buf) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(err) => return Err(err),
        }
        if ChunkId::of(&buf) != c.id {
            return Ok(false);
        }
        total += u64::from(c.len);
    }
    Ok(total == e.size && f.read(&mut [0u8; 1])? == 0)
}

/// Sets `e`'s inode flags on the file an earlier run already restored under its real name
/// (`st`, found a moment ago): only on that very inode, and only when it has no other name.
pub(super) fn flags_on_existing(
    ctx: &Ctx<'_>,
    e: &Entry,
    dir: BorrowedFd<'_>,
    st: &rfs::Stat,
    path: &Path,
) -> Result<(), RestoreError> {
    let fd = fsmeta::open_file_at(dir, &e.name).map_err(io_err(path))?;
    let now = rfs::fstat(&fd).map_err(|err| io_err(path)(err.into()))?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) || now.st_nlink != 1 {
        return Err(io_err(path)(fsmeta::replaced()));
    }
    fsmeta::apply_flags(fd.as_fd(), entry_flags(e), ctx.is_root, &path.display())
        .map_err(io_err(path))
}
