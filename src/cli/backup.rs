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
    /// A part to back up, NAME=PATH (e.g. mail/imap=/var/spool/cyrus/data); repeatable.
    /// Overrides the parts of the config file.
    #[arg(long = "part", value_name = "NAME=PATH")]
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
    let plan = plan_run(config, common.store.clone(), host, &overrides, &printer)?;
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
