//! `restore-user USER --what KIND --at WHEN [--to DIR] [--dry-run]` for a kind declared over a
//! database part (`[db_entities.KIND]`): calls [`crate::restore::db_entity::run`] and prints
//! the objects, what was done with them and how long each step took.

use super::restore_shared::host_or_default;
use super::restore_user::RestoreUserArgs;
use super::{Common, EXIT_ERROR, EXIT_OK, EXIT_USAGE};
use crate::repo::Repository;
use crate::restore::db_entity::{self, export::FileState, Action, DbEntityConfig, Done, Request};
use crate::timefmt;
use std::time::Duration;

pub fn run(
    common: &Common,
    repo: &Repository,
    a: &RestoreUserArgs,
    kind: &DbEntityConfig,
) -> anyhow::Result<i32> {
    let name = a.what.as_str();
    if a.shared || a.in_place {
        crate::tell!(
            "bmbackup restore-user: --what {name} is a database kind: --shared and --in-place do not apply (export with --to DIR, or apply to the live database without --to)"
        );
        return Ok(EXIT_USAGE);
    }
    let host = host_or_default(a.host.as_deref(), common);
    let at = a.when.when()?;
    let action = match &a.to {
        Some(dir) => Action::Export {
            dir: dir.clone(),
            overwrite: a.when.overwrite,
        },
        None => Action::Apply,
    };
    let dry_run = a.when.dry_run;
    let req = Request {
        name,
        kind,
        user: &a.user,
        host: &host,
        at: &at,
        action,
        dry_run,
    };
    let out = db_entity::run(repo, &req, &mut |s| crate::tell!("{s}…"))?;
    let m = &out.snapshot.manifest;
    crate::tell!(
        "{} of {} from {}/{} snapshot {} ({} UTC), a {} dump of {}, loaded by PostgreSQL {}",
        name,
        a.user,
        m.host,
        m.part,
        out.snapshot.id.short(),
        timefmt::display(m.started_ns),
        out.dump_format,
        super::format::size(out.dump_bytes),
        out.postgres
    );
    if out.load_errors > 0 {
        crate::tell!(
            "note: loading went past {} error(s) (owners, grants or extensions the throwaway instance lacks), e.g. {}",
            out.load_errors,
            db_entity::printable(out.first_load_errors.first().map(String::as_str).unwrap_or(""))
        );
    }
    let mut code = EXIT_OK;
    let n = out.objects.len();
    crate::say!("{n} object(s) of {name} for {}:", a.user);
    for o in &out.objects {
        crate::say!("  {o}");
    }
    match &out.done {
        Done::WouldExport(files) => {
            for (p, k) in files {
                crate::say!("would write {} ({k} object(s))", p.display());
            }
        }
        Done::WouldApply {
            statements,
            checked,
        } => {
            crate::say!(
                "would apply them to the live database with {statements} statement(s) in one transaction (dry run: nothing changed)"
            );
            match checked {
                Ok(()) => crate::say!(
                    "the statements were checked on the live database (prepared, then rolled back)"
                ),
                Err(e) => {
                    crate::tell!("bmbackup restore-user: the apply statements do not pass on the live database: {e}");
                    code = EXIT_ERROR;
                }
            }
        }
        Done::Exported(files) => {
            for f in files {
                let state = match f.state {
                    FileState::Written => "written",
                    FileState::Unchanged => "unchanged (already there)",
                    FileState::Replaced => "replaced",
                };
                crate::say!("{} ({} object(s)): {state}", f.path.display(), f.objects);
            }
        }
        Done::Applied(done) => {
            crate::say!("applied to the live database in one transaction:");
            for (i, d) in done.iter().enumerate() {
                let returned = if d.returned.is_empty() {
                    String::new()
                } else {
                    let shown: Vec<String> = d
                        .returned
                        .iter()
                        .take(20)
                        .map(|r| db_entity::printable(r))
                        .collect();
                    let more = d.returned.len().saturating_sub(20);
                    format!(
                        ": {}{}",
                        shown.join(", "),
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        }
                    )
                };
                crate::say!("  statement {}: {}{returned}", i + 1, d.tag);
            }
        }
    }
    let t = &out.timings;
    crate::tell!(
        "took {} (PostgreSQL start {}, load {}, select {}, teardown {}, {} {})",
        secs(t.total),
        secs(t.start),
        secs(t.load),
        secs(t.select),
        secs(t.cleanup),
        match out.done {
            Done::Exported(_) | Done::WouldExport(_) => "export",
            Done::WouldApply { .. } => "check",
            Done::Applied(_) => "apply",
        },
        secs(t.action)
    );
    if n == 0 {
        // A misspelt user selects nothing too: never a silent success.
        crate::tell!(
            "bmbackup restore-user: no {name} objects for {} in that snapshot (is the user spelt as in the database?)",
            a.user
        );
        return Ok(EXIT_ERROR);
    }
    Ok(code)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}
