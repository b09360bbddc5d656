//! `bmbackup prune`: delete data that no snapshot references any more.

use super::errors::count;
use super::{Cli, EXIT_OK};
use crate::retention::prune::{prune, PruneOptions, PruneReport};
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Rewrite packs whose used share fell below this percentage (0-100).
    #[arg(long, default_value_t = 50.0, value_parser = parse_percent)]
    pub repack_below: f64,
    /// Say what would be deleted and freed, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for running backups to finish before giving up.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// The report as a sentence, with plurals and human sizes (`--json` has the exact bytes).
pub(super) fn text(r: &PruneReport) -> String {
    let size = super::format::size;
    let n = |v: usize, one: &str, many: &str| count(v as u64, one, many);
    let packs = n(r.packs_before, "pack", "packs");
    let kept = n(r.snapshots, "snapshot kept", "snapshots kept");
    let blobs = count(r.blobs_removed, "unused blob", "unused blobs");
    let tail = format!(
        "{} after, {} freed, {} unused left in packs above --repack-below",
        size(r.bytes_after),
        size(r.bytes_freed()),
        size(r.unused_kept_bytes)
    );
    if r.dry_run {
        format!(
            "dry run: {kept}; {packs} ({}); would delete {} and rewrite {} into {}, removing {blobs}; {tail}; nothing was changed",
            size(r.bytes_before),
            n(r.packs_deleted, "pack", "packs"),
            n(r.packs_rewritten, "pack", "packs"),
            r.packs_written,
        )
    } else {
        format!(
            "{kept}; {packs} ({}) before; deleted {}, rewrote {} into {}; {blobs} removed; {tail}",
            size(r.bytes_before),
            n(r.packs_deleted, "pack", "packs"),
            n(r.packs_rewritten, "pack", "packs"),
            r.packs_written,
        )
    }
}

pub(crate) fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 100".into())
    }
}

pub fn run(cli: &Cli, a: &PruneArgs) -> anyhow::Result<i32> {
    let (_, repo) = cli.open_repo()?;
    let report = prune(
        &repo,
        &PruneOptions {
            repack_below: a.repack_below / 100.0,
            dry_run: a.dry_run,
            wait: Duration::from_secs(a.wait),
        },
    )?;
    if a.json {
        super::json::print(&super::json::prune(&report))?;
    } else if !super::output::quiet() {
        crate::say!("{}", text(&report));
    }
    Ok(EXIT_OK)
}
