//! `bmbackup backup`: one snapshot per configured part, with progress on a terminal, each part's
//! pre/post hooks, the config's retention after a fully successful run, then the post-backup hook.

use super::{format, Cli, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL};
use crate::backup::{backup_part, BackupOptions, PartSpec, Progress};
use crate::config::{part_skipped_because, Config, RetentionConfig, ARCHIVED_EMAILS_PART};
use crate::forget::{self, Selection};
use crate::hooks::{self, post_backup_command, NewSnapshot, PartInfo, Status};
use crate::id::SnapshotId;
use crate::model::SnapshotStatus;
use crate::prune::{prune, PruneError, PruneOptions};
use crate::repo::named_snapshots;
use crate::store::lock::{LockError, LockKind, StoreLock};
use crate::store::now_ns;
use crate::timefmt;
use clap::Args;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// This server's address as shown in the store [default: the primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// A part to back up, NAME=PATH (e.g. mail/imap=/var/spool/cyrus/data); repeatable.
    /// Overrides the parts of the config file.
    #[arg(long = "part", value_name = "NAME=PATH")]
    pub parts: Vec<String>,
    /// zstd level (1-19).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compression_level: Option<i32>,
    /// Threads reading and compressing files [default: number of CPUs].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Record the snapshots as taken at this time (same formats as --at) instead of now; for
    /// simulating a history in tests and benchmarks only.
    #[arg(long, hide = true, value_name = "WHEN")]
    pub simulate_time: Option<String>,
    /// Seconds to wait for a running prune or repair to finish.
    #[arg(long, default_value_t = 3600)]
    pub lock_wait: u64,
}

fn parse_part(s: &str) -> anyhow::Result<PartSpec> {
    let (name, path) = s.split_once('=').ok_or_else(|| {
        anyhow::anyhow!("--part {s:?}: expected NAME=PATH, e.g. mail/imap=/var/spool/cyrus/data")
    })?;
    let name = name.trim_matches('/');
    if name.is_empty()
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || name == "last"
    {
        anyhow::bail!("--part {s:?}: invalid part name {name:?}");
    }
    Ok(PartSpec {
        name: name.to_string(),
        path: PathBuf::from(path),
    })
}

/// A part to back up this run, with the hooks its config gives it (none for `--part`).
struct PlannedPart {
    spec: PartSpec,
    pre: Option<String>,
    post: Option<String>,
}

/// The parts of `--part`, else the config's parts that are enabled (with the vendor switches
/// `backup_emails` / `backup_archived_emails`); skipped ones are named so none goes unnoticed.
fn planned_parts(config: &Config, cli_parts: &[String]) -> anyhow::Result<Vec<PlannedPart>> {
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
            crate::say!("{}: skipped ({why})", name.trim_matches('/'));
        }
    }
    if config.backup_archived_emails && !config.parts.contains_key(ARCHIVED_EMAILS_PART) {
        crate::tell!("bmbackup: warning: backup_archived_emails = true but no [parts.\"{ARCHIVED_EMAILS_PART}\"] says where archives are");
    }
    Ok(config
        .parts_to_back_up()
        .into_iter()
        .map(|(name, p)| PlannedPart {
            spec: PartSpec {
                name,
                path: p.path.clone(),
            },
            pre: p.pre.clone(),
            post: p.post.clone(),
        })
        .collect())
}

/// What one part of the run gave: its snapshot (id, status) if one was written.
struct PartOutcome {
    part: String,
    snapshot: Option<(SnapshotId, SnapshotStatus, i64)>,
}

pub fn run(cli: &Cli, a: &BackupArgs) -> anyhow::Result<i32> {
    // Writes to a closed pipe then fail (ignored by say!/tell!) instead of killing the run.
    // SAFETY: changing a signal disposition; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let (common, repo) = cli.open_repo()?;
    let parts = planned_parts(&common.config, &a.parts)?;
    if parts.is_empty() {
        anyhow::bail!("nothing to back up: give --part NAME=PATH or [parts] in the config file");
    }
    let host = a
        .host
        .clone()
        .or_else(|| common.config.host.clone())
        .unwrap_or_else(|| crate::hostaddr::primary_ipv4().to_string());
    let opts = BackupOptions {
        host,
        compression_level: a
            .compression_level
            .or(common.config.compression_level)
            .unwrap_or(3),
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        started_at_ns: match &a.simulate_time {
            Some(w) => Some(crate::when::parse_when(w, crate::store::now_ns())?),
            None => None,
        },
    };
    let lock = StoreLock::acquire(
        repo.store.shared_backend(),
        LockKind::Shared,
        "backup",
        Duration::from_secs(a.lock_wait),
    )?;
    // The catalog was synced before we held the lock: a prune that ran meanwhile (maybe the one
    // we waited for) deleted packs it still lists, and deduplicating against those would write
    // snapshots that reference deleted chunks.
    repo.sync()?;
    let mut code = EXIT_OK;
    // Any hook failure makes the run's status partial, even when every snapshot is complete.
    let mut hook_failed = false;
    let mut outcomes = Vec::new();
    for part in &parts {
        let info = PartInfo {
            part: &part.spec.name,
            path: &part.spec.path,
            host: &opts.host,
            store: &common.store,
        };
        let mut outcome = PartOutcome {
            part: part.spec.name.clone(),
            snapshot: None,
        };
        let pre_ok = match &part.pre {
            Some(cmd) => {
                let hook = format!("pre hook of part {}", part.spec.name);
                match hooks::run(&hook, cmd, &hooks::pre_env(&info)) {
                    Ok(()) => true,
                    Err(e) => {
                        crate::tell!("bmbackup: error: {e}; part {} skipped", part.spec.name);
                        hook_failed = true;
                        code = EXIT_ERROR;
                        false
                    }
                }
            }
            None => true,
        };
        if pre_ok {
            match backup_one(&repo, &part.spec, &opts, &lock) {
                Ok(r) => {
                    if r.manifest.status == SnapshotStatus::Partial && code == EXIT_OK {
                        code = EXIT_PARTIAL;
                    }
                    outcome.snapshot = Some((r.id, r.manifest.status, r.manifest.started_ns));
                }
                Err(e) => {
                    crate::tell!("bmbackup: error: part {}: {e}", part.spec.name);
                    code = EXIT_ERROR;
                }
            }
        }
        // Runs whatever happened, so it can undo what `pre` set up (a dump, a mounted LVM snapshot).
        if let Some(cmd) = &part.post {
            let (id, status) = match &outcome.snapshot {
                Some((id, st, _)) => (Some(id.to_hex()), part_status(*st)),
                None => (None, Status::Failed),
            };
            let hook = format!("post hook of part {}", part.spec.name);
            if let Err(e) = hooks::run(&hook, cmd, &hooks::post_env(&info, id.as_deref(), status)) {
                crate::tell!("bmbackup: error: {e}");
                hook_failed = true;
                code = EXIT_ERROR;
            }
        }
        outcomes.push(outcome);
    }
    // Retention only after a fully successful run: a failing job must not thin out history.
    // Forget runs under the backup's shared lock; prune takes an exclusive one, so ours goes first.
    let retention = common.config.retention.as_ref().filter(|_| code == EXIT_OK);
    let forgot = match retention {
        Some(r) => match apply_retention(&repo, r, &opts.host, &outcomes, &lock) {
            Ok(n) => n,
            Err(e) => {
                crate::tell!("bmbackup: error: retention after backup: {e:#}");
                code = EXIT_ERROR;
                0
            }
        },
        None => 0,
    };
    drop(lock);
    if forgot > 0 {
        match prune(&repo, &PruneOptions::default()) {
            Ok(report) => crate::say!("prune: {report}"),
            // Another host's backup is running on a shared store: nothing is wrong, the space
            // is freed by a later run's prune, so the job must not be reported as failed.
            Err(PruneError::Lock(LockError::Busy(holder))) => {
                crate::say!(
                    "prune: skipped, the store is busy ({holder}); a later prune frees the space"
                );
            }
            Err(e) => {
                crate::tell!("bmbackup: error: prune after retention: {e}");
                code = EXIT_ERROR;
            }
        }
    }
    if let Some(cmd) = post_backup_command(common.config.post_backup_hook.as_deref()) {
        let env = post_backup_env_of(&repo, &common.store, &opts.host, &outcomes, hook_failed);
        if let Err(e) = hooks::run("post-backup", &cmd, &env) {
            // The snapshots stay: they are good; only the follow-up (copy, symlink…) failed.
            crate::tell!("bmbackup: error: {e}");
            code = EXIT_ERROR;
        }
    }
    Ok(code)
}

fn part_status(s: SnapshotStatus) -> Status {
    match s {
        SnapshotStatus::Complete => Status::Complete,
        SnapshotStatus::Partial => Status::Partial,
    }
}

/// Backs up one part and prints its summary line (and its unreadable files, if any).
fn backup_one(
    repo: &crate::repo::Repository,
    part: &PartSpec,
    opts: &BackupOptions,
    lock: &StoreLock,
) -> Result<crate::backup::PartReport, crate::backup::BackupError> {
    let progress = Progress::default();
    let started = Instant::now();
    let r = with_progress(&progress, &part.name, || {
        backup_part(repo, part, opts, &progress, lock)
    })?;
    let m = &r.manifest;
    let secs = started.elapsed().as_secs_f64();
    crate::say!(
        "{}/{}: snapshot {} {}: {} files, {}, read {}, added {} in {:.1}s ({:.0} MB/s read)",
        m.host,
        m.part,
        r.id.short(),
        m.status.as_str(),
        m.files,
        format::size(m.bytes),
        format::size(m.bytes_read),
        format::size(m.bytes_added),
        secs,
        m.bytes_read as f64 / 1e6 / secs.max(1e-9)
    );
    if m.status == SnapshotStatus::Partial {
        crate::tell!(
            "{}/{}: {} file(s) not backed up:",
            m.host,
            m.part,
            m.problems.len()
        );
        for p in m.problems.iter().take(20) {
            crate::tell!("  {}: {}", p.path, p.error);
        }
    }
    Ok(r)
}

/// Forgets, for this host and the parts just backed up, what the config's `[retention]` does
/// not keep; returns how many snapshots went.
fn apply_retention(
    repo: &crate::repo::Repository,
    retention: &RetentionConfig,
    host: &str,
    outcomes: &[PartOutcome],
    lock: &StoreLock,
) -> anyhow::Result<usize> {
    let policy = retention
        .policy()
        .map_err(|e| anyhow::anyhow!("[retention] {e}"))?;
    let selection = Selection {
        host: Some(host.to_string()),
        parts: outcomes.iter().map(|o| o.part.clone()).collect(),
    };
    let plan = forget::plan(repo, &selection, &policy, now_ns())?;
    let removed = forget::apply(repo, &plan, lock)?;
    if removed > 0 {
        crate::say!("retention:");
        super::forget::print_plan(&plan);
        crate::say!("retention: forgot {removed} snapshot(s)");
    }
    Ok(removed)
}

/// The post-backup hook's environment: the run's snapshots with their folder names.
fn post_backup_env_of(
    repo: &crate::repo::Repository,
    store: &std::path::Path,
    host: &str,
    outcomes: &[PartOutcome],
    hook_failed: bool,
) -> Vec<(String, String)> {
    // Names as in the mount (`_2` suffixes depend on the part's other snapshots).
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
                host: host.to_string(),
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
    hooks::post_backup_env(store, status, &snapshots, &failed)
}

/// Runs `f` while a thread redraws a progress line on stderr, when stderr is a terminal.
fn with_progress<T>(progress: &Progress, name: &str, f: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return f();
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let read = progress.bytes_read.load(Ordering::Relaxed);
                eprint!(
                    "\r\x1b[K{name}: {} files, {} read ({:.0} MB/s)",
                    progress.files.load(Ordering::Relaxed),
                    format::size(read),
                    read as f64 / 1e6 / start.elapsed().as_secs_f64().max(1e-9)
                );
            }
            eprint!("\r\x1b[K");
        });
        let r = f();
        done.store(true, Ordering::Relaxed);
        r
    })
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
