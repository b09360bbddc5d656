//! `bmbackup history --host IP --part NAME PATH`: the versions of a file or folder across a
//! part's snapshots.

use super::errors::count;
use super::restore_shared::host_or_default;
use super::{format, Cli, EXIT_OK};
use crate::repo::named_snapshots;
use crate::restore::history::{changes, history};
use crate::timefmt;
use clap::Args;
use std::os::unix::ffi::OsStrExt;

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Host [default: `host` of the config, else this machine's primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// Part (e.g. mail/imap).
    #[arg(long)]
    pub part: String,
    /// File or folder inside the part, e.g. example.com/user/jdoe/12.
    pub path: std::ffi::OsString,
    /// Print a JSON array, one object per snapshot (keys: snapshot, name, date, state, kind,
    /// size, hash, version).
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &HistoryArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    let host = host_or_default(a.host.as_deref(), &common);
    let part = a.part.trim_matches('/');
    let path = a.path.as_bytes();
    if path.split(|&b| b == b'/').all(<[u8]>::is_empty) {
        anyhow::bail!(
            "give a file or folder inside the part (the part itself changes with every snapshot)"
        );
    }
    let all = repo.snapshots()?;
    super::select::check(&all, Some(&host), &[part], &common.config)?;
    let snaps: Vec<_> = named_snapshots(&all)
        .into_iter()
        .filter(|(s, _)| s.manifest.host == host && s.manifest.part == part)
        .collect();
    if snaps.is_empty() {
        anyhow::bail!("no snapshot of {host}/{part}; see `bmbackup snapshots`");
    }
    let rows = history(&repo, &snaps, path)?;
    if a.json {
        let arr: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "snapshot": r.snapshot.id.to_hex(),
                    "name": r.name,
                    "date": timefmt::iso8601(r.snapshot.manifest.started_ns),
                    "status": r.snapshot.manifest.status.as_str(),
                    "state": r.state.as_str(),
                    "kind": r.kind.map(|k| format!("{k:?}").to_lowercase()),
                    "size": r.kind.map(|_| r.size),
                    "hash": r.hash.map(|h| h.to_hex()),
                    "version": r.version,
                    "mtime": r.kind.map(|_| r.mtime_sec),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&arr)?);
        return Ok(EXIT_OK);
    }
    println!(
        "{:<19}  {:<12}  {:<9}  {:>10}  {:<16}  VERSION",
        "DATE (UTC)", "SNAPSHOT", "STATE", "SIZE", "HASH"
    );
    for r in &rows {
        let size = match r.kind {
            None => String::new(),
            Some(crate::model::EntryKind::Dir) => format!("{} entries", r.size),
            Some(_) => format::size(r.size),
        };
        println!(
            "{:<19}  {:<12}  {:<9}  {:>10}  {:<16}  {}",
            timefmt::display(r.snapshot.manifest.started_ns),
            r.snapshot.id.short(),
            r.state.as_str(),
            size,
            r.hash
                .map(|h| h.to_hex()[..16].to_string())
                .unwrap_or_default(),
            r.version.map(|v| format!("v{v}")).unwrap_or_default()
        );
    }
    let distinct = rows.iter().filter_map(|r| r.version).max().unwrap_or(0);
    let changes = changes(&rows);
    eprintln!(
        "{}, {}, {}",
        count(rows.len() as u64, "snapshot", "snapshots"),
        count(changes as u64, "change", "changes"),
        count(distinct as u64, "distinct version", "distinct versions")
    );
    Ok(EXIT_OK)
}
