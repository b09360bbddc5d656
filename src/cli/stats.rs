//! `bmbackup stats`: sizes per snapshot, per part and for the whole store, as a table or JSON.

use super::{format, Cli, EXIT_OK};
use crate::retention::stats::compute;
use clap::Args;

#[derive(Args, Debug)]
#[command(after_long_help = "JSON keys (--json):
  snapshots[]: id, host, part, name, date, status, logical_bytes
  parts[]:     host, part, snapshots, newest_name, newest_logical_bytes, total_logical_bytes
  store:       snapshots, logical_bytes, stored_bytes, unique_chunks, unique_bytes, trees,
               referenced_stored_bytes, prune_freeable_bytes, unused_kept_bytes, dedup_ratio,
               compression_ratio, unreadable_trees, missing_chunks

logical = sum of file sizes; stored_bytes = size of the pack files on disk; unique_bytes =
uncompressed size of the distinct chunks some snapshot references; dedup_ratio =
logical_bytes / unique_bytes; compression_ratio = unique_bytes / stored_bytes (null when the
store is empty). prune_freeable_bytes is what `prune` (default --repack-below 50) frees, from
prune's own plan (null when a folder cannot be read); unused_kept_bytes is unused data prune
leaves in packs still mostly used.")]
pub struct StatsArgs {
    /// Print one JSON object (keys below).
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &StatsArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    let stats = compute(&repo)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(EXIT_OK);
    }
    println!(
        "{:<15}  {:<18}  {:>9}  {:>11}  {:>12}  NEWEST SNAPSHOT",
        "HOST", "PART", "SNAPSHOTS", "NEWEST SIZE", "ALL (SUM)"
    );
    for p in &stats.parts {
        println!(
            "{:<15}  {:<18}  {:>9}  {:>11}  {:>12}  {}",
            p.host,
            p.part,
            p.snapshots,
            format::size(p.newest_logical_bytes),
            format::size(p.total_logical_bytes),
            p.newest_name
        );
    }
    let s = &stats.store;
    let times = |r: Option<f64>| r.map_or_else(|| "-".to_string(), |r| format!("{r:.2}×"));
    println!();
    println!("store {}:", common.store.display());
    println!("  snapshots            {}", s.snapshots);
    println!("  logical (all)        {}", format::size(s.logical_bytes));
    println!(
        "  unique data          {} in {} chunks",
        format::size(s.unique_bytes),
        s.unique_chunks
    );
    println!("  stored on disk       {}", format::size(s.stored_bytes));
    match s.prune_freeable_bytes {
        Some(b) => println!("  freeable by prune    {}", format::size(b)),
        None => {
            println!("  freeable by prune    unknown (unreadable folders; run `bmbackup check`)")
        }
    }
    if let Some(b) = s.unused_kept_bytes.filter(|&b| b > 0) {
        println!(
            "  unused, kept         {} (in packs still mostly used; `prune --repack-below` higher rewrites them)",
            format::size(b)
        );
    }
    println!("  dedup ratio          {}", times(s.dedup_ratio));
    println!("  compression ratio    {}", times(s.compression_ratio));
    if s.unreadable_trees + s.missing_chunks > 0 {
        eprintln!(
            "warning: {} and {}: the figures are low; run `bmbackup check`",
            super::errors::count(
                s.unreadable_trees,
                "unreadable folder",
                "unreadable folders"
            ),
            super::errors::count(s.missing_chunks, "missing chunk", "missing chunks")
        );
    }
    Ok(EXIT_OK)
}
