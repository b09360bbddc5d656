//! One run of a server's backup, as every front end starts it: the parts to back up (from the
//! command line or the config, with the vendor switches), each part's pre/post hooks, one
//! snapshot per part under a shared store lock, the config's retention after a fully successful
//! run (then prune), and the post-backup hook. What happens is told to a [`RunObserver`], so the
//! CLI prints it and another front end shows it its own way; nothing here prints.

use super::hooks::{self, post_backup_command, NewSnapshot, PartInfo, Status};
use super::metrics::{self, PartRun};
use super::{backup_part, BackupError, BackupOptions, PartReport, PartSpec, Progress};
use crate::config::{part_skipped_because, Config, RetentionConfig, ARCHIVED_EMAILS_PART};
use crate::id::SnapshotId;
use crate::model::SnapshotStatus;
use crate::repo::{named_snapshots, RepoError, Repository};
use crate::retention::forget::{self, Plan, Selection};
use crate::retention::prune::{prune, PruneError, PruneOptions, PruneReport};
use crate::store::lock::{LockError, LockKind, StoreLock};
use crate::store::now_ns;
use crate::timefmt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("--part {given:?}: {why}")]
    BadPart { given: String, why: String },
    #[error("nothing to back up: give --part NAME=PATH or [parts] in the config file")]
    NothingToBackUp,
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A part to back up this run, with the hooks its config gives it (none for `--part`).
#[derive(Debug, Clone)]
pub struct PlannedPart {
    pub spec: PartSpec,
    pub pre: Option<String>,
    pub post: Option<String>,
}

/// Everything one run needs; a front end builds it from its arguments and the config.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub parts: Vec<PlannedPart>,
    pub options: BackupOptions,
    /// The store's path as hooks are told it.
    pub store: PathBuf,
    /// How long to wait for a running prune or repair.
    pub lock_wait: Duration,
    /// Applied only when every part succeeded.
    pub retention: Option<RetentionConfig>,
    /// The configured post-backup hook (the vendor's script is used when present and none is).
    pub post_backup_hook: Option<String>,
    /// Where to write Prometheus metrics after the run (`metrics_dir` of the config).
    pub metrics_dir: Option<PathBuf>,
    /// Run at the nightly unit's low CPU and I/O priority (`priority` of the config).
    pub background: bool,
}

/// How the run went, worst first: a front end turns it into an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// A part or hook failed, or retention did.
    Failed,
    /// Every part has a snapshot, but some files were not backed up.
    Partial,
    Complete,
}

/// What happened during a run, in order.
pub enum RunEvent<'a> {
    /// A configured part that this run does not back up, and why (a switch, `enabled = false`).
    PartSkipped {
        part: &'a str,
        why: String,
    },
    Warning(String),
    /// A part's snapshot was written.
    PartDone {
        report: &'a PartReport,
        seconds: f64,
    },
    /// Something failed; the run goes on with the next step and ends as failed.
    Error(String),
    /// Retention forgot snapshots (`removed` of the plan's verdicts).
    Retention {
        plan: &'a Plan,
        removed: usize,
    },
    Pruned(&'a PruneReport),
    /// Prune after retention found the store busy: nothing is wrong, a later prune frees it.
    PruneSkipped {
        holder: String,
    },
}

/// A front end's view of a run.
pub trait RunObserver {
    fn event(&self, event: RunEvent<'_>);
    /// Runs one part's backup; a front end may show `progress` meanwhile.
    fn watch_part(&self, part: &str, progress: &Progress, work: &mut dyn FnMut()) {
        let _ = (part, progress);
        work();
    }
}

/// What one part of the run gave: its snapshot (id, status, start) if one was written.
struct PartOutcome {
    part: String,
    snapshot: Option<(SnapshotId, SnapshotStatus, i64)>,
    seconds: f64,
    bytes_added: u64,
}

/// `NAME=PATH` as given to `--part`.
pub fn parse_part(s: &str) -> Result<PartSpec, RunError> {
    let bad = |why: String| RunError::BadPart {
        given: s.to_string(),
        why,
    };
    let (name, path) = s.split_once('=').ok_or_else(|| {
        bad("expected NAME=PATH, e.g. mail/imap=/var/spool/cyrus/data".to_string())
    })?;
    let name = name.trim_matches('/');
    if name.is_empty()
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || name == "last"
    {
        return Err(bad(format!("invalid part name {name:?}")));
    }
    Ok(PartSpec {
        name: name.to_string(),
        path: PathBuf::from(path),
        compression_level: None,
    })
}

/// The parts of `--part`, else the config's parts that are enabled (with the vendor switches
/// `backup_emails` / `backup_archived_emails`); skipped ones are told so none goes unnoticed.
pub fn planned_parts(
    config: &Config,
    cli_parts: &[String],
    observer: &dyn RunObserver,
) -> Result<Vec<PlannedPart>, RunError> {
    if !cli_parts.is_empty() {
        return cli_parts
            .iter()
            .map(|s| {
                Ok(PlannedPart {
                    spec: parse_part(s)?,
                    pre: None,
                    post: None,
                })
            })
            .collect();
    }
    for (name, p) in &config.parts {
        if let Some(why) = part_skipped_because(name.trim_matches('/'), p, config) {
            observer.event(RunEvent::PartSkipped {
                part: name.trim_matches('/'),
                why: why.to_string(),
            });
        }
    }
    if config.backup_archived_emails && !config.parts.contains_key(ARCHIVED_EMAILS_PART) {
        observer.event(RunEvent::Warning(format!(
            "backup_archived_emails = true but no [parts.\"{ARCHIVED_EMAILS_PART}\"] says where archives are"
        )));
    }
    Ok(config
        .parts_to_back_up()
        .into_iter()
        .map(|(name, p)| PlannedPart {
            spec: PartSpec {
                name,
                path: p.path.clone(),
                compression_level: p.compression_level,
            },
            pre: p.pre.clone(),
            post: p.post.clone(),
        })
        .collect())
}

/// Runs the whole backup of one server as planned. Errors of single parts and hooks are told to
/// the observer and make the status [`RunStatus::Failed`]; only a run that cannot start (no
/// parts, the store lock not had) is an `Err`.
pub fn run_server(
    repo: &Repository,
    plan: &RunPlan,
    observer: &dyn RunObserver,
) -> Result<RunStatus, RunError> {
    if plan.parts.is_empty() {
        return Err(RunError::NothingToBackUp);
    }
    if plan.background {
        super::settings::yield_to_the_server();
    }
    let lock = StoreLock::acquire(
        repo.store.shared_backend(),
        LockKind::Shared,
        "backup",
        plan.lock_wait,
    )?;
    // The catalog was synced before we held the lock: a prune that ran meanwhile (maybe the one
    // we waited for) deleted packs it still lists, and deduplicating against those would write
    // snapshots that reference deleted chunks.
    repo.sync()?;
    // Leftovers of a backup killed on this host would otherwise wait for `repair`.
    match repo.store.remove_orphan_temp_files() {
        Ok(removed) => {
            for r in removed {
                log::info!("removed {r}, left by a killed bmbackup");
            }
        }
        Err(e) => log::warn!("cannot remove leftovers of killed backups: {e}"),
    }
    let mut status = RunStatus::Complete;
    let fail = |observer: &dyn RunObserver, message: String| {
        observer.event(RunEvent::Error(message));
        RunStatus::Failed
    };
    // Any hook failure makes the post-backup hook's status partial, even when every snapshot is
    // complete.
    let mut hook_failed = false;
    let mut outcomes = Vec::new();
    let host = &plan.options.host;
    for part in &plan.parts {
        let info = PartInfo {
            part: &part.spec.name,
            path: &part.spec.path,
            host,
            store: &plan.store,
        };
        let mut outcome = PartOutcome {
            part: part.spec.name.clone(),
            snapshot: None,
            seconds: 0.0,
            bytes_added: 0,
        };
        let part_started = Instant::now();
        let pre_ok = match &part.pre {
            Some(cmd) => {
                let hook = format!("pre hook of part {}", part.spec.name);
                match hooks::run(&hook, cmd, &hooks::pre_env(&info)) {
                    Ok(()) => true,
                    Err(e) => {
                        hook_failed = true;
                        status = fail(observer, format!("{e}; part {} skipped", part.spec.name));
                        false
                    }
                }
            }
            None => true,
        };
        if pre_ok {
            match backup_one(repo, &part.spec, &plan.options, &lock, observer) {
                Ok(r) => {
                    if r.manifest.status == SnapshotStatus::Partial && status == RunStatus::Complete
                    {
                        status = RunStatus::Partial;
                    }
                    outcome.snapshot = Some((r.id, r.manifest.status, r.manifest.started_ns));
                    outcome.bytes_added = r.manifest.bytes_added;
                }
                Err(e) => {
                    // Errors about the source already name the part.
                    let text = e.to_string();
                    let named = format!("part {:?}", part.spec.name);
                    let text = if text.contains(&named) {
                        text
                    } else {
                        format!("part {}: {text}", part.spec.name)
                    };
                    status = fail(observer, text);
                }
            }
        }
        // Runs whatever happened, so it can undo what `pre` set up (a dump, a mounted LVM snapshot).
        if let Some(cmd) = &part.post {
            let (id, st) = match &outcome.snapshot {
                Some((id, st, _)) => (Some(id.to_hex()), part_status(*st)),
                None => (None, Status::Failed),
            };
            let hook = format!("post hook of part {}", part.spec.name);
            if let Err(e) = hooks::run(&hook, cmd, &hooks::post_env(&info, id.as_deref(), st)) {
                hook_failed = true;
                status = fail(observer, e.to_string());
            }
        }
        outcome.seconds = part_started.elapsed().as_secs_f64();
        outcomes.push(outcome);
    }
    // Retention only after a fully successful run: a failing job must not thin out history.
    // Forget runs under the backup's shared lock; prune takes an exclusive one, so ours goes first.
    let retention = plan
        .retention
        .as_ref()
        .filter(|_| status == RunStatus::Complete);
    let forgot = match retention {
        Some(r) => match apply_retention(repo, r, host, &outcomes, &lock, observer) {
            Ok(n) => n,
            Err(e) => {
                status = fail(observer, format!("retention after backup: {e}"));
                0
            }
        },
        None => 0,
    };
    drop(lock);
    if forgot > 0 {
        match prune(repo, &PruneOptions::default()) {
            Ok(report) => observer.event(RunEvent::Pruned(&report)),
            // Another host's backup is running on a shared store: nothing is wrong, the space
            // is freed by a later run's prune, so the job must not be reported as failed.
            Err(PruneError::Lock(LockError::Busy(holder))) => {
                observer.event(RunEvent::PruneSkipped {
                    holder: holder.to_string(),
                })
            }
            Err(e) => status = fail(observer, format!("prune after retention: {e}")),
        }
    }
    if let Some(cmd) = post_backup_command(plan.post_backup_hook.as_deref()) {
        let env = post_backup_env_of(repo, plan, &outcomes, hook_failed);
        if let Err(e) = hooks::run("post-backup", &cmd, &env) {
            // The snapshots stay: they are good; only the follow-up (copy, symlink…) failed.
            status = fail(observer, e.to_string());
        }
    }
    if let Some(dir) = &plan.metrics_dir {
        if let Err(e) = write_metrics(repo, plan, &outcomes, dir) {
            observer.event(RunEvent::Warning(format!(
                "metrics not written to {}: {e}",
                dir.display()
            )));
        }
    }
    Ok(status)
}

/// The run's Prometheus metrics into `dir` (see [`super::metrics`]).
fn write_metrics(
    repo: &Repository,
    plan: &RunPlan,
    outcomes: &[PartOutcome],
    dir: &std::path::Path,
) -> Result<(), String> {
    let parts: Vec<PartRun> = outcomes
        .iter()
        .map(|o| PartRun {
            part: o.part.clone(),
            status: o.snapshot.as_ref().map(|(_, st, _)| *st),
            seconds: o.seconds,
            bytes_added: o.bytes_added,
        })
        .collect();
    let all = repo.snapshots().map_err(|e| e.to_string())?;
    let text = metrics::render(
        &plan.options.host,
        &parts,
        &all,
        &plan.store,
        match repo.store.local_root() {
            Some(root) => metrics::disk_usage(root),
            None => repo
                .store
                .backend()
                .stored_bytes()
                .ok()
                .flatten()
                .unwrap_or(0),
        },
        now_ns(),
    );
    metrics::write_atomically(dir, &text).map_err(|e| e.to_string())
}

fn part_status(s: SnapshotStatus) -> Status {
    match s {
        SnapshotStatus::Complete => Status::Complete,
        SnapshotStatus::Partial => Status::Partial,
    }
}

fn backup_one(
    repo: &Repository,
    part: &PartSpec,
    opts: &BackupOptions,
    lock: &StoreLock,
    observer: &dyn RunObserver,
) -> Result<PartReport, BackupError> {
    let progress = Progress::default();
    let started = Instant::now();
    let mut result = None;
    observer.watch_part(&part.name, &progress, &mut || {
        result = Some(backup_part(repo, part, opts, &progress, lock));
    });
    let report = match result {
        Some(r) => r?,
        // A front end that did not run the work: nothing was backed up.
        None => return Err(BackupError::NotRun(part.name.clone())),
    };
    observer.event(RunEvent::PartDone {
        report: &report,
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(report)
}

/// Forgets, for this host and the parts just backed up, what the config's `[retention]` does
/// not keep; returns how many snapshots went.
fn apply_retention(
    repo: &Repository,
    retention: &RetentionConfig,
    host: &str,
    outcomes: &[PartOutcome],
    lock: &StoreLock,
    observer: &dyn RunObserver,
) -> Result<usize, String> {
    let policy = retention.policy().map_err(|e| format!("[retention] {e}"))?;
    let selection = Selection {
        host: Some(host.to_string()),
        parts: outcomes.iter().map(|o| o.part.clone()).collect(),
    };
    let plan = forget::plan(repo, &selection, &policy, now_ns()).map_err(|e| e.to_string())?;
    let removed = forget::apply(repo, &plan, lock).map_err(|e| e.to_string())?;
    if removed > 0 {
        observer.event(RunEvent::Retention {
            plan: &plan,
            removed,
        });
    }
    Ok(removed)
}

/// The post-backup hook's environment: the run's snapshots with their folder names.
fn post_backup_env_of(
    repo: &Repository,
    plan: &RunPlan,
    outcomes: &[PartOutcome],
    hook_failed: bool,
) -> Vec<(String, String)> {
    // Names as in the mount: recorded at commit (computed for snapshots from before that).
    let all = repo.snapshots().unwrap_or_default();
    let names: HashMap<SnapshotId, String> = named_snapshots(&all)
        .into_iter()
        .map(|(s, n)| (s.id, n))
        .collect();
    let mut snapshots = Vec::new();
    let mut failed = Vec::new();
    for o in outcomes {
        match &o.snapshot {
            Some((id, status, started_ns)) => snapshots.push(NewSnapshot {
                host: plan.options.host.clone(),
                part: o.part.clone(),
                date: names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| timefmt::folder_name(*started_ns)),
                id: id.to_hex(),
                status: status.as_str().to_string(),
            }),
            None => failed.push(o.part.clone()),
        }
    }
    let status = if snapshots.is_empty() {
        Status::Failed
    } else if failed.is_empty() && !hook_failed && snapshots.iter().all(|s| s.status == "complete")
    {
        Status::Complete
    } else {
        Status::Partial
    };
    hooks::post_backup_env(&plan.store, status, &snapshots, &failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        assert_eq!(parse_part("mail/imap=/x").unwrap().name, "mail/imap");
        assert_eq!(parse_part("/bm/pgsql/=/x").unwrap().name, "bm/pgsql");
        assert!(parse_part("mail/imap").is_err());
        assert!(parse_part("a/../b=/x").is_err());
        assert!(parse_part("=/x").is_err());
    }
}
