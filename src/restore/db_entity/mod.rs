//! Database entities: a kind of one user's data kept in a database dump part (BlueMind keeps
//! calendars and contacts in PostgreSQL; the `bm/pgsql` part is a `pg_dump`), declared in the
//! config as `[db_entities.NAME]` ([`config`]), restored by
//! `restore-user USER --what NAME --at WHEN`:
//!
//! 1. the part's snapshot at WHEN is picked and its dump found and sniffed ([`load`],
//!    [`dumpfmt`]: format, and the PostgreSQL major version it needs);
//! 2. a throwaway PostgreSQL of that version starts in a private folder, as an unprivileged
//!    user, reachable by unix socket only ([`instance`]; torn down on return, error or signal
//!    by [`cleanup`]);
//! 3. the dump is loaded, streamed from the store when its format allows ([`load`]);
//! 4. the kind's SELECT runs with the user as bound parameters ([`select`]) and the instance
//!    is removed;
//! 5. the objects are exported as files ([`export`]) or applied to the live database in one
//!    transaction ([`apply`]); a dry run shows them and changes nothing.
//!
//! [`run`] is the whole of it for any front end; [`kinds`] lists the declared kinds.

pub mod apply;
mod cleanup;
pub mod config;
pub mod dumpfmt;
pub mod export;
pub mod instance;
pub mod load;
pub mod select;

pub use config::{DbEntityConfig, ExportFormat};

use crate::model::Snapshot;
use crate::repo::{RepoError, Repository};
use crate::restore::when::{pick_part_at, When, WhenError};
use crate::restore::RestoreError;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DbEntityError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Setup(String),
    #[error("the dump: {0}")]
    Dump(String),
    #[error("loading the dump into the throwaway PostgreSQL: {0}")]
    Load(String),
    #[error("the selection failed in the throwaway PostgreSQL: {0}")]
    Select(String),
    #[error("export: {0}")]
    Export(String),
    #[error("apply: {0}")]
    Apply(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    When(#[from] WhenError),
}

/// Checks the `[db_entities]` tables when the config is loaded.
pub fn check_config(kinds: &BTreeMap<String, DbEntityConfig>) -> Result<(), String> {
    config::check(kinds)
}

/// The declared kinds, by name.
pub fn kinds(config: &crate::config::Config) -> Vec<(&str, &DbEntityConfig)> {
    config
        .db_entities
        .iter()
        .map(|(n, k)| (n.as_str(), k))
        .collect()
}

/// What to do with the selected objects.
#[derive(Debug, Clone)]
pub enum Action {
    /// Write files into `DIR/<user>/<kind>/`; `overwrite` replaces files with other content.
    Export { dir: PathBuf, overwrite: bool },
    /// Run the kind's `apply` statements on its `live` database, in one transaction.
    Apply,
}

/// One run: kind `name` for `user` (local@domain) of `host` as of `at`.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub name: &'a str,
    pub kind: &'a DbEntityConfig,
    pub user: &'a str,
    pub host: &'a str,
    pub at: &'a When,
    pub action: Action,
    /// Select and show the objects; write nothing, leave the live database alone.
    pub dry_run: bool,
}

/// What was done with the objects.
#[derive(Debug, Clone)]
pub enum Done {
    Exported(Vec<export::ExportedFile>),
    Applied(Vec<apply::StatementDone>),
    /// Dry run of an export: the files (path, objects) it would write.
    WouldExport(Vec<(PathBuf, usize)>),
    /// Dry run of an apply: the number of statements it would run, and whether they were
    /// prepared on the live database without error (then rolled back: nothing changes).
    WouldApply {
        statements: usize,
        checked: Result<(), String>,
    },
}

/// Time spent in each step.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// initdb and server start (and a folder dump's restore from the store).
    pub start: Duration,
    pub load: Duration,
    pub select: Duration,
    /// Stopping the instance and removing its folder.
    pub cleanup: Duration,
    /// The export or apply.
    pub action: Duration,
    pub total: Duration,
}

/// Everything a front end shows after a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub snapshot: Snapshot,
    pub dump_format: dumpfmt::DumpFormat,
    /// The PostgreSQL major version used, and its programs' folder.
    pub postgres: String,
    pub bin: PathBuf,
    /// Errors the loader went past (e.g. owners naming roles the instance lacks).
    pub load_errors: usize,
    pub first_load_errors: Vec<String>,
    pub dump_bytes: u64,
    pub selected: select::Selected,
    /// Per object, the shown columns as `name=value` (control characters replaced).
    pub objects: Vec<String>,
    pub done: Done,
    pub timings: Timings,
}

/// Runs `req` against `repo`; `step` hears each step as it starts (for a progress display).
pub fn run(
    repo: &Repository,
    req: &Request<'_>,
    step: &mut dyn FnMut(&str),
) -> Result<Outcome, DbEntityError> {
    let t0 = Instant::now();
    let kind = req.kind;
    let at_kind = format!("[db_entities.\"{}\"]", req.name);
    if matches!(req.action, Action::Apply) && kind.apply.is_empty() {
        return Err(DbEntityError::Config(format!(
            "{at_kind} has no `apply` statements: export with --to DIR, or declare apply and live"
        )));
    }
    let live = match (&req.action, &kind.live) {
        (Action::Apply, Some(l)) => Some(l.clone()),
        (Action::Apply, None) => {
            return Err(DbEntityError::Config(format!(
                "{at_kind}: apply needs `live`"
            )))
        }
        _ => None,
    };
    let live_as = match (&req.action, &kind.live_as) {
        (Action::Apply, Some(name)) => Some(instance::SysUser::lookup(name)?),
        _ => None,
    };
    let all = repo.snapshots()?;
    let snap = pick_part_at(&all, req.host, &kind.part, req.at)?.clone();
    let dump = load::locate(repo, &snap, &kind.dump)?;
    let major = dump.versions.needed();
    let bin = match (major, kind.pg_bin.as_deref()) {
        (Some(m), configured) => instance::bin_dir(m, configured)?,
        (None, Some(p)) => instance::bin_dir(dumpfmt::Major(0, 0), Some(p))?,
        (None, None) => {
            return Err(DbEntityError::Dump(format!(
                "{}/{} snapshot {}: the dump names no PostgreSQL version; set pg_bin in {at_kind}",
                snap.manifest.host,
                snap.manifest.part,
                snap.id.short()
            )))
        }
    };
    let postgres = major
        .map(|m| m.to_string())
        .unwrap_or_else(|| bin.display().to_string());
    let run_as = instance::SysUser::lookup(&kind.run_as)?;
    step(&format!(
        "starting a throwaway PostgreSQL {postgres} as {} in {}",
        run_as.name,
        kind.work_dir.display()
    ));
    let mut inst = instance::Instance::create(&kind.work_dir, &bin, &run_as)?;
    let restored = load::prepare(repo, &snap, &dump, &inst)?;
    inst.start(kind.jobs + 5)?;
    let t_start = t0.elapsed();
    step(&format!("loading the {} dump", dump.format));
    let loaded = load::load(repo, &dump, &inst, kind.jobs)?;
    let t_load = t0.elapsed();
    step("selecting the user's objects");
    let params = select::UserParams::new(req.user);
    let selected = select::select(&inst, &kind.select, &params);
    let t_select = t0.elapsed();
    let psql = inst.bin("psql");
    // The instance goes before the live database is touched (and on a failed selection).
    inst.close()?;
    let t_cleanup = t0.elapsed();
    let selected = selected.map_err(|e| match loaded.first_errors.first() {
        Some(first) => DbEntityError::Select(format!(
            "{e} (loading the dump went past {} error(s), the first: {first})",
            loaded.errors
        )),
        None => e,
    })?;
    let shown_cols = kind
        .shown(
            &selected
                .columns
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    for c in &shown_cols {
        if selected.column(c).is_none() {
            return Err(DbEntityError::Config(format!(
                "{at_kind}: show names {c:?}, which the selection does not have"
            )));
        }
    }
    let objects = selected
        .rows
        .iter()
        .map(|r| {
            shown_cols
                .iter()
                .filter_map(|c| {
                    selected
                        .column(c)
                        .map(|i| format!("{c}={}", printable(&export::as_text(&r[i]))))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let done = match (&req.action, req.dry_run) {
        (Action::Export { dir, overwrite }, dry) => {
            let files = export::render(req.name, kind, &selected)?;
            if dry {
                let base = dir
                    .join(export::file_stem(req.user))
                    .join(export::file_stem(req.name));
                Done::WouldExport(files.iter().map(|(n, k, _)| (base.join(n), *k)).collect())
            } else {
                step("writing the files");
                Done::Exported(export::write(dir, req.user, req.name, &files, *overwrite)?)
            }
        }
        (Action::Apply, dry) => {
            let conninfo = live.unwrap_or_default();
            let live = apply::Live {
                psql: &psql,
                conninfo: &conninfo,
                run_as: live_as.as_ref(),
            };
            if dry {
                step("checking the apply statements on the live database (prepared, rolled back)");
                Done::WouldApply {
                    statements: kind.apply.len(),
                    checked: apply::check(live, &selected, &kind.apply, &params)
                        .map_err(|e| e.to_string()),
                }
            } else {
                step("applying to the live database in one transaction");
                Done::Applied(apply::apply(live, &selected, &kind.apply, &params)?)
            }
        }
    };
    let total = t0.elapsed();
    Ok(Outcome {
        snapshot: snap,
        dump_format: dump.format,
        postgres,
        bin,
        load_errors: loaded.errors,
        first_load_errors: loaded.first_errors,
        dump_bytes: loaded.bytes + restored,
        selected,
        objects,
        done,
        timings: Timings {
            start: t_start,
            load: t_load - t_start,
            select: t_select - t_load,
            cleanup: t_cleanup - t_select,
            action: total - t_cleanup,
            total,
        },
    })
}

/// Text for a terminal: control characters (escape sequences from the data) become `?`, and
/// long values are cut.
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(80)
        .collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}
