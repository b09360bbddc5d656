//! The file-level fallback for calendars and contacts when Cyrus is stopped
//! (`restore-user --what calendar|contacts --files`): each collection's folder is put back as
//! it was in the snapshot, replacing the live one (never merged), then `reconstruct` rebuilds
//! its index and `dav_reconstruct` the user's `.dav` database. The collection keeps the
//! snapshot's modseq, so its sync-token goes back in time: a client that synced since may miss
//! the change until it resyncs (the output says so). Through the server ([`super::dav_user`])
//! is the default for that reason.

use super::dav::{collections, DavError, DavKind};
use super::mailboxes::meta_for;
use super::user::{live_mailboxes, Item};
use super::user_id::{User, What};
use super::when::{pick_part_at, When};
use crate::config::Entities;
use crate::cyrus::{tool_display, ImapdConf};
use crate::repo::Repository;
use std::path::Path;

/// The folders to replace and the commands that make Cyrus take them.
#[derive(Debug)]
pub struct FilesPlan {
    pub items: Vec<Item>,
    pub commands: Vec<String>,
    pub warning: String,
}

/// Plans the replacement of `user`'s collections of `kinds` (or the one named `collection`).
#[allow(clippy::too_many_arguments)]
pub fn plan_files(
    repo: &Repository,
    entities: &Entities,
    host: &str,
    at: &When,
    user: &User,
    kinds: &[DavKind],
    collection: Option<&str>,
    conf: Option<&ImapdConf>,
) -> Result<FilesPlan, DavError> {
    let all = repo.snapshots()?;
    let spool = pick_part_at(&all, host, &entities.mailbox.part, at)?;
    let meta = meta_for(&all, spool, &entities.mailboxes_db.part)
        .map(|m| (m, entities.mailboxes_db.path.as_str()));
    let live = conf.and_then(live_mailboxes).ok_or_else(|| {
        DavError::Index(format!(
            "--files needs the live server's mailbox list: the configdirectory of {} \
             ([entities] cyrus_config)",
            entities.cyrus_config.display()
        ))
    })?;
    let source = Path::new(&spool.manifest.source);
    let mut items = Vec::new();
    let mut commands = Vec::new();
    let c = conf.map(ImapdConf::c_flag).unwrap_or_default();
    let sep = conf.map(ImapdConf::separator).unwrap_or('/');
    for coll in collections(repo, spool, meta, conf, user)? {
        if !kinds.contains(&coll.kind)
            || collection.is_some_and(|n| coll.name != n && coll.display_name.as_deref() != Some(n))
        {
            continue;
        }
        // The folder is named by the mailbox's unique id (or name): a collection deleted or
        // made again since is another mailbox, whose folder this is not.
        let same = live.mailboxes.iter().any(|m| {
            m.is_live()
                && m.name.legacy() == coll.mailbox
                && m.uniqueid.as_deref().unwrap_or("") == coll.uniqueid
        });
        if !same {
            return Err(DavError::Index(format!(
                "{} {} was deleted or made again since the snapshot: --files cannot put it \
                 back; restore it through the server (without --files)",
                coll.kind.name(),
                coll.name
            )));
        }
        items.push(Item {
            what: match coll.kind {
                DavKind::Calendar => What::Calendar,
                DavKind::AddressBook => What::Contacts,
            },
            snapshot: spool.clone(),
            path: coll.path.clone(),
            dest: source.join(&coll.path),
            remove_first: true,
            exclude: vec![],
            files_only: true,
            new_folder: None,
        });
        let name = crate::cyrus::name::MboxName::from_legacy(&coll.mailbox)
            .map(|n| n.external(sep))
            .unwrap_or_else(|| coll.mailbox.clone());
        commands.push(format!("{}{c} -r {name}", tool_display("reconstruct")));
    }
    if items.is_empty() {
        return Err(DavError::NoCollections {
            user: user.to_string(),
            snapshot: spool.id.short(),
            root: user.root().legacy(),
        });
    }
    commands.push(format!("{}{c} {user}", tool_display("dav_reconstruct")));
    Ok(FilesPlan {
        items,
        commands,
        warning: "the collections were put back as files: their sync-tokens went back to the \
                  snapshot's, so a client that synced since may not see the change until it \
                  resyncs (remove and add the calendar or address book in it)"
            .to_string(),
    })
}
