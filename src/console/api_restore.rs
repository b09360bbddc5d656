//! The restore wizard's questions and its plan: the objects of a kind (users, archives and
//! shared mailboxes from a spool snapshot, with the `[entities]` settings; parts; hosts), the
//! dates that have a snapshot, and what a restore would write and remove. The run itself is in
//! [`super::api_restore_run`]; both plan with the engines' own functions (`restore::user::plan`,
//! `restore::server::plan`), as `restore-user` and `restore-server` do.

use super::app::Ctx;
use super::http::Response;
use super::http::{error, field, json};
use super::paths::{plain_path, snapshot_id};
use crate::cyrus::ImapdConf;
use crate::model::Snapshot;
use crate::repo::named_snapshots;
use crate::restore::entities::list;
use crate::restore::mailboxes::meta_for;
use crate::restore::server::{self as server_restore, ThisMachine};
use crate::restore::user::{self, Destination, User, What};
use crate::restore::when::{pick_part_at, When};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;

/// The kinds of object the wizard restores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    Archive,
    Shared,
    Folder,
    Server,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, Response> {
        Ok(match s {
            "user" => Kind::User,
            "archive" => Kind::Archive,
            "shared" => Kind::Shared,
            "folder" => Kind::Folder,
            "server" => Kind::Server,
            _ => return Err(error(400, &format!("unknown kind {s:?}"))),
        })
    }
}

fn all_snapshots(ctx: &Ctx<'_>) -> Result<Vec<Snapshot>, Response> {
    ctx.repo
        .sync()
        .and_then(|_| ctx.repo.snapshots())
        .map_err(|e| error(500, &e.to_string()))
}

/// The part whose dates count for `kind` (`part` for a folder; none for a whole server).
fn part_of(ctx: &Ctx<'_>, kind: Kind, part: Option<&str>) -> Option<String> {
    let e = &ctx.app.settings.config.entities;
    match kind {
        Kind::User | Kind::Shared => Some(e.mailbox.part.trim_matches('/').to_string()),
        Kind::Archive => Some(e.archive.part.trim_matches('/').to_string()),
        Kind::Folder => part.map(|p| p.trim_matches('/').to_string()),
        Kind::Server => None,
    }
}

/// `GET /api/entities?kind=K[&snapshot=ID]`: the objects to choose from.
pub fn entities(ctx: &Ctx<'_>, q: &HashMap<String, String>) -> Response {
    let asked = q.get("kind").map_or("", String::as_str);
    // A database kind's objects are users: the mail spool's, the same people.
    let asked = if asked.starts_with(super::api_restore_db::PREFIX)
        || super::api_restore_dav::kind_of(asked).is_some()
    {
        "user"
    } else {
        asked
    };
    let kind = match Kind::parse(asked) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let all = match all_snapshots(ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match kind {
        Kind::Server => {
            let mut hosts: Vec<&str> = all.iter().map(|s| s.manifest.host.as_str()).collect();
            hosts.sort_unstable();
            hosts.dedup();
            let objects: Vec<Value> = hosts.iter().map(|h| json!({ "name": h })).collect();
            json(
                200,
                &json!({ "objects": objects, "source": "the store's hosts" }),
            )
        }
        Kind::Folder => {
            let mut parts: Vec<(String, String)> = all
                .iter()
                .map(|s| (s.manifest.host.clone(), s.manifest.part.clone()))
                .collect();
            parts.sort_unstable();
            parts.dedup();
            let objects: Vec<Value> = parts
                .iter()
                .map(|(h, p)| json!({ "name": p, "host": h }))
                .collect();
            json(
                200,
                &json!({ "objects": objects, "source": "the store's parts" }),
            )
        }
        Kind::User | Kind::Archive | Kind::Shared => {
            let e = &ctx.app.settings.config.entities;
            let part = e.mailbox.part.trim_matches('/');
            // One snapshot asked for, or the newest spool snapshot of every host in the store:
            // a console on the backup server restores the users of every mail server.
            let spools: Vec<Snapshot> = match q.get("snapshot").filter(|s| !s.is_empty()) {
                Some(id) => match snapshot_id(id).map(|id| ctx.repo.resolve(id)) {
                    Ok(Ok(s)) => vec![s],
                    Ok(Err(e)) => return error(404, &e.to_string()),
                    Err(e) => return error(400, &e),
                },
                None => {
                    let mut hosts: Vec<&str> = all
                        .iter()
                        .filter(|s| s.manifest.part == part)
                        .map(|s| s.manifest.host.as_str())
                        .collect();
                    hosts.sort_unstable();
                    hosts.dedup();
                    let now = When::instant(crate::store::now_ns());
                    hosts
                        .iter()
                        .filter_map(|h| pick_part_at(&all, h, part, &now).ok().cloned())
                        .collect()
                }
            };
            if spools.is_empty() {
                let mut parts: Vec<String> = all
                    .iter()
                    .map(|s| format!("{}/{}", s.manifest.host, s.manifest.part))
                    .collect();
                parts.sort_unstable();
                parts.dedup();
                let why = if parts.is_empty() {
                    "the store has no snapshots yet: run a backup first".to_string()
                } else {
                    format!(
                        "no snapshot of the part {part} (the [entities] mailbox part) on any host; the store has {}",
                        parts.join(", ")
                    )
                };
                return json(200, &json!({ "objects": [], "source": "", "why": why }));
            }
            let mut objects = Vec::new();
            let mut sources = Vec::new();
            for spool in &spools {
                let meta = meta_for(&all, spool, &e.mailboxes_db.part);
                let l = match list(
                    ctx.repo,
                    spool,
                    meta.map(|m| (m, e.mailboxes_db.path.as_str())),
                ) {
                    Ok(l) => l,
                    Err(err) => return error(500, &err.to_string()),
                };
                let host = &spool.manifest.host;
                sources.push(format!(
                    "{host}: {} of {}",
                    l.source,
                    crate::timefmt::iso8601(spool.manifest.started_ns)
                ));
                let found = if kind == Kind::Shared {
                    l.shared
                } else {
                    l.users
                };
                for o in found {
                    let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
                    v["host"] = json!(host);
                    objects.push(v);
                }
            }
            let why = if objects.is_empty() {
                format!(
                    "no {} found in {}: check [entities] in the config (the mailbox part and its layout)",
                    if kind == Kind::Shared { "shared mailboxes" } else { "users" },
                    sources.join("; ")
                )
            } else {
                String::new()
            };
            json(
                200,
                &json!({
                    "objects": objects,
                    "source": sources.join("; "),
                    "why": why,
                    "snapshot": spools[0].id.to_hex(),
                }),
            )
        }
    }
}

/// `GET /api/dates?kind=K[&part=P][&host=H]`: the snapshots to choose from, newest first.
pub fn dates(ctx: &Ctx<'_>, q: &HashMap<String, String>) -> Response {
    let asked = q.get("kind").map_or("", String::as_str);
    let db_part = super::api_restore_db::part_of(ctx, asked);
    let asked = if super::api_restore_dav::kind_of(asked).is_some() {
        "user"
    } else {
        asked
    };
    let kind = match Kind::parse(if db_part.is_some() { "folder" } else { asked }) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let all = match all_snapshots(ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let host = q
        .get("host")
        .cloned()
        .unwrap_or_else(|| ctx.app.settings.host.clone());
    let part = db_part.or_else(|| part_of(ctx, kind, q.get("part").map(String::as_str)));
    let damaged: std::collections::HashSet<String> = ctx
        .repo
        .store
        .damage_reports()
        .map(|r| r.keys().map(|id| id.to_hex()).collect())
        .unwrap_or_default();
    let mut list: Vec<Value> = named_snapshots(&all)
        .into_iter()
        .filter(|(s, _)| s.manifest.host == host)
        .filter(|(s, _)| part.as_ref().is_none_or(|p| &s.manifest.part == p))
        .map(|(s, n)| {
            // A partial snapshot is offered too (some files could not be read): the admin
            // sees its status and how many files it lacks, and decides.
            json!({
                "id": s.id.to_hex(), "name": n, "part": s.manifest.part, "host": s.manifest.host,
                "started": crate::timefmt::iso8601(s.manifest.started_ns),
                "started_ns": s.manifest.started_ns,
                "status": if damaged.contains(&s.id.to_hex()) { "damaged" } else { s.manifest.status.as_str() },
                "problems": s.manifest.problems.len(),
            })
        })
        .collect();
    list.reverse();
    json(200, &Value::Array(list))
}

/// What a restore will do, planned by the engines.
pub enum Planned {
    User {
        plan: user::Plan,
        user: User,
        dest: Destination,
        conf: Option<ImapdConf>,
    },
    Folder {
        snap: Snapshot,
        path: Vec<u8>,
        dest: PathBuf,
        remove_first: bool,
        overwrite: bool,
    },
    Server {
        plan: server_restore::Plan,
        overwrite: bool,
    },
    /// A database kind ([`super::api_restore_db`]).
    Db(super::api_restore_db::DbPlan),
    /// Calendars or address books ([`super::api_restore_dav`]).
    Dav(super::api_restore_dav::DavPlan),
}

pub struct Prepared {
    pub planned: Planned,
    /// One line per restore: what into where.
    pub items: Vec<String>,
    /// Live folders removed (or files overwritten) first: the confirmation must name them.
    pub removes: Vec<String>,
    pub notes: Vec<String>,
    /// For the logs: what is restored from when into where.
    pub what: String,
}

/// Plans the restore a wizard body asks for: `{kind, object, snapshot, dest, to?, path?}`.
pub fn prepare(ctx: &Ctx<'_>, body: &Value) -> Result<Prepared, Response> {
    let asked = field(body, "kind")?;
    let object = field(body, "object")?;
    let id = snapshot_id(field(body, "snapshot")?).map_err(|e| error(400, &e))?;
    let snap = ctx
        .repo
        .resolve(id)
        .map_err(|e| error(404, &e.to_string()))?;
    let all = all_snapshots(ctx)?;
    let name = named_snapshots(&all)
        .into_iter()
        .find(|(s, _)| s.id == snap.id)
        .map(|(_, n)| n)
        .unwrap_or_default();
    let at = When {
        start_ns: snap.manifest.started_ns,
        end_ns: snap.manifest.started_ns,
        name: Some(name.clone()),
    };
    let dest_kind = field(body, "dest")?;
    let to = body
        .get("to")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .map(PathBuf::from);
    if dest_kind == "to" && to.as_ref().is_none_or(|t| !t.is_absolute()) {
        return Err(error(400, "give an absolute folder to restore into"));
    }
    if asked.starts_with(super::api_restore_db::PREFIX) {
        return super::api_restore_db::prepare(ctx, asked, object, snap, &name, dest_kind, to);
    }
    if let Some(k) = super::api_restore_dav::kind_of(asked) {
        return super::api_restore_dav::prepare(ctx, k, object, snap, &name, dest_kind);
    }
    let kind = Kind::parse(asked)?;
    let mut notes = Vec::new();
    match kind {
        Kind::User | Kind::Archive | Kind::Shared => {
            let u = if kind == Kind::Shared {
                User::parse_shared(object)
            } else {
                User::parse(object)
            }
            .map_err(|e| error(400, &e.to_string()))?;
            let dest = match dest_kind {
                "inplace" => Destination::InPlace,
                "to" => Destination::To(to.unwrap_or_default()),
                _ => Destination::Beside,
            };
            let what = [if kind == Kind::Archive {
                What::Archive
            } else {
                What::Mail
            }];
            let entities = &ctx.app.settings.config.entities;
            let conf = ImapdConf::read(&entities.cyrus_config).ok();
            // Beside the live mailbox: an earlier restore of the same date keeps its folder
            // and this one takes the next free name (Restored-<date>-2, -3…).
            let mut number = None;
            let plan = loop {
                let req = user::Request {
                    user: &u,
                    what: &what,
                    lenient: false,
                    host: &snap.manifest.host,
                    at: at.clone(),
                    dest: &dest,
                    overwrite: false,
                    conf: conf.as_ref(),
                    label_number: number,
                };
                match user::plan(ctx.repo, entities, &req) {
                    Err(user::UserRestoreError::NotEmpty(_))
                        if matches!(dest, Destination::Beside) && number.unwrap_or(1) < 100 =>
                    {
                        number = Some(number.unwrap_or(1) + 1);
                    }
                    r => break r.map_err(|e| error(400, &e.to_string()))?,
                }
            };
            notes.extend(plan.skipped.iter().map(|s| format!("skipped {s}")));
            notes.extend(plan.found.iter().map(|f| format!("mailboxes found by {f}")));
            notes.extend(plan.notes.iter().cloned());
            let items = plan
                .items
                .iter()
                .map(|i| {
                    format!(
                        "{} of {}/{}:{} into {}",
                        i.what.name(),
                        i.snapshot.manifest.part,
                        i.snapshot.id.short(),
                        i.path,
                        i.dest.display()
                    )
                })
                .collect();
            let mut removes = Vec::new();
            for i in plan.items.iter().filter(|i| i.remove_first) {
                // The confirmation names what goes, counted: mail received since the date,
                // folders made since (an earlier Restored- folder among them).
                let loss = crate::restore::inplace_loss::what_goes(
                    ctx.repo,
                    &i.snapshot,
                    i.path.as_bytes(),
                    &i.dest,
                )
                .map_err(|e| error(500, &e.to_string()))?;
                removes.push(format!(
                    "{} (removed first; lost: {})",
                    i.dest.display(),
                    loss.describe()
                ));
            }
            let into: Vec<String> = plan
                .items
                .iter()
                .map(|i| i.dest.display().to_string())
                .collect();
            Ok(Prepared {
                what: format!(
                    "{object}'s {} on {} as of {name} into {} ({dest_kind})",
                    what[0].name(),
                    snap.manifest.host,
                    into.join(", ")
                ),
                planned: Planned::User {
                    plan,
                    user: u,
                    dest,
                    conf,
                },
                items,
                removes,
                notes,
            })
        }
        Kind::Folder => {
            super::api_restore_run::prepare_folder(ctx.repo, snap, &name, body, dest_kind, to)
        }
        Kind::Server => {
            let host = object;
            let (target, overwrite) = match dest_kind {
                "inplace" => (PathBuf::from("/"), true),
                "to" => (to.unwrap_or_default(), false),
                _ => (PathBuf::from(format!("/var/tmp/Restored-{name}")), false),
            };
            let ip = crate::hostaddr::primary_ipv4().to_string();
            let me = ThisMachine {
                ip: &ip,
                version: env!("CARGO_PKG_VERSION"),
            };
            let at = When { name: None, ..at };
            let plan = server_restore::plan(&all, host, &at, &target, overwrite, &me)
                .map_err(|e| error(400, &e.to_string()))?;
            notes.extend(plan.warnings.iter().cloned());
            let items = plan
                .items
                .iter()
                .map(|i| {
                    format!(
                        "{}/{} snapshot {} into {}",
                        i.snapshot.manifest.host,
                        i.snapshot.manifest.part,
                        i.snapshot.id.short(),
                        i.dest.display()
                    )
                })
                .collect();
            let removes = if overwrite {
                plan.items
                    .iter()
                    .map(|i| format!("{} (files overwritten)", i.dest.display()))
                    .collect()
            } else {
                Vec::new()
            };
            Ok(Prepared {
                what: format!("server {host} as of {name} into {}", target.display()),
                planned: Planned::Server { plan, overwrite },
                items,
                removes,
                notes,
            })
        }
    }
}

/// `POST /api/restore/plan`: what the restore would do, for the wizard's last step.
pub fn plan(ctx: &Ctx<'_>, body: &Value) -> Response {
    match prepare(ctx, body) {
        Ok(p) => json(
            200,
            &json!({ "items": p.items, "removes": p.removes, "notes": p.notes, "what": p.what }),
        ),
        Err(r) => r,
    }
}

/// A folder of a part given in a body's `path` (within the snapshot).
pub fn body_path(body: &Value) -> Result<Vec<u8>, Response> {
    plain_path(body.get("path").and_then(Value::as_str).unwrap_or("")).map_err(|e| error(400, &e))
}
