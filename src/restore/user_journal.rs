//! Resuming an interrupted `restore-user`: before writing, the CLI records the plan's
//! destinations and new Cyrus mailboxes (names, unique ids, folders) in a small journal in its
//! work folder; a rerun of the same restore (same snapshots) finds it, continues into the same
//! folders with the same unique ids instead of refusing them as "not empty", and the journal
//! is removed once every item is done. A destination left by an earlier *finished* restore has
//! no journal and is still refused.

use super::cyrus_folder::NewFolder;
use super::user::Plan;
use super::user_id::User;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    /// The snapshots the restore reads (full ids).
    pub snapshots: Vec<String>,
    pub dests: Vec<PathBuf>,
    /// New mailboxes: (legacy name, unique id, folder).
    pub folders: Vec<(String, String, PathBuf)>,
}

impl Journal {
    pub fn of(plan: &Plan) -> Journal {
        let mut j = Journal::default();
        for it in &plan.items {
            let id = it.snapshot.id.to_string();
            if !j.snapshots.contains(&id) {
                j.snapshots.push(id);
            }
            j.dests.push(it.dest.clone());
            if let Some(nf) = &it.new_folder {
                j.folders
                    .push((nf.name.legacy(), nf.uniqueid.clone(), nf.dest.clone()));
            }
        }
        j
    }

    /// Whether this journal is about a restore from `snapshot` (full id).
    pub fn covers(&self, snapshot: &str) -> bool {
        self.snapshots.iter().any(|s| s == snapshot)
    }

    pub fn has_dest(&self, dest: &Path) -> bool {
        self.dests.iter().any(|d| d == dest)
    }

    /// Gives the new mailboxes the unique ids and folders the interrupted run used.
    pub fn apply(&self, folders: &mut [NewFolder]) {
        for nf in folders {
            if let Some((_, id, dest)) = self.folders.iter().find(|f| f.0 == nf.name.legacy()) {
                nf.uniqueid = id.clone();
                nf.dest = dest.clone();
            }
        }
    }
}

/// Where `user`'s journal lives in the work folder.
pub fn path(work: &Path, user: &User) -> PathBuf {
    let name: String = user
        .to_string()
        .chars()
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    work.join(format!(
        "{}{name}.journal.json",
        if user.shared { "shared-" } else { "" }
    ))
}

/// The journal of an interrupted run, if any (an unreadable one is ignored).
pub fn load(work: &Path, user: &User) -> Option<Journal> {
    let text = std::fs::read(path(work, user)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes the journal (private to root: temp file, fsync, rename).
pub fn save(work: &Path, user: &User, j: &Journal) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(work)?;
    let p = path(work, user);
    let tmp = p.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    std::io::Write::write_all(&mut f, &serde_json::to_vec(j).unwrap_or_default())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &p)
}

pub fn remove(work: &Path, user: &User) {
    let _ = std::fs::remove_file(path(work, user));
}
