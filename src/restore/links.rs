//! Hard links in a restore: which entries are names of one file ([`LinkId`]), where the first
//! restored name of each group is, linking the others to it by folder descriptors (checked by
//! inode), and the group's inode flags, set once no more names will be linked.

use crate::model::Entry;
use crate::restore::fsmeta;
use crate::restore::write::Ctx;
use rustix::fs::{self as rfs, AtFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// What makes entries of one snapshot names of one file (a hard-link group): the filesystem
/// index and inode number the backup saw ([`Entry::link_id`]); inode numbers repeat across the
/// filesystems mounted inside a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId {
    pub dev: u32,
    pub ino: u64,
}

/// The hard-link group of `e`, from what its tree entry records.
pub fn link_id(e: &Entry) -> LinkId {
    let (dev, ino) = e.link_id();
    LinkId { dev, ino }
}

/// Where the first restored name of a hard-link group is, to link the others to it, and the
/// group's inode flags: set when the whole tree is done, since no name can be linked to an
/// immutable or append-only file.
#[derive(Clone)]
pub(super) struct FirstLink {
    pub(super) dirs: Vec<Vec<u8>>,
    pub(super) name: Vec<u8>,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) flags: u32,
}

/// Links `name` in `dir` to the group's first restored name, reached again from DEST's
/// descriptor one folder at a time without following symlinks, and checks the new name is that
/// inode (the first name's folder may have been swapped meanwhile).
pub(super) fn link_to_first(
    ctx: &Ctx<'_>,
    first: &FirstLink,
    dir: BorrowedFd<'_>,
    rel: &[Vec<u8>],
    name: &[u8],
) -> io::Result<()> {
    let mut held: Option<OwnedFd> = None;
    if first.dirs != rel {
        for d in &first.dirs {
            let from = held.as_ref().map_or(ctx.root, AsFd::as_fd);
            held = Some(fsmeta::open_dir_at(from, d)?);
        }
    }
    let from = match &held {
        Some(fd) => fd.as_fd(),
        None if first.dirs == rel => dir,
        None => ctx.root,
    };
    match rfs::linkat(from, first.name.as_slice(), dir, name, AtFlags::empty()) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Err(fsmeta::replaced()),
        Err(err) => return Err(err.into()),
    }
    match fsmeta::stat_at(dir, name)? {
        Some(st) if (st.st_dev, st.st_ino) == (first.dev, first.ino) => Ok(()),
        _ => {
            let _ = rfs::unlinkat(dir, name, AtFlags::empty());
            Err(fsmeta::replaced())
        }
    }
}

/// Sets the inode flags of every hard-link group, now that no more names will be linked.
pub(super) fn link_group_flags(ctx: &mut Ctx<'_>) {
    let groups: Vec<FirstLink> = ctx
        .links
        .values()
        .filter(|f| f.flags != 0)
        .cloned()
        .collect();
    for FirstLink {
        dirs,
        name,
        dev,
        ino,
        flags,
    } in groups
    {
        let path = ctx.shown(&dirs, &name);
        let mut dir: Option<OwnedFd> = None;
        let set = dirs
            .iter()
            .try_for_each(|d| {
                let from = dir.as_ref().map_or(ctx.root, AsFd::as_fd);
                dir = Some(fsmeta::open_dir_at(from, d)?);
                Ok(())
            })
            .and_then(|()| {
                let from = dir.as_ref().map_or(ctx.root, AsFd::as_fd);
                let fd = fsmeta::open_file_at(from, &name)?;
                let st = rfs::fstat(&fd)?;
                if (st.st_dev, st.st_ino) != (dev, ino) {
                    return Err(fsmeta::replaced());
                }
                fsmeta::apply_flags(fd.as_fd(), flags, ctx.is_root, &path.display())
            });
        if let Err(err) = set {
            ctx.fail(&path, err);
        }
    }
}
