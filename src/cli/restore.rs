//! `bmbackup restore SNAPSHOT[:PATH] DEST`.

use super::{format, Cli, EXIT_OK, EXIT_PARTIAL};
use crate::restore::{restore, RestoreOptions};
use clap::Args;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id prefix, HOST/PART/DATE or HOST/PART/last, optionally followed by :PATH inside it.
    pub snapshot: std::ffi::OsString,
    /// Folder to restore into (created if missing).
    pub dest: PathBuf,
    /// Replace existing files in DEST.
    #[arg(long)]
    pub overwrite: bool,
    /// Only list what would be written.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(cli: &Cli, a: &RestoreArgs) -> anyhow::Result<i32> {
    let (_, repo) = cli.open_repo()?;
    let raw = a.snapshot.as_bytes();
    let (spec, path) = match raw.iter().position(|&b| b == b':') {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, &b""[..]),
    };
    let spec = std::str::from_utf8(spec)?;
    let snap = repo.resolve(spec)?;
    let opts = RestoreOptions {
        overwrite: a.overwrite,
        dry_run: a.dry_run,
    };
    let report = restore(&repo, &snap, path, &a.dest, &opts)?;
    if a.dry_run {
        for p in &report.planned {
            println!("{p}");
        }
        return Ok(EXIT_OK);
    }
    println!(
        "restored {} files and {} folders ({}) into {}{}",
        report.files,
        report.dirs,
        format::size(report.bytes),
        a.dest.display(),
        if report.skipped_identical > 0 {
            format!("; {} already there and identical", report.skipped_identical)
        } else {
            String::new()
        }
    );
    if !report.failed.is_empty() {
        eprintln!("{} file(s) not restored:", report.failed.len());
        for (p, e) in &report.failed {
            eprintln!("  {p}: {e}");
        }
        return Ok(EXIT_PARTIAL);
    }
    Ok(EXIT_OK)
}
