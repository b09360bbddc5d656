//! `backup --dry-run`: what a backup of a part would read, without writing anything: the files
//! the parent snapshot lacks or whose size, mtime, ctime or inode differ from its entry (the
//! backup's own comparison, [`super::stat::unchanged`]), with their sizes. Hooks are not run
//! and nothing is locked: the source is only listed and `lstat`ed.

use super::meta::{entry_from_metadata, Lstat};
use super::{BackupError, PartSpec};
use crate::model::{EntryKind, Snapshot};
use crate::repo::Repository;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// One file a backup would read.
pub struct ToRead {
    /// Relative to the part's folder.
    pub path: PathBuf,
    pub size: u64,
    /// Not in the parent snapshot at all (else changed).
    pub new: bool,
}

/// What a backup of one part would do.
#[derive(Default)]
pub struct DryRun {
    /// Regular files in the source, and their bytes.
    pub files: u64,
    pub bytes: u64,
    pub to_read: Vec<ToRead>,
    pub bytes_to_read: u64,
}

/// Lists what a backup of `part` by `host` would read, against that part's newest snapshot.
pub fn dry_run(
    repo: &Repository,
    host: &str,
    part: &PartSpec,
    one_file_system: bool,
) -> Result<DryRun, BackupError> {
    let source_err = |path: &std::path::Path, source| BackupError::Source {
        part: part.name.clone(),
        path: path.display().to_string(),
        source,
    };
    let root_md = Lstat::of(&part.path).map_err(|e| source_err(&part.path, e))?;
    let parent: Option<Snapshot> = repo
        .snapshots()?
        .into_iter()
        .filter(|s| s.manifest.host == host && s.manifest.part == part.name)
        .max_by_key(|s| s.manifest.started_ns);
    let mut out = DryRun::default();
    // (folder's relative path, the parent's tree of it)
    let mut stack = vec![(PathBuf::new(), parent.map(|p| p.root))];
    while let Some((rel, tree)) = stack.pop() {
        let dir = part.path.join(&rel);
        let folder = match tree {
            Some(t) => repo.read_folder(t).ok(),
            None => None,
        };
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| source_err(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            // Vanished or unreadable meanwhile: the backup would say so; a plan just skips it.
            let Ok(md) = Lstat::of(&path) else { continue };
            let Some(entry) = entry_from_metadata(name.as_bytes(), &md) else {
                continue;
            };
            let before = match &folder {
                Some(f) => f.lookup(repo, name.as_bytes())?,
                None => None,
            };
            match entry.kind {
                EntryKind::File => {
                    out.files += 1;
                    out.bytes += entry.size;
                    if !before
                        .as_ref()
                        .is_some_and(|b| super::stat::unchanged(&entry, b))
                    {
                        out.bytes_to_read += entry.size;
                        out.to_read.push(ToRead {
                            path: rel.join(&name),
                            size: entry.size,
                            new: before.is_none(),
                        });
                    }
                }
                EntryKind::Dir if !(one_file_system && md.dev != root_md.dev) => {
                    stack.push((rel.join(&name), before.and_then(|b| b.subtree())));
                }
                _ => {}
            }
        }
    }
    out.to_read.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
