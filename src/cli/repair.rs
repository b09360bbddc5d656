//! `bmbackup repair [--now] [--wait SECS] [--fix-modes]`: make a damaged or interrupted store consistent again.

use super::errors::count;
use super::{Cli, EXIT_OK};
use crate::integrity::repair::{repair, RepairOptions, TEMP_SAFETY_AGE};
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct RepairArgs {
    /// Remove temp files of interrupted writes however young they are (by default only those
    /// older than an hour, which cannot belong to a running backup).
    #[arg(long)]
    pub now: bool,
    /// Seconds to wait for running backups to finish before giving up.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    /// Only make the store private again: take the group and other bits off every file and
    /// folder (a store made by an older bmbackup, or chmod'ed). Full repairs do it too.
    #[arg(long)]
    pub fix_modes: bool,
}

/// A count of `usize` things with its noun.
fn n(v: usize, one: &str, many: &str) -> String {
    count(v as u64, one, many)
}

pub fn run(cli: &Cli, a: &RepairArgs) -> anyhow::Result<i32> {
    let (_, repo) = cli.open_repo()?;
    let r = repair(
        &repo,
        &RepairOptions {
            now: a.now,
            wait: Duration::from_secs(a.wait),
            fix_modes_only: a.fix_modes,
        },
    )?;
    for (path, mode) in &r.modes_fixed {
        println!("made private {path} (was {mode:04o})");
    }
    if a.fix_modes {
        println!(
            "store is private: {} tightened",
            n(r.modes_fixed.len(), "file or folder", "files and folders")
        );
        return Ok(EXIT_OK);
    }
    for t in &r.temp_removed {
        println!("removed leftover {t}");
    }
    for (from, to) in &r.set_aside {
        println!("set aside damaged {from} -> {to}");
    }
    if r.blobs_salvaged > 0 {
        println!(
            "copied {} out of damaged packs",
            n(r.blobs_salvaged, "good blob", "good blobs")
        );
    }
    for m in &r.manifests_rewritten {
        println!("rewrote readable damaged manifest as snapshot {}", &m[..12]);
    }
    for (id, n) in &r.damaged_snapshots {
        println!(
            "snapshot {} is damaged: {} lost data (listed in the store's damage/{}.json)",
            id.short(),
            count(*n as u64, "file", "files"),
            id.to_hex()
        );
    }
    for id in &r.healed_snapshots {
        println!("snapshot {} is complete again", id.short());
    }
    println!(
        "repair done: catalog rebuilt, {} removed ({}), {} set aside, {}",
        n(r.temp_removed.len(), "leftover", "leftovers"),
        if a.now {
            "all temp files".to_string()
        } else {
            format!(
                "temp files younger than {} min kept",
                TEMP_SAFETY_AGE.as_secs() / 60
            )
        },
        n(r.set_aside.len(), "file", "files"),
        n(
            r.damaged_snapshots.len(),
            "damaged snapshot",
            "damaged snapshots"
        )
    );
    Ok(EXIT_OK)
}
