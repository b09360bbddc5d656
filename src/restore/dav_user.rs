//! `restore-user --what calendar|contacts`: the engine the CLI and the console call. Picks the
//! spool snapshot at WHEN and the mailbox list beside it, lists the user's collections
//! ([`super::dav::collections`]) and puts the chosen ones back through the server
//! ([`super::dav_put`]).

use super::dav::{collections, resources, Collection, DavError, DavKind};
use super::dav_http::Client;
use super::dav_put::{put_back, DavReport, Into};
use super::mailboxes::meta_for;
use super::user_id::User;
use super::when::{pick_part_at, When};
use crate::config::{DavConfig, Entities};
use crate::cyrus::ImapdConf;
use crate::model::Snapshot;
use crate::repo::Repository;
use crate::timefmt;

/// The calendars and address books of a user at a point in time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectionList {
    /// The spool snapshot (short id) and its start (ISO 8601, UTC).
    pub snapshot: String,
    pub date: String,
    pub collections: Vec<Collection>,
}

/// Lists `user`'s calendars and address books in the spool snapshot of `host` at `at`.
pub fn list_collections(
    repo: &Repository,
    entities: &Entities,
    host: &str,
    at: &When,
    user: &User,
    conf: Option<&ImapdConf>,
) -> Result<CollectionList, DavError> {
    let all = repo.snapshots()?;
    let spool = pick_part_at(&all, host, &entities.mailbox.part, at)?;
    let meta = meta_for(&all, spool, &entities.mailboxes_db.part);
    let colls = collections(
        repo,
        spool,
        meta.map(|m| (m, entities.mailboxes_db.path.as_str())),
        conf,
        user,
    )?;
    Ok(CollectionList {
        snapshot: spool.id.short(),
        date: timefmt::iso8601(spool.manifest.started_ns),
        collections: colls,
    })
}

/// What to restore of a user's calendars and contacts.
pub struct DavRequest<'a> {
    pub user: &'a User,
    /// Calendars, address books, or both.
    pub kinds: &'a [DavKind],
    /// Only the collection of this name (its URL name, e.g. `Default`, or display name).
    pub collection: Option<&'a str>,
    pub host: &'a str,
    pub at: When,
    /// Into the original collections instead of new `Restored-<date>-<name>` ones.
    pub into_original: bool,
    pub replace_changed: bool,
    pub delete_newer: bool,
    pub dry_run: bool,
    pub conf: Option<&'a ImapdConf>,
}

/// Restores the collections `req` names; `say` gets one line per collection as it starts.
pub fn restore_dav(
    repo: &Repository,
    entities: &Entities,
    req: &DavRequest<'_>,
    say: &mut dyn FnMut(String),
) -> Result<Vec<DavReport>, DavError> {
    let dav = entities.dav.as_ref().ok_or(DavError::NotConfigured)?;
    let all = repo.snapshots()?;
    let spool: &Snapshot = pick_part_at(&all, req.host, &entities.mailbox.part, &req.at)?;
    let meta = meta_for(&all, spool, &entities.mailboxes_db.part)
        .map(|m| (m, entities.mailboxes_db.path.as_str()));
    let snapshot = format!(
        "{} of {} UTC",
        spool.id.short(),
        timefmt::display(spool.manifest.started_ns)
    );
    let every = collections(repo, spool, meta, req.conf, req.user)?;
    let chosen: Vec<&Collection> = every
        .iter()
        .filter(|c| req.kinds.contains(&c.kind))
        .filter(|c| {
            req.collection
                .is_none_or(|n| c.name == n || c.display_name.as_deref() == Some(n))
        })
        .collect();
    if chosen.is_empty() {
        let kinds: Vec<&str> = req.kinds.iter().map(|k| k.name()).collect();
        return Err(match req.collection {
            Some(n) => DavError::NoSuchCollection {
                user: req.user.to_string(),
                kind: if req.kinds.len() == 1 {
                    req.kinds[0].name()
                } else {
                    "calendar or address book"
                },
                name: n.to_string(),
                snapshot,
                have: every
                    .iter()
                    .map(|c| format!("{} {}", c.kind.name(), c.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            None => DavError::NoCollections {
                user: req.user.to_string(),
                snapshot: format!("{snapshot} ({})", kinds.join(", ")),
                root: req.user.root().legacy(),
            },
        });
    }
    let client = Client::new(&dav.url, &dav.admin, &password(dav)?, &req.user.to_string())?;
    let day = &timefmt::folder_name(spool.manifest.started_ns)[..10];
    let mut out = Vec::new();
    for c in chosen {
        let (items, notes) = resources(repo, spool, meta, c, req.user)?;
        for n in notes {
            say(format!("note: {n}"));
        }
        let into = if req.into_original {
            Into::Original {
                replace_changed: req.replace_changed,
                delete_newer: req.delete_newer,
            }
        } else {
            Into::New {
                label: format!("Restored-{day}-{}", c.name),
            }
        };
        say(format!(
            "restoring {}'s {} {} ({} item(s), snapshot {snapshot}){}",
            req.user,
            c.kind.name(),
            c.name,
            items.len(),
            match &into {
                Into::New { label } => format!(" into new collection {label}"),
                Into::Original { .. } => " into the original collection".to_string(),
            }
        ));
        out.push(put_back(&client, req.user, c, &items, &into, req.dry_run)?);
    }
    Ok(out)
}

/// The admin's password: the first line of `password_file`, which must not be readable by
/// others (a secret never printed; errors name the file, not its content).
fn password(dav: &DavConfig) -> Result<String, DavError> {
    use std::os::unix::fs::MetadataExt;
    let path = dav.password_file.display().to_string();
    let err = |why: String| DavError::Secret {
        path: path.clone(),
        why,
    };
    let md = std::fs::metadata(&dav.password_file).map_err(|e| err(e.to_string()))?;
    if md.mode() & 0o077 != 0 {
        return Err(err(
            "readable by group or others: chmod 600 it (it holds the DAV admin's password)".into(),
        ));
    }
    let text = std::fs::read_to_string(&dav.password_file).map_err(|e| err(e.to_string()))?;
    let pw = text.lines().next().unwrap_or("").to_string();
    if pw.is_empty() {
        return Err(err(
            "empty: put the admin's password on its first line".into()
        ));
    }
    Ok(pw)
}
