//! The wizard's database kinds: each `[db_entities.NAME]` of the config (a user's calendars or
//! contacts kept in the PostgreSQL dump part) is offered as kind `db:NAME`. Which user: the
//! users of the mail spool (the same people), or any name typed; when: the dates of the dump's
//! part; where: files exported into a folder (a new `/var/tmp/Restored-<date>` by default), or
//! applied to the live database (confirmed first). The run is
//! [`crate::restore::db_entity::run`], as `restore-user USER --what NAME` runs it: a throwaway
//! PostgreSQL of the dump's version, removed afterwards.

use super::api_restore::{Planned, Prepared};
use super::app::Ctx;
use super::http::{error, Response};
use super::jobs::Job;
use crate::model::Snapshot;
use crate::restore::db_entity::{self, Action, Done};
use crate::restore::when::When;
use std::path::PathBuf;

/// A database kind's restore, planned.
pub struct DbPlan {
    pub kind: String,
    pub user: String,
    pub host: String,
    pub at: When,
    pub action: Action,
}

/// The prefix of a database kind in the wizard's `kind`.
pub const PREFIX: &str = "db:";

/// The declared kinds as the wizard lists them: `{kind, name, part, export, apply}`.
pub fn kinds_json(config: &crate::config::Config) -> Vec<serde_json::Value> {
    db_entity::kinds(config)
        .into_iter()
        .map(|(name, k)| {
            serde_json::json!({
                "kind": format!("{PREFIX}{name}"),
                "name": name,
                "part": k.part,
                "can_apply": !k.apply.is_empty() && k.live.is_some(),
            })
        })
        .collect()
}

/// The part whose dates count for a database kind.
pub fn part_of(ctx: &Ctx<'_>, kind: &str) -> Option<String> {
    let name = kind.strip_prefix(PREFIX)?;
    ctx.app
        .settings
        .config
        .db_entities
        .get(name)
        .map(|k| k.part.trim_matches('/').to_string())
}

/// Plans a database kind's restore: export into a folder, or apply to the live database.
pub fn prepare(
    ctx: &Ctx<'_>,
    kind: &str,
    user: &str,
    snap: Snapshot,
    name: &str,
    dest_kind: &str,
    to: Option<PathBuf>,
) -> Result<Prepared, Response> {
    let kind_name = kind.strip_prefix(PREFIX).unwrap_or(kind);
    let Some(k) = ctx.app.settings.config.db_entities.get(kind_name) else {
        return Err(error(
            400,
            &format!("no [db_entities.\"{kind_name}\"] in the config"),
        ));
    };
    if user.trim().is_empty() {
        return Err(error(400, "choose or type a user"));
    }
    if snap.manifest.part.trim_matches('/') != k.part.trim_matches('/') {
        return Err(error(
            400,
            &format!(
                "that snapshot is of {}, not of the dump's part {}",
                snap.manifest.part, k.part
            ),
        ));
    }
    let (action, item, removes) = match dest_kind {
        "inplace" => {
            if k.apply.is_empty() || k.live.is_none() {
                return Err(error(
                    400,
                    &format!("[db_entities.\"{kind_name}\"] declares no apply statements and live database: export it instead"),
                ));
            }
            (
                Action::Apply,
                format!(
                    "{kind_name} of {user} as of {name}: its {} apply statement(s) run on the live database in one transaction",
                    k.apply.len()
                ),
                vec![format!(
                    "the live database of [db_entities.\"{kind_name}\"] (rows added or changed by its apply statements)"
                )],
            )
        }
        _ => {
            let dir = match (dest_kind, to) {
                ("to", Some(t)) => t,
                _ => PathBuf::from(format!("/var/tmp/Restored-{name}")),
            };
            (
                Action::Export {
                    dir: dir.clone(),
                    overwrite: false,
                },
                format!(
                    "{kind_name} of {user} as of {name}: exported into {}/{user}/{kind_name}/",
                    dir.display()
                ),
                Vec::new(),
            )
        }
    };
    let at = When {
        start_ns: snap.manifest.started_ns,
        end_ns: snap.manifest.started_ns,
        name: Some(name.to_string()),
    };
    Ok(Prepared {
        what: item.clone(),
        items: vec![item],
        removes,
        notes: vec![format!(
            "a throwaway PostgreSQL of the dump's version is started for this (a few seconds) and removed afterwards; the dump is read from {}/{} snapshot {}",
            snap.manifest.host,
            snap.manifest.part,
            snap.id.short()
        )],
        planned: Planned::Db(DbPlan {
            kind: kind_name.to_string(),
            user: user.to_string(),
            host: snap.manifest.host.clone(),
            at,
            action,
        }),
    })
}

/// Runs a planned database kind; the job's log tells each step and what was done.
pub fn execute(
    app: &super::app::App,
    repo: &crate::repo::Repository,
    job: &Job,
    plan: DbPlan,
) -> &'static str {
    let DbPlan {
        kind,
        user,
        host,
        at,
        action,
    } = plan;
    let (kind, user, host, at) = (kind.as_str(), user.as_str(), host.as_str(), &at);
    let Some(k) = app.settings.config.db_entities.get(kind) else {
        job.log(format!("error: no [db_entities.\"{kind}\"] in the config"));
        return "failed";
    };
    let req = db_entity::Request {
        name: kind,
        kind: k,
        user,
        host,
        at,
        action,
        dry_run: false,
    };
    let outcome = db_entity::run(repo, &req, &mut |step| job.log(step.to_string()));
    let o = match outcome {
        Ok(o) => o,
        Err(e) => {
            job.log(format!("error: {e}"));
            return "failed";
        }
    };
    job.log(format!(
        "PostgreSQL {} loaded {} of dump ({} object(s) selected) in {:.1} s",
        o.postgres,
        crate::cli::format::size(o.dump_bytes),
        o.objects.len(),
        o.timings.total.as_secs_f64()
    ));
    for line in o.objects.iter().take(200) {
        job.log(format!("  {line}"));
    }
    if o.objects.is_empty() {
        job.log(format!(
            "nothing of {user} in this dump: check the user's name (as the selection of [db_entities.\"{kind}\"] expects it)"
        ));
        return "failed";
    }
    match &o.done {
        Done::Exported(files) => {
            for f in files {
                job.log(format!(
                    "{}: {} object(s), {:?}",
                    f.path.display(),
                    f.objects,
                    f.state
                ));
            }
        }
        Done::Applied(statements) => {
            for s in statements {
                job.log(s.tag.clone());
                for r in s.returned.iter().take(100) {
                    job.log(format!("  {r}"));
                }
            }
        }
        Done::WouldExport(_) | Done::WouldApply { .. } => {}
    }
    "complete"
}
