//! `bmbackup check [--read-data[=PERCENT]] [--json]`: verify the store; exit 1 on any damage.

use super::errors::count;
use super::{Cli, EXIT_ERROR, EXIT_OK};
use crate::integrity::check::{check, CheckOptions, CheckReport};
use clap::Args;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also read and verify chunk data: all of it, or a random PERCENT of the chunks.
    #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "100",
          value_parser = super::prune::parse_percent)]
    pub read_data: Option<f64>,
    /// Print the full report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &CheckArgs) -> anyhow::Result<i32> {
    let (_, repo) = cli.open_repo()?;
    let opts = CheckOptions {
        read_data_percent: a.read_data.unwrap_or(0.0),
    };
    let (scan, _) = check(&repo, &opts)?;
    let r = &scan.report;
    // For the console's overview; the check's own answer does not depend on it.
    if let Err(e) = crate::integrity::last_check::record(&repo, r, opts.read_data_percent > 0.0) {
        log::warn!("the check's outcome was not recorded for the console: {e}");
    }
    if a.json {
        let mut v = serde_json::to_value(r)?;
        v["ok"] = serde_json::Value::Bool(r.is_ok());
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_text(r);
    }
    Ok(if r.is_ok() { EXIT_OK } else { EXIT_ERROR })
}

fn print_text(r: &CheckReport) {
    for f in &r.damaged_packs {
        println!("damaged pack {}: {}", f.path, f.error);
    }
    for f in &r.damaged_manifests {
        println!("damaged manifest {}: {}", f.path, f.error);
    }
    for c in &r.bad_copies {
        println!(
            "damaged copy of {} {} in {}: {}",
            c.kind, c.id, c.pack, c.error
        );
    }
    for b in &r.bad_blobs {
        println!(
            "{} {} {}, used by {}:",
            b.state.as_str(),
            b.kind,
            b.id,
            count(b.uses.len() as u64, "file", "files")
        );
        for u in &b.uses {
            println!(
                "  snapshot {} ({}/{}): {}",
                &u.snapshot[..12],
                u.host,
                u.part,
                u.path
            );
        }
    }
    if r.uses_truncated {
        println!(
            "(uses listed: at most {} per snapshot, {} in all)",
            crate::integrity::check::MAX_USES_PER_SNAPSHOT,
            crate::integrity::check::MAX_USES
        );
    }
    for c in &r.catalog {
        println!("catalog: {c}");
    }
    const SHOWN: usize = 10;
    for m in r.loose_modes.iter().take(SHOWN) {
        println!("open to other users: {} (mode {})", m.path, m.mode);
    }
    if r.loose_modes.len() > SHOWN {
        println!(
            "… and {} more open to other users",
            r.loose_modes.len() - SHOWN
        );
    }
    if !r.loose_modes.is_empty() {
        println!("run `bmbackup repair --fix-modes` to make the store private");
    }
    for h in &r.healed {
        println!(
            "snapshot {} was marked damaged but its data is complete again; `bmbackup repair` clears the mark",
            &h[..12]
        );
    }
    let n = |v: usize, one: &str, many: &str| count(v as u64, one, many);
    println!(
        "checked {}, {}, {}, {} ({} verified, {} read): {}",
        n(r.packs, "pack", "packs"),
        n(r.snapshots, "snapshot", "snapshots"),
        n(r.trees, "tree", "trees"),
        n(r.chunks, "chunk", "chunks"),
        count(r.chunks_verified, "chunk", "chunks"),
        super::format::size(r.bytes_read),
        if r.is_ok() {
            "no damage found".to_string()
        } else {
            format!(
                "DAMAGE: {}, {}, {}, {}, {}",
                n(r.damaged_packs.len(), "damaged pack", "damaged packs"),
                n(
                    r.damaged_manifests.len(),
                    "damaged manifest",
                    "damaged manifests"
                ),
                n(r.bad_copies.len(), "damaged copy", "damaged copies"),
                n(r.bad_blobs.len(), "lost blob", "lost blobs"),
                n(r.catalog.len(), "catalog problem", "catalog problems")
            )
        }
    );
}
