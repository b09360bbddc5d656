//! Running a planned restore as a background job: a user's, archive's or shared mailbox
//! ([`crate::restore::user::execute`], then the next steps of
//! [`crate::restore::next_steps`]), a folder of a part, or a whole server
//! ([`crate::restore::restore`]). A restore that removes or overwrites live data runs only when
//! the request confirms exactly the paths the plan names.

use super::api_restore::{body_path, prepare, Planned, Prepared};
use super::app::Ctx;
use super::http::Response;
use super::http::{error, json};
use super::jobs::Job;
use super::paths::node_in;
use crate::model::Snapshot;
use crate::restore::ls::{components, size_below, Node};
use crate::restore::next_steps::next_steps;
use crate::restore::user::execute;
use crate::restore::{restore, RestoreOptions, RestoreReport};
use serde_json::{json, Value};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A folder (or file) of a part: into a new `Restored-<date>` folder beside it by default.
pub fn prepare_folder(
    repo: &crate::repo::Repository,
    snap: Snapshot,
    name: &str,
    body: &Value,
    dest_kind: &str,
    to: Option<PathBuf>,
) -> Result<Prepared, Response> {
    let path = body_path(body)?;
    let comps = components(&path);
    let source = PathBuf::from(&snap.manifest.source);
    let parent: PathBuf = comps[..comps.len().saturating_sub(1)]
        .iter()
        .map(|c| std::ffi::OsStr::from_bytes(c))
        .collect();
    let node = node_in(repo, &snap, &path)?;
    // A file is restored into its folder (under its own name); a folder stands for itself.
    let last = match node {
        Node::Entry(e) if e.subtree().is_none() => None,
        _ => comps.last().map(|c| std::ffi::OsStr::from_bytes(c)),
    };
    let file = last.is_none() && !comps.is_empty();
    let (dest, remove_first, overwrite) = match dest_kind {
        "inplace" => match last {
            Some(l) => (source.join(&parent).join(l), true, true),
            None if file => (source.join(&parent), false, true),
            None => (source.clone(), false, true),
        },
        "to" => (to.unwrap_or_default(), false, false),
        _ => {
            let mut d = free_folder(&source.join(&parent), &format!("Restored-{name}"));
            if let Some(l) = last {
                d.push(l);
            }
            (d, false, false)
        }
    };
    let shown = String::from_utf8_lossy(&path).into_owned();
    let removes = match (remove_first, overwrite) {
        (true, _) => {
            let loss = crate::restore::inplace_loss::what_goes(repo, &snap, &path, &dest)
                .map_err(|e| super::http::error(500, &e.to_string()))?;
            vec![format!(
                "{} (removed first; lost: {})",
                dest.display(),
                loss.describe()
            )]
        }
        (false, true) => vec![format!("{} (files overwritten)", dest.display())],
        _ => Vec::new(),
    };
    Ok(Prepared {
        items: vec![format!(
            "{}/{}:/{shown} of {name} into {}",
            snap.manifest.host,
            snap.manifest.part,
            dest.display()
        )],
        what: format!(
            "{}/{}:/{shown} as of {name} into {}",
            snap.manifest.host,
            snap.manifest.part,
            dest.display()
        ),
        planned: Planned::Folder {
            snap,
            path,
            dest,
            remove_first,
            overwrite,
        },
        removes,
        notes: Vec::new(),
    })
}

/// `dir/base`, or `dir/base-2`, `-3`… when an earlier restore of the same date already made
/// it: a second restore never dead-ends on the first one's folder, nor merges into it.
pub fn free_folder(dir: &std::path::Path, base: &str) -> PathBuf {
    let first = dir.join(base);
    if std::fs::symlink_metadata(&first).is_err() {
        return first;
    }
    (2..1000)
        .map(|n| dir.join(format!("{base}-{n}")))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or(first)
}

/// `POST /api/restore/run`: `confirm` must list the plan's `removes` when it has any.
pub fn run(ctx: &Ctx<'_>, body: &Value) -> Response {
    let p = match prepare(ctx, body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.removes.is_empty() {
        let confirmed: Vec<&str> = body
            .get("confirm")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if confirmed != p.removes.iter().map(String::as_str).collect::<Vec<_>>() {
            return error(
                409,
                &format!(
                    "this restore replaces live data; confirm it by naming: {}",
                    p.removes.join(", ")
                ),
            );
        }
    }
    log::info!(target: super::LOG_TARGET, "{} started a restore: {}", ctx.who, p.what);
    let app = Arc::clone(ctx.app);
    let job = ctx
        .app
        .jobs
        .start("restore", p.what.clone(), ctx.who.clone(), move |job| {
            let outcome = match app.open_repo() {
                Ok(repo) => execute_all(&app, &repo, p, job),
                Err(e) => {
                    job.log(format!("error: {e}"));
                    "failed"
                }
            };
            log::info!(target: super::LOG_TARGET, "{}: restore {} finished: {outcome}", job.who, job.what);
            job.finish(outcome);
        });
    json(200, &json!({ "job": job.id }))
}

fn report_outcome(job: &Job, r: &RestoreReport, into: &std::path::Path) -> &'static str {
    let n = |count: u64, one: &str| format!("{count} {one}{}", if count == 1 { "" } else { "s" });
    job.log(format!(
        "{}, {}, {} written into {}{}",
        n(r.files, "file"),
        n(r.dirs, "folder"),
        crate::cli::format::size(r.bytes),
        into.display(),
        if r.skipped_identical > 0 {
            format!(" ({} kept)", n(r.skipped_identical, "identical file"))
        } else {
            String::new()
        }
    ));
    for (path, why) in r.failed.iter().take(50) {
        job.log(format!("not restored: {path}: {why}"));
    }
    if r.failed.is_empty() {
        "complete"
    } else {
        "partial"
    }
}

fn worst(a: &'static str, b: &'static str) -> &'static str {
    let rank = |s| match s {
        "failed" => 2,
        "partial" => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn execute_all(
    app: &super::app::App,
    repo: &crate::repo::Repository,
    p: Prepared,
    job: &Job,
) -> &'static str {
    for n in &p.notes {
        job.log(format!("note: {n}"));
    }
    let opts = |overwrite| RestoreOptions {
        overwrite,
        progress: Some(Arc::clone(&job.progress)),
        ..RestoreOptions::default()
    };
    let mut outcome = "complete";
    match p.planned {
        Planned::User {
            plan,
            user,
            dest,
            conf,
        } => {
            let mut expected = 0;
            for i in &plan.items {
                expected += size_below(repo, &i.snapshot, i.path.as_bytes()).unwrap_or(0);
            }
            job.expected.store(expected, Ordering::Relaxed);
            let mut done = Vec::new();
            for item in &plan.items {
                job.log(format!(
                    "restoring {user}'s {} ({}/{} snapshot {}) into {}",
                    item.what.name(),
                    item.snapshot.manifest.host,
                    item.snapshot.manifest.part,
                    item.snapshot.id.short(),
                    item.dest.display()
                ));
                match execute(repo, item, &opts(false)) {
                    Ok(d) => {
                        outcome = worst(outcome, report_outcome(job, &d.report, &item.dest));
                        done.extend(d.new_folder);
                    }
                    Err(e) => {
                        job.log(format!("error: {e}"));
                        return "failed";
                    }
                }
            }
            let work = app
                .settings
                .cache_dir
                .clone()
                .or_else(|| app.settings.config.cache_dir.clone())
                .unwrap_or_else(crate::catalog::default_cache_dir)
                .join("restore-user");
            match next_steps(&dest, &plan, &done, conf.as_ref(), &work, &user) {
                Ok(steps) if app.settings.config.entities.run_next_steps => {
                    // The config allows it: the mail is made visible here, not by the admin
                    // at a terminal; the commands not run (after a failure) are shown.
                    let ran = crate::restore::next_steps::run(&steps.commands);
                    let mut failed = false;
                    for r in &ran {
                        job.log(format!("$ {}", r.command));
                        for line in r.output.lines().take(200) {
                            job.log(format!("  {line}"));
                        }
                        failed |= !r.ok;
                    }
                    let mut s = job.state.lock();
                    if failed {
                        s.explain = format!(
                            "{} A command failed (its output is in the log): run the rest as the cyrus user.",
                            steps.explain
                        );
                        s.next = steps.commands[ran.len().saturating_sub(1)..].to_vec();
                        outcome = worst(outcome, "partial");
                    } else if !ran.is_empty() {
                        job.log(
                            "the Cyrus commands ran: the restored mail is visible in the user's mail client",
                        );
                    }
                }
                Ok(steps) => {
                    let mut s = job.state.lock();
                    s.explain = steps.explain;
                    s.next = steps.commands;
                }
                Err(e) => {
                    job.log(format!("error: {e}"));
                    return "failed";
                }
            }
        }
        Planned::Folder {
            snap,
            path,
            dest,
            remove_first,
            overwrite,
        } => {
            job.expected.store(
                size_below(repo, &snap, &path).unwrap_or(0),
                Ordering::Relaxed,
            );
            if remove_first {
                if let Err(e) = crate::restore::remove_tree(&dest) {
                    job.log(format!("error: cannot remove {}: {e}", dest.display()));
                    return "failed";
                }
            }
            if let Err(e) = std::fs::create_dir_all(&dest) {
                job.log(format!("error: cannot create {}: {e}", dest.display()));
                return "failed";
            }
            match restore(repo, &snap, &path, &dest, &opts(overwrite)) {
                Ok(r) => outcome = report_outcome(job, &r, &dest),
                Err(e) => {
                    job.log(format!("error: {e}"));
                    return "failed";
                }
            }
        }
        Planned::Db(plan) => outcome = super::api_restore_db::execute(app, repo, job, plan),
        Planned::Dav(plan) => outcome = super::api_restore_dav::execute(app, repo, job, plan),
        Planned::Server { plan, overwrite } => {
            let expected = plan.items.iter().map(|i| i.snapshot.manifest.bytes).sum();
            job.expected.store(expected, Ordering::Relaxed);
            for item in &plan.items {
                let m = &item.snapshot.manifest;
                job.log(format!(
                    "restoring {}/{} (snapshot {}) into {}",
                    m.host,
                    m.part,
                    item.snapshot.id.short(),
                    item.dest.display()
                ));
                match restore(repo, &item.snapshot, b"", &item.dest, &opts(overwrite)) {
                    Ok(r) => outcome = worst(outcome, report_outcome(job, &r, &item.dest)),
                    Err(e) => {
                        job.log(format!("error: {e}"));
                        outcome = "failed";
                    }
                }
            }
        }
    }
    outcome
}
