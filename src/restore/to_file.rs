//! Restoring one file of a snapshot under a name of the admin's choosing (`restore --to-file`):
//! the file is restored by [`super::restore`] into a private folder beside the target, then
//! renamed onto it, so the target appears whole or not at all.

use super::ls::{components, lookup, node_at, Node};
use super::{restore, RestoreError, RestoreOptions, RestoreReport};
use crate::model::Snapshot;
use crate::repo::Repository;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Restores the file at `path` of `snap` as `target` (not into it). A folder at `path`, or a
/// `target` that exists (without `overwrite`) or is a folder, is refused.
pub fn restore_to_file(
    repo: &Repository,
    snap: &Snapshot,
    path: &[u8],
    target: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let shown = String::from_utf8_lossy(path).into_owned();
    let comps = components(path);
    let entry = match node_at(&mut |id, n| lookup(repo, id, n), snap.root, &comps)? {
        Some(Node::Entry(e)) if e.subtree().is_none() => e,
        Some(_) => {
            return Err(RestoreError::Usage(format!(
                "{shown:?} is a folder in snapshot {}; --to-file takes a file (restore a folder into DEST without it)",
                snap.id.short()
            )))
        }
        None => {
            return Err(RestoreError::Usage(format!(
                "{shown} is not in snapshot {}",
                snap.id.short()
            )))
        }
    };
    match std::fs::symlink_metadata(target) {
        Ok(md) if md.is_dir() => {
            return Err(RestoreError::Usage(format!(
                "{} is a folder; --to-file names the file to create (or restore into the folder without --to-file)",
                target.display()
            )))
        }
        Ok(_) if !opts.overwrite => {
            return Err(RestoreError::Usage(format!(
                "{} already exists (use --overwrite to replace it)",
                target.display()
            )))
        }
        _ => {}
    }
    if opts.dry_run {
        return Ok(RestoreReport {
            planned: vec![target.display().to_string()],
            ..RestoreReport::default()
        });
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| RestoreError::Io { path, source }
    };
    let scratch = parent.join(format!(
        ".bmbackup-restore-{}-{}",
        std::process::id(),
        crate::store::now_ns()
    ));
    std::fs::create_dir(&scratch).map_err(io(&scratch))?;
    let result = restore(repo, snap, path, &scratch, opts).and_then(|report| {
        if report.failed.is_empty() {
            let written = scratch.join(std::ffi::OsStr::from_bytes(&entry.name));
            std::fs::rename(&written, target).map_err(io(target))?;
        }
        Ok(report)
    });
    // Best effort: on failure the scratch folder holds what was written, named in the report.
    let _ = std::fs::remove_dir(&scratch);
    result
}
