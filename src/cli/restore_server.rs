//! `bmbackup restore-server --host IP --at WHEN [--target ROOT]`: every part of a host back to
//! where it was backed up from (under ROOT), as a disaster-recovery restore.

use super::restore::{at_ns, print_report, with_progress};
use super::{Cli, EXIT_OK};
use crate::restore::server::{plan, ThisMachine};
use crate::restore::{restore, RestoreOptions};
use crate::timefmt;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RestoreServerArgs {
    /// The server to restore, as named in the store (its IP address).
    #[arg(long)]
    pub host: String,
    /// The newest complete snapshot of each part at or before WHEN (UTC): 2026-11-20,
    /// 2026-11-20T14:00, last, 7d, D-7.
    #[arg(long, value_name = "WHEN")]
    pub at: String,
    /// Folder the parts' original paths are re-created under.
    #[arg(long, value_name = "ROOT", default_value = "/")]
    pub target: PathBuf,
    /// Restore into destination folders that are not empty (identical files are kept).
    #[arg(long)]
    pub overwrite: bool,
    /// Only list what would be written.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(cli: &Cli, a: &RestoreServerArgs) -> anyhow::Result<i32> {
    let (_, repo) = cli.open_repo()?;
    let all = repo.snapshots()?;
    let ip = crate::hostaddr::primary_ipv4().to_string();
    let me = ThisMachine {
        ip: &ip,
        version: env!("CARGO_PKG_VERSION"),
    };
    let plan = plan(
        &all,
        &a.host,
        at_ns(Some(&a.at))?,
        &a.target,
        a.overwrite,
        &me,
    )?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let mut code = EXIT_OK;
    for item in &plan.items {
        let m = &item.snapshot.manifest;
        eprintln!(
            "restoring {}/{} of {} UTC (snapshot {}) into {}",
            m.host,
            m.part,
            timefmt::display(m.started_ns),
            item.snapshot.id.short(),
            item.dest.display()
        );
        let report = with_progress(|progress| {
            let opts = RestoreOptions {
                overwrite: a.overwrite,
                dry_run: a.dry_run,
                progress,
                ..RestoreOptions::default()
            };
            restore(&repo, &item.snapshot, b"", &item.dest, &opts)
        })?;
        code = code.max(print_report(&report, &item.dest, a.dry_run));
    }
    Ok(code)
}
