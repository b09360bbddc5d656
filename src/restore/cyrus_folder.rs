//! Putting a mailbox tree found by [`super::mailboxes`] back as a new folder that Cyrus accepts,
//! beside the live mail (`user.alice.Restored-<date>` with the old folders below it).
//!
//! Each old folder becomes a new mailbox: its message files, `cyrus.index` and `cyrus.cache`
//! (which hold the flags) are restored into the new mailbox's folder, computed with the same
//! layout rule as the live ones (legacy: below the user's folder; uuid: `uuid/x/y/<new id>`), and
//! a new `cyrus.header` is written with the new name and a fresh unique id (keeping the ACL and
//! user-flag names). A mailbox-list file lists the new mailboxes for `ctl_mboxlist -u`; then
//! `reconstruct` rebuilds them and gives them a new UIDVALIDITY. The live mailboxes are not
//! touched, so no UID is reused and clients see a new folder.

use super::dest::{open_folder, NewFolders};
use super::fsmeta::write_new_file_at;
use super::mailboxes::{entry_at, read_file, Folder, Located};
use super::{restore, RestoreOptions, RestoreReport};
use crate::cyrus::header::Header;
use crate::cyrus::layout;
use crate::cyrus::name::MboxName;
use crate::cyrus::ImapdConf;
use crate::model::Snapshot;
use crate::repo::Repository;
use crate::restore::glob::Glob;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Files of a mailbox folder never copied into the new one: its identity (`cyrus.header`, which
/// is written new) and databases keyed by the old mailbox.
const NOT_COPIED: &[&str] = &[
    "cyrus.header",
    "cyrus.annotations",
    "cyrus.squat",
    "cyrus.expunge",
    "cyrus.*.NEW",
];

/// One new mailbox.
#[derive(Clone, Debug)]
pub struct NewFolder {
    pub src: Folder,
    pub name: MboxName,
    pub uniqueid: String,
    /// Where its files go on the live server.
    pub dest: PathBuf,
    pub legacy: bool,
}

/// The new mailbox tree of one restore.
#[derive(Clone, Debug)]
pub struct NewTree {
    pub root: MboxName,
    pub folders: Vec<NewFolder>,
}

/// Plans `<root>.<label>` with one new mailbox per found folder. `source` is the spool part's
/// folder on this server; `conf` gives the partitions' folders when they differ.
pub fn plan(loc: &Located, source: &Path, conf: Option<&ImapdConf>, label: &str) -> NewTree {
    let root = loc.root.child(label);
    let legacy = loc.folders.first().is_none_or(|f| f.legacy);
    let folders = loc
        .folders
        .iter()
        .map(|f| {
            let name = f.name.rebase(&loc.root, &root);
            let uniqueid = layout::new_uniqueid(name.legacy().as_bytes());
            let partition = conf
                .and_then(|c| c.partition(&f.partition))
                .unwrap_or_else(|| source.join(&f.partition_prefix));
            let rel = if legacy {
                layout::legacy_path(&name, loc.hashing)
            } else {
                layout::uuid_path(&uniqueid)
            };
            NewFolder {
                src: f.clone(),
                dest: partition.join(rel),
                name,
                uniqueid,
                legacy,
            }
        })
        .collect();
    NewTree { root, folders }
}

/// The exclusions for a folder restored into a new mailbox; without a header to keep the
/// index's user flags meaningful, the index is left out too (reconstruct makes a new one).
pub fn exclusions(has_header: bool) -> Vec<Glob> {
    let mut v: Vec<Glob> = NOT_COPIED.iter().map(|g| Glob::new(g)).collect();
    if !has_header {
        v.extend([Glob::new("cyrus.index"), Glob::new("cyrus.cache")]);
    }
    v
}

/// Restores one new mailbox: files, then its new `cyrus.header`. Returns the report and the
/// ACL the mailbox gets.
pub fn write(
    repo: &Repository,
    snap: &Snapshot,
    nf: &NewFolder,
    opts: &RestoreOptions,
) -> Result<(RestoreReport, Vec<(String, String)>), String> {
    let ctx = |e: &dyn std::fmt::Display| format!("{}: {e}", nf.dest.display());
    let folder = entry_at(repo, snap, &nf.src.path)
        .map_err(|e| ctx(&e))?
        .ok_or_else(|| format!("{} is not in snapshot {}", nf.src.path, snap.id.short()))?;
    let header = match entry_at(repo, snap, &format!("{}/cyrus.header", nf.src.path))
        .map_err(|e| ctx(&e))?
    {
        Some(e) => Header::parse(&read_file(repo, &e).map_err(|e| ctx(&e))?).ok(),
        None => None,
    };
    let owner = (folder.uid, folder.gid);
    if let (Some(parent), false) = (nf.dest.parent(), opts.dry_run) {
        // The missing folders above it get the mailbox folder's owner and mode, as Cyrus would
        // have given them (a root-owned `uuid/x/y/` would stop Cyrus from creating siblings
        // there), set on their descriptors as the restore does (see restore::dest).
        let new = NewFolders {
            mode: folder.mode,
            owner: Some(owner),
        };
        open_folder(parent, Some(new)).map_err(|e| ctx(&e))?;
    }
    let report = restore(
        repo,
        snap,
        nf.src.path.as_bytes(),
        &nf.dest,
        &RestoreOptions {
            exclude: exclusions(header.is_some()),
            files_only: true,
            folder_metadata: true,
            ..opts.clone()
        },
    )
    .map_err(|e| ctx(&e))?;
    let acl = match header.as_ref().map(Header::acl) {
        Some(a) if !a.is_empty() => a,
        _ if !nf.src.acl.is_empty() => nf.src.acl.clone(),
        _ => owner_acl(&nf.name),
    };
    let mbtype = header
        .as_ref()
        .and_then(Header::mbtype)
        .map(|t| t.replace('l', ""))
        .unwrap_or_else(|| "e".into());
    let mbtype = if nf.legacy {
        format!("{mbtype}l")
    } else {
        mbtype
    };
    let new = match &header {
        Some(h) => h.renamed(&nf.name.legacy(), &nf.uniqueid),
        None => Header::fresh(&nf.name.legacy(), &nf.uniqueid, &mbtype, &acl),
    };
    if !opts.dry_run {
        // A new file (never over an existing one, never through a symlink) owned like the
        // mailbox, 0600, written and chowned on its descriptor in the folder just restored.
        let path = nf.dest.join("cyrus.header");
        open_folder(&nf.dest, None)
            .and_then(|dir| {
                match write_new_file_at(
                    dir.as_fd(),
                    b"cyrus.header",
                    &new.encode(),
                    0o600,
                    Some(owner),
                ) {
                    // Written by the interrupted run this one resumes (same name and id).
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let fd = super::fsmeta::open_file_at(dir.as_fd(), b"cyrus.header")?;
                        let mut had = Vec::new();
                        std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut had)?;
                        if had == new.encode() {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    }
                    r => r,
                }
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok((report, acl))
}

/// Full rights for the mailbox's owner, when the backup had no ACL for it.
fn owner_acl(name: &MboxName) -> Vec<(String, String)> {
    match name.user() {
        Some(u) => vec![(u, "lrswipkxtecdan".into())],
        None => vec![("anyone".into(), "lrs".into())],
    }
}

/// The `ctl_mboxlist -u` input (Cyrus 3.6 JSON) creating the new mailboxes.
pub fn mboxlist_json(folders: &[(NewFolder, Vec<(String, String)>)], uidvalidity: u64) -> String {
    let mut map = serde_json::Map::new();
    for (nf, acl) in folders {
        let acl: serde_json::Map<String, serde_json::Value> = acl
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        map.insert(
            nf.name.legacy(),
            serde_json::json!({
                "name": nf.name.legacy(),
                "mbtype": mbtype_of(nf),
                "partition": nf.src.partition,
                "acl": acl,
                "uniqueid": nf.uniqueid,
                "uidvalidity": uidvalidity.to_string(),
                "createdmodseq": "1",
                "foldermodseq": "1",
            }),
        );
    }
    let mut out = String::from("{\n");
    let n = map.len();
    for (i, (k, v)) in map.iter().enumerate() {
        out.push_str(&format!(
            "{}: {}{}\n",
            serde_json::Value::String(k.clone()),
            v,
            if i + 1 < n { "," } else { "" }
        ));
    }
    out.push_str("}\n");
    out
}

/// The type a new mailbox is registered with: the kind its old one had (mail unless the
/// mailbox list said otherwise), with `l` when its files sit in a folder named after it.
fn mbtype_of(nf: &NewFolder) -> String {
    let kind = crate::cyrus::mboxlist::Kind::of(&nf.src.mbtype).letter();
    if nf.legacy {
        format!("{kind}l")
    } else {
        kind.to_string()
    }
}

/// Writes the mailbox-list file for the operator's next step (private to root).
pub fn write_mboxlist_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_new_names_and_folders() {
        let root = MboxName::from_legacy("ex.org!user.dan").unwrap();
        let f = |n: &str, p: &str, legacy: bool| Folder {
            name: MboxName::from_legacy(n).unwrap(),
            path: p.into(),
            legacy,
            partition: "default".into(),
            partition_prefix: String::new(),
            acl: vec![],
            mbtype: "e".into(),
        };
        let loc = Located {
            root: root.clone(),
            folders: vec![
                f("ex.org!user.dan", "domain/e/ex.org/d/user/dan", true),
                f(
                    "ex.org!user.dan.Work",
                    "domain/e/ex.org/d/user/dan/Work",
                    true,
                ),
            ],
            found: super::super::mailboxes::Found::Search,
            hashing: layout::Hashing::Letter,
            v36: true,
            notes: vec![],
        };
        let t = plan(&loc, Path::new("/spool"), None, "Restored-2026-11-30");
        assert_eq!(t.root.legacy(), "ex.org!user.dan.Restored-2026-11-30");
        assert_eq!(
            t.folders[1].dest,
            Path::new("/spool/domain/e/ex.org/d/user/dan/Restored-2026-11-30/Work")
        );
        assert_ne!(t.folders[0].uniqueid, t.folders[1].uniqueid);
        let mut uuid = loc.clone();
        uuid.folders.iter_mut().for_each(|f| f.legacy = false);
        let u = plan(&uuid, Path::new("/spool"), None, "R");
        assert!(u.folders[0].dest.starts_with("/spool/uuid"));
        let json = mboxlist_json(
            &[(
                u.folders[0].clone(),
                vec![("dan@ex.org".into(), "lrs".into())],
            )],
            7,
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["ex.org!user.dan.R"]["mbtype"], "e");
        let mut cal = u.folders[0].clone();
        cal.src.mbtype = "c".into();
        cal.legacy = true;
        assert_eq!(mbtype_of(&cal), "cl");
        assert_eq!(v["ex.org!user.dan.R"]["acl"]["dan@ex.org"], "lrs");
    }
}
