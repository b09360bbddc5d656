//! `bmbackup snapshots`: one row per snapshot, or a JSON array for scripts.

use super::{format, Cli, EXIT_OK};
use crate::repo::folder_names;
use crate::timefmt;
use clap::Args;

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only this part.
    #[arg(long)]
    pub part: Option<String>,
    /// Print a JSON array (keys: id, host, part, date, files, bytes, bytes_read, bytes_added,
    /// status, has_xattrs (null: unknown), …).
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &SnapshotsArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    let all = repo.snapshots()?;
    let part = a.part.as_deref().map(|p| p.trim_matches('/'));
    super::select::check(&all, a.host.as_deref(), part.as_slice(), &common.config)?;
    // Snapshots repair found referencing lost data: their manifest is unchanged, the mark is beside it.
    let damage = repo.store.damage_reports()?;
    let status = |s: &crate::model::Snapshot| {
        if damage.contains_key(&s.id) {
            "damaged"
        } else {
            s.manifest.status.as_str()
        }
    };
    // Folder names are computed per part over all its snapshots, so they match the mount.
    let mut rows = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len()
            && all[j].manifest.host == all[i].manifest.host
            && all[j].manifest.part == all[i].manifest.part
        {
            j += 1;
        }
        let group: Vec<_> = all[i..j].iter().collect();
        for (s, name) in group.iter().zip(folder_names(&group)) {
            rows.push(((*s).clone(), name));
        }
        i = j;
    }
    rows.retain(|(s, _)| {
        a.host.as_ref().is_none_or(|h| &s.manifest.host == h)
            && part.is_none_or(|p| s.manifest.part == p)
    });
    if a.json {
        let arr: Vec<serde_json::Value> = rows
            .iter()
            .map(|(s, name)| {
                let m = &s.manifest;
                serde_json::json!({
                    "id": s.id.to_hex(),
                    "short_id": s.id.short(),
                    "host": m.host,
                    "part": m.part,
                    "date": timefmt::iso8601(m.started_ns),
                    "name": name,
                    "started_ns": m.started_ns,
                    "finished_ns": m.finished_ns,
                    "source": m.source,
                    "files": m.files,
                    "dirs": m.dirs,
                    "bytes": m.bytes,
                    "bytes_read": m.bytes_read,
                    "bytes_added": m.bytes_added,
                    "status": status(s),
                    "damaged_files": damage.get(&s.id).map(|d| &d.files),
                    "problems": m.problems,
                    "root": m.root,
                    "tool_version": m.tool_version,
                    "has_xattrs": m.has_xattrs,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&arr)?);
        return Ok(EXIT_OK);
    }
    println!(
        "{:<12}  {:<19}  {:<15}  {:<18}  {:>8}  {:>10}  {:>10}  {:>10}  STATUS",
        "ID", "DATE (UTC)", "HOST", "PART", "FILES", "SIZE", "READ", "ADDED"
    );
    for (s, _) in &rows {
        let m = &s.manifest;
        println!(
            "{:<12}  {:<19}  {:<15}  {:<18}  {:>8}  {:>10}  {:>10}  {:>10}  {}",
            s.id.short(),
            timefmt::display(m.started_ns),
            m.host,
            m.part,
            m.files,
            format::size(m.bytes),
            format::size(m.bytes_read),
            format::size(m.bytes_added),
            status(s)
        );
    }
    if rows.is_empty() {
        eprintln!("no snapshots");
    }
    Ok(EXIT_OK)
}
