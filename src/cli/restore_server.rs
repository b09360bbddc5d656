//! `bmbackup restore-server [--host IP] --at WHEN [--target ROOT]`: every part of a host back to
//! where it was backed up from (under ROOT), as a disaster-recovery restore.

use super::restore_shared::PointInTime;
use super::Cli;
use crate::restore::restore;
use crate::restore::server::{plan, ThisMachine};
use crate::timefmt;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RestoreServerArgs {
    /// The server to restore, as named in the store (its IP address) [default: `host` of the
    /// config, else this machine's primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// Folder the parts' original paths are re-created under.
    #[arg(long, value_name = "ROOT", default_value = "/")]
    pub target: PathBuf,
    #[command(flatten)]
    pub when: PointInTime,
}

pub fn run(cli: &Cli, a: &RestoreServerArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    let host = super::restore_shared::host_or_default(a.host.as_deref(), &common);
    let all = repo.snapshots()?;
    let ip = crate::hostaddr::primary_ipv4().to_string();
    let me = ThisMachine {
        ip: &ip,
        version: env!("CARGO_PKG_VERSION"),
    };
    let plan = plan(
        &all,
        &host,
        &a.when.when()?,
        &a.target,
        a.when.overwrite,
        &me,
    )?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    a.when.restore_each(
        &plan.items,
        |item| &item.dest,
        |item| {
            let m = &item.snapshot.manifest;
            eprintln!(
                "restoring {}/{} of {} UTC (snapshot {}) into {}",
                m.host,
                m.part,
                timefmt::display(m.started_ns),
                item.snapshot.id.short(),
                item.dest.display()
            );
        },
        |item, opts| restore(&repo, &item.snapshot, b"", &item.dest, opts),
    )
}
