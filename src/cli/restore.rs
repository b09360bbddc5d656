//! `bmbackup restore SNAPSHOT[:PATH] (DEST | --to-file FILE)`, or with `--host/--part/--at`,
//! `restore PATH DEST` from the newest complete snapshot at or before a date.

use super::restore_report::print_report;
use super::restore_shared::{host_or_default, parse_at, with_progress};
use super::Cli;
use crate::restore::to_file::restore_to_file;
use crate::restore::when::pick_part_at;
use crate::restore::{restore, RestoreOptions};
use clap::Args;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id prefix, HOST/PART/DATE or HOST/PART/last, optionally followed by :PATH inside
    /// it; with --part or --at, just the PATH inside the part ("" or / for all of it).
    pub snapshot: std::ffi::OsString,
    /// Folder to restore into (created if missing). A folder's content goes into DEST; a single
    /// file goes into DEST under its own name (`restore SNAP:dir/file /tmp/x` makes
    /// /tmp/x/file); use --to-file to choose the file's name.
    #[arg(required_unless_present = "to_file")]
    pub dest: Option<PathBuf>,
    /// Host of the snapshot, with --part/--at [default: `host` of the config, else this
    /// machine's primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// Part of the snapshot (e.g. mail/imap); selects the PATH form.
    #[arg(long)]
    pub part: Option<String>,
    /// The snapshot named WHEN (2026-11-20_140005, 2026-11-20_140005_2: folder names), else the
    /// newest complete one started at or before WHEN (UTC), a time meaning all of its last unit:
    /// 2026-11-20 (up to the end of that day), 2026-11-20T14:00, "2026-11-20 14:00:05", last, 7d
    /// or D-7.
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// Replace existing files in DEST.
    #[arg(long)]
    pub overwrite: bool,
    /// Only list what would be written.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON document at the end (what was restored, what failed); progress goes to
    /// stderr as JSON lines meanwhile.
    #[arg(long)]
    pub json: bool,
    /// Restore the one file PATH names as FILE (instead of DEST/<its name>); FILE must not
    /// exist unless --overwrite.
    #[arg(long, value_name = "FILE", conflicts_with = "dest")]
    pub to_file: Option<PathBuf>,
}

pub fn run(cli: &Cli, a: &RestoreArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    // clap requires one of them.
    let dest = a
        .to_file
        .as_deref()
        .or(a.dest.as_deref())
        .unwrap_or(std::path::Path::new("."));
    let raw = a.snapshot.as_bytes();
    let (snap, path) = if a.part.is_some() || a.at.is_some() || a.host.is_some() {
        let part = a.part.as_deref().ok_or_else(|| {
            super::UsageError("--host/--at need --part NAME (e.g. mail/imap)".into())
        })?;
        let host = host_or_default(a.host.as_deref(), &common);
        let at = parse_at(a.at.as_deref())?;
        let all = repo.snapshots()?;
        (pick_part_at(&all, &host, part, &at)?.clone(), raw)
    } else {
        let (spec, path) = match raw.iter().position(|&b| b == b':') {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            None => (raw, &b""[..]),
        };
        (repo.resolve(std::str::from_utf8(spec)?)?, path)
    };
    if !a.json && !super::output::quiet() {
        crate::tell!(
            "restoring {}/{} of {} UTC (snapshot {})",
            snap.manifest.host,
            snap.manifest.part,
            crate::timefmt::display(snap.manifest.started_ns),
            snap.id.short()
        );
    }
    let expected = crate::restore::ls::size_below(&repo, &snap, path).unwrap_or(0);
    let report = with_progress(super::progress::mode(a.json), expected, |progress| {
        let opts = RestoreOptions {
            overwrite: a.overwrite,
            dry_run: a.dry_run,
            progress,
            ..RestoreOptions::default()
        };
        match &a.to_file {
            Some(file) => restore_to_file(&repo, &snap, path, file, &opts),
            None => restore(&repo, &snap, path, dest, &opts),
        }
    })?;
    if a.json {
        let mut doc = super::json::restore(&report, dest, a.dry_run);
        doc["snapshot"] = serde_json::json!(snap.id.to_hex());
        doc["host"] = serde_json::json!(snap.manifest.host);
        doc["part"] = serde_json::json!(snap.manifest.part);
        doc["path"] = serde_json::json!(String::from_utf8_lossy(path));
        super::json::print(&doc)?;
        return Ok(super::restore_report::exit_code(&report));
    }
    Ok(print_report(&report, dest, a.dry_run))
}
