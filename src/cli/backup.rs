//! `bmbackup backup`: builds the run from the arguments and the config, runs it
//! ([`crate::backup::run`]) and prints what it tells: each part's summary, a progress line on a
//! terminal, retention and prune, errors.

use super::backup_printer::Printer;
use super::{Cli, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL};
use crate::backup::run::{run_server, RunStatus};
use crate::backup::settings::{plan_run, RunOverrides};
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// This server's address as shown in the store [default: the primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// A part to back up, NAME=PATH (e.g. mail/imap=/var/spool/cyrus/data), or NAME alone for
    /// that part of the config file (its path, level and hooks); repeatable. Only these parts
    /// are backed up.
    #[arg(long = "part", value_name = "NAME[=PATH]")]
    pub parts: Vec<String>,
    /// zstd level (1-19) of every part [default: the config's, else 1]; over the config's
    /// per-part levels.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compression_level: Option<i32>,
    /// Threads for each stage of the backup: reading and chunking files, compressing, `lstat`
    /// [default: `threads` in the config, else the number of CPUs].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Record the snapshots as taken at this time (same formats as --at) instead of now; for
    /// simulating a history in tests and benchmarks only.
    #[arg(long, hide = true, value_name = "WHEN")]
    pub simulate_time: Option<String>,
    /// Do not descend into filesystems mounted inside a part: their mount points are kept as
    /// empty folders (also `one_file_system = true` in the config). By default they are
    /// backed up with the part.
    #[arg(long)]
    pub one_file_system: bool,
    /// Seconds to wait for a running prune or repair, or another backup of the same part, to
    /// finish.
    #[arg(long, default_value_t = 3600)]
    pub lock_wait: u64,
    /// List the files each part's backup would read (new or changed since its last snapshot)
    /// and their sizes; write nothing, run no hook.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON document at the end (the snapshots, errors, retention); progress and
    /// events go to stderr as JSON lines meanwhile.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &BackupArgs) -> anyhow::Result<i32> {
    // Writes to a closed pipe then fail (ignored by say!/tell!) instead of killing the run.
    // SAFETY: changing a signal disposition; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let (common, repo) = cli.open_repo()?;
    let config = &common.config;
    let host = a
        .host
        .clone()
        .or_else(|| config.host.clone())
        .unwrap_or_else(|| crate::hostaddr::primary_ipv4().to_string());
    let printer = Printer::new(&repo, &host, a.json);
    let overrides = RunOverrides {
        parts: a.parts.clone(),
        compression_level: a.compression_level,
        threads: a.threads,
        started_at_ns: match &a.simulate_time {
            Some(w) => Some(crate::restore::when::parse_when(w, crate::store::now_ns())?.start_ns),
            None => None,
        },
        one_file_system: a.one_file_system,
        lock_wait: Some(Duration::from_secs(a.lock_wait)),
    };
    let plan = plan_run(
        config,
        common.store.clone(),
        host.clone(),
        &overrides,
        &printer,
    )?;
    if a.dry_run {
        return dry_run(
            &repo,
            &host,
            &plan.parts,
            plan.options.one_file_system,
            a.json,
        );
    }
    let (status, code) = match run_server(&repo, &plan, &printer)? {
        RunStatus::Complete => ("complete", EXIT_OK),
        RunStatus::Partial => ("partial", EXIT_PARTIAL),
        RunStatus::Failed => ("failed", EXIT_ERROR),
    };
    if a.json {
        printer.print_document(status, code)?;
    }
    Ok(code)
}

/// `--dry-run`: per part, the files a backup would read, then the totals.
fn dry_run(
    repo: &crate::repo::Repository,
    host: &str,
    parts: &[crate::backup::run::PlannedPart],
    one_file_system: bool,
    json: bool,
) -> anyhow::Result<i32> {
    use super::errors::count;
    let mut docs = Vec::new();
    for p in parts {
        let d = crate::backup::dry_run::dry_run(repo, host, &p.spec, one_file_system)?;
        if json {
            docs.push(serde_json::json!({
                "part": p.spec.name, "source": p.spec.path, "files": d.files, "bytes": d.bytes,
                "bytes_to_read": d.bytes_to_read,
                "to_read": d.to_read.iter().map(|f| serde_json::json!({
                    "path": f.path, "size": f.size, "new": f.new})).collect::<Vec<_>>(),
            }));
            continue;
        }
        for f in &d.to_read {
            crate::say!(
                "{} {}/{}  ({})",
                if f.new { "+" } else { "M" },
                p.spec.name,
                f.path.display(),
                super::format::size(f.size)
            );
        }
        crate::say!(
            "{}: would read {} ({}) of {} ({}); dry run, nothing written",
            p.spec.name,
            count(d.to_read.len() as u64, "file", "files"),
            super::format::size(d.bytes_to_read),
            count(d.files, "file", "files"),
            super::format::size(d.bytes)
        );
    }
    if json {
        super::json::print(&serde_json::json!({"dry_run": true, "parts": docs}))?;
    }
    Ok(EXIT_OK)
}
