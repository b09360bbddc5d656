//! The wizard's calendars and address books (kinds `calendar` and `contacts`): which user (the
//! spool's users, as for mail), when (the spool's dates), where: new `Restored-<date>-<name>`
//! collections (the default) or into the user's own collections, adding what is missing and
//! never deleting what was made since. They go back through Cyrus' CalDAV/CardDAV server
//! ([`crate::restore::dav_user::restore_dav`], as `restore-user --what calendar` does), so the
//! server moves its index and sync-tokens forward and every client sees them.

use super::api_restore::{Planned, Prepared};
use super::app::Ctx;
use super::http::{error, Response};
use super::jobs::Job;
use crate::cyrus::ImapdConf;
use crate::model::Snapshot;
use crate::restore::dav::DavKind;
use crate::restore::dav_user::{list_collections, restore_dav, DavRequest};
use crate::restore::user::User;
use crate::restore::when::When;

/// A calendar or contacts restore, planned.
pub struct DavPlan {
    pub kind: DavKind,
    pub user: User,
    pub host: String,
    pub at: When,
    pub into_original: bool,
}

/// The wizard's kind name of `kind`, if it is one of these.
pub fn kind_of(asked: &str) -> Option<DavKind> {
    match asked {
        "calendar" => Some(DavKind::Calendar),
        "contacts" => Some(DavKind::AddressBook),
        _ => None,
    }
}

/// Whether `[entities.dav]` says how to reach the server (the wizard says so otherwise).
pub fn configured(ctx: &Ctx<'_>) -> bool {
    ctx.app.settings.config.entities.dav.is_some()
}

/// Plans putting back `user`'s calendars or address books of `snap`'s date.
pub fn prepare(
    ctx: &Ctx<'_>,
    kind: DavKind,
    user: &str,
    snap: Snapshot,
    name: &str,
    dest_kind: &str,
) -> Result<Prepared, Response> {
    if !configured(ctx) {
        return Err(error(
            400,
            "calendars and contacts go back through Cyrus' CalDAV/CardDAV server: set [entities.dav] (url, admin, password_file) in the config",
        ));
    }
    let into_original = match dest_kind {
        "inplace" => true,
        "new" => false,
        _ => {
            return Err(error(
                400,
                "calendars and contacts go back through the server: into new Restored- collections or into the user's own, not into a folder",
            ))
        }
    };
    let u = User::parse(user).map_err(|e| error(400, &e.to_string()))?;
    let entities = &ctx.app.settings.config.entities;
    let conf = ImapdConf::read(&entities.cyrus_config).ok();
    let at = When {
        start_ns: snap.manifest.started_ns,
        end_ns: snap.manifest.started_ns,
        name: Some(name.to_string()),
    };
    let host = snap.manifest.host.clone();
    let list = list_collections(ctx.repo, entities, &host, &at, &u, conf.as_ref())
        .map_err(|e| error(400, &e.to_string()))?;
    let mine: Vec<_> = list.collections.iter().filter(|c| c.kind == kind).collect();
    if mine.is_empty() {
        return Err(error(
            404,
            &format!(
                "{user} has no {} in the snapshot of {name} on {host}",
                if kind == DavKind::Calendar {
                    "calendar"
                } else {
                    "address book"
                }
            ),
        ));
    }
    let items = mine
        .iter()
        .map(|c| {
            format!(
                "{} {}{} ({} items) into {}",
                kind.name(),
                c.name,
                c.display_name
                    .as_ref()
                    .map(|d| format!(" \"{d}\""))
                    .unwrap_or_default(),
                c.items.map_or("?".to_string(), |n| n.to_string()),
                if into_original {
                    "the user's own collection (what is missing is added)".to_string()
                } else {
                    format!(
                        "a new collection Restored-{}-{}",
                        &name[..name.len().min(10)],
                        c.name
                    )
                }
            )
        })
        .collect();
    Ok(Prepared {
        what: format!(
            "{user}'s {}s on {host} as of {name} ({})",
            kind.name(),
            if into_original {
                "into the originals"
            } else {
                "as new collections"
            }
        ),
        items,
        removes: Vec::new(),
        notes: vec![
            "sent through the CalDAV/CardDAV server: clients see the change at their next sync"
                .to_string(),
            "items made since that date are kept, never deleted".to_string(),
        ],
        planned: Planned::Dav(DavPlan {
            kind,
            user: u,
            host,
            at,
            into_original,
        }),
    })
}

/// Runs a planned calendar or contacts restore; the job's log tells each collection.
pub fn execute(
    app: &super::app::App,
    repo: &crate::repo::Repository,
    job: &Job,
    plan: DavPlan,
) -> &'static str {
    let entities = &app.settings.config.entities;
    let conf = ImapdConf::read(&entities.cyrus_config).ok();
    let kinds = [plan.kind];
    let req = DavRequest {
        user: &plan.user,
        kinds: &kinds,
        collection: None,
        host: &plan.host,
        at: plan.at.clone(),
        into_original: plan.into_original,
        replace_changed: false,
        delete_newer: false,
        dry_run: false,
        conf: conf.as_ref(),
    };
    match restore_dav(repo, entities, &req, &mut |line| job.log(line)) {
        Ok(reports) => {
            let mut failed = 0;
            for r in &reports {
                job.log(format!(
                    "{} → {}: {} added, {} replaced, {} unchanged, {} made since kept{}",
                    r.collection,
                    r.target,
                    r.added,
                    r.replaced,
                    r.unchanged,
                    r.newer_kept,
                    if r.created_collection {
                        " (new collection)"
                    } else {
                        ""
                    }
                ));
                for e in &r.elsewhere {
                    job.log(format!("  kept where it is now: {e}"));
                }
                for f in &r.failed {
                    job.log(format!("  not restored: {f}"));
                }
                failed += r.failed.len();
            }
            if failed == 0 {
                "complete"
            } else {
                "partial"
            }
        }
        Err(e) => {
            job.log(format!("error: {e}"));
            "failed"
        }
    }
}
