//! What an in-place restore takes away. The live folder is removed first and replaced by the
//! snapshot's (never merged), so whatever is in the live folder and not in the snapshot is
//! gone afterwards: mail received since the snapshot's date, folders made since (an earlier
//! `Restored-<date>` folder among them). Front ends name it in their confirmation, counted,
//! before anything is removed.

use super::ls::{ls, LsError};
use crate::model::Snapshot;
use crate::repo::Repository;
use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Folders shown by name in a confirmation; more are counted.
const MAX_NAMED: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum LossError {
    #[error(transparent)]
    Ls(#[from] LsError),
    #[error("cannot read the live folder {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The live data an in-place restore would drop.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Loss {
    /// Files in the live folder that the snapshot does not have (mail newer than its date).
    pub files: u64,
    /// Top-most live folders the snapshot does not have, relative to the live folder.
    pub folders: Vec<String>,
    /// Files inside those folders (counted in `files` too).
    pub files_in_folders: u64,
    /// Folders past [`MAX_NAMED`], counted only.
    pub more_folders: u64,
}

impl Loss {
    pub fn is_empty(&self) -> bool {
        self.files == 0 && self.folders.is_empty() && self.more_folders == 0
    }

    /// One line for a confirmation: "12 messages newer than the snapshot, 2 folders
    /// (Restored-2026-11-30_020000, Archives/2026)".
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return "nothing that the snapshot lacks".to_string();
        }
        let mut parts = Vec::new();
        let loose = self.files - self.files_in_folders;
        if loose > 0 {
            parts.push(format!(
                "{loose} file{} newer than the snapshot (mail received since)",
                if loose == 1 { "" } else { "s" }
            ));
        }
        let n = self.folders.len() as u64 + self.more_folders;
        if n > 0 {
            let mut names = self.folders.join(", ");
            if self.more_folders > 0 {
                names.push_str(&format!(" and {} more", self.more_folders));
            }
            parts.push(format!(
                "{n} folder{} the snapshot does not have ({names}), {} file{} in them",
                if n == 1 { "" } else { "s" },
                self.files_in_folders,
                if self.files_in_folders == 1 { "" } else { "s" }
            ));
        }
        parts.join("; ")
    }
}

/// What replacing `live` by `path` of `snap` would drop. A missing live folder drops nothing.
pub fn what_goes(
    repo: &Repository,
    snap: &Snapshot,
    path: &[u8],
    live: &Path,
) -> Result<Loss, LossError> {
    let mut loss = Loss::default();
    if std::fs::symlink_metadata(live).is_err() {
        return Ok(loss);
    }
    let kept: HashSet<Vec<u8>> = ls(repo, snap, path, true)?
        .into_iter()
        .map(|l| l.path)
        .collect();
    walk(live, &mut Vec::new(), &kept, &mut loss)?;
    Ok(loss)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LossError + '_ {
    move |source| LossError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn walk(
    dir: &Path,
    rel: &mut Vec<u8>,
    kept: &HashSet<Vec<u8>>,
    loss: &mut Loss,
) -> Result<(), LossError> {
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let len = rel.len();
        if len > 0 {
            rel.push(b'/');
        }
        rel.extend_from_slice(e.file_name().as_bytes());
        let is_dir = e.file_type().map_err(io(dir))?.is_dir();
        if kept.contains(rel.as_slice()) {
            if is_dir {
                walk(&e.path(), rel, kept, loss)?;
            }
        } else if is_dir {
            let inside = count_files(&e.path())?;
            loss.files += inside;
            loss.files_in_folders += inside;
            if loss.folders.len() < MAX_NAMED {
                loss.folders.push(String::from_utf8_lossy(rel).into_owned());
            } else {
                loss.more_folders += 1;
            }
        } else {
            loss.files += 1;
        }
        rel.truncate(len);
    }
    Ok(())
}

fn count_files(dir: &Path) -> Result<u64, LossError> {
    let mut n = 0;
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        if e.file_type().map_err(io(dir))?.is_dir() {
            n += count_files(&e.path())?;
        } else {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_counts_what_goes() {
        let l = Loss {
            files: 5,
            folders: vec!["Restored-x".into()],
            files_in_folders: 3,
            more_folders: 0,
        };
        assert_eq!(
            l.describe(),
            "2 files newer than the snapshot (mail received since); 1 folder the snapshot does not have (Restored-x), 3 files in them"
        );
        assert_eq!(
            Loss::default().describe(),
            "nothing that the snapshot lacks"
        );
    }
}
