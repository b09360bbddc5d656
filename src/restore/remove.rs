//! Removing what is in a restore's way (`restore-user --in-place` empties the live folder
//! first) by descriptors, as the restore writes: the folder is opened as DEST is, and nothing
//! below it is followed through a symlink.

use crate::model::EntryKind;
use crate::restore::write::{io_error, RestoreError};
use crate::restore::{dest, fsmeta};
use rustix::fs::{self as rfs, AtFlags};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Removes the files (not the subfolders) of the folder `path`, by descriptors as
/// [`remove_tree`] does; a missing folder is no error.
pub fn remove_files(path: &Path) -> Result<(), RestoreError> {
    let dir = match dest::open_dest(path, false) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path)(e)),
    };
    let mut names = Vec::new();
    for ent in rfs::Dir::read_from(&dir).map_err(|e| io_error(path)(e.into()))? {
        let ent = ent.map_err(|e| io_error(path)(e.into()))?;
        if ent.file_type() != rfs::FileType::Directory {
            names.push(ent.file_name().to_bytes().to_vec());
        }
    }
    for n in names {
        match fsmeta::stat_at(dir.as_fd(), &n) {
            Ok(Some(st)) if fsmeta::kind_of(&st) == Some(EntryKind::Dir) => {}
            _ => rfs::unlinkat(&dir, n.as_slice(), AtFlags::empty())
                .or_else(|e| {
                    if e == rustix::io::Errno::NOENT {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| io_error(path)(e.into()))?,
        }
    }
    Ok(())
}

/// Removes `path` and everything below it without following a symlink anywhere: its parent is
/// opened as DEST is ([`dest::open_dest`]) and the rest walked by descriptors. A missing path is
/// no error.
pub fn remove_tree(path: &Path) -> Result<(), RestoreError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(RestoreError::Usage(format!(
            "{}: not a folder that can be removed",
            path.display()
        )));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let dir = match dest::open_dest(parent, false) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path)(e)),
    };
    fsmeta::remove_at(dir.as_fd(), name.as_bytes()).map_err(io_error(path))
}
