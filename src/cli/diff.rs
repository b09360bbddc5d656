//! `bmbackup diff SNAPSHOT1 SNAPSHOT2 [PATH] [--json]`: what changed between two snapshots
//! ([`crate::restore::diff`]).

use super::errors::count;
use super::{format, Cli, EXIT_OK};
use crate::restore::diff::{diff, Change, DiffReport};
use clap::Args;
use std::os::unix::ffi::OsStrExt;

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The older snapshot: id prefix, HOST/PART/DATE or HOST/PART/last.
    pub old: String,
    /// The newer snapshot.
    pub new: String,
    /// Only below this folder or file of the part.
    pub path: Option<std::ffi::OsString>,
    /// Print one JSON document: the differences and their totals.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &DiffArgs) -> anyhow::Result<i32> {
    let (_, repo) = cli.open_repo()?;
    let old = repo.resolve(&a.old)?;
    let new = repo.resolve(&a.new)?;
    let (o, n) = (&old.manifest, &new.manifest);
    if o.part != n.part {
        anyhow::bail!(
            "{} is a snapshot of {}/{} and {} of {}/{}: diff compares two snapshots of one part (e.g. {}/{}/last)",
            a.old, o.host, o.part, a.new, n.host, n.part, o.host, o.part
        );
    }
    let path = a.path.as_ref().map_or(&b""[..], |p| p.as_bytes());
    let report = diff(&repo, &old, &new, path)?;
    if a.json {
        crate::say!(
            "{}",
            serde_json::to_string_pretty(&json(&report, &old.id.to_hex(), &new.id.to_hex()))?
        );
        return Ok(EXIT_OK);
    }
    for d in &report.differences {
        let mut name = String::from_utf8_lossy(&d.path).into_owned();
        if d.kind == crate::model::EntryKind::Dir {
            name.push('/');
        }
        let file = d.kind == crate::model::EntryKind::File;
        let (mark, sizes) = match d.change {
            Change::Added => ('+', size_of(d.new_size)),
            Change::Removed => ('-', size_of(d.old_size)),
            Change::Content => (
                'M',
                format!("{} → {}", size_of(d.old_size), size_of(d.new_size)),
            ),
            Change::Metadata => ('U', String::new()),
        };
        if file && !sizes.is_empty() {
            crate::say!("{mark}  {name}  ({sizes})");
        } else {
            crate::say!("{mark}  {name}");
        }
    }
    if report.differences.is_empty() {
        crate::say!("no differences");
        return Ok(EXIT_OK);
    }
    let t = |c| report.totals(c);
    let (added, removed, changed, meta) = (
        t(Change::Added),
        t(Change::Removed),
        t(Change::Content),
        t(Change::Metadata),
    );
    crate::say!(
        "{} added ({}), {} removed ({}), {} changed ({} → {}), {} with new metadata only",
        added.entries,
        format::size(added.new_bytes),
        removed.entries,
        format::size(removed.old_bytes),
        count(changed.entries, "entry", "entries"),
        format::size(changed.old_bytes),
        format::size(changed.new_bytes),
        meta.entries
    );
    Ok(EXIT_OK)
}

fn size_of(s: Option<u64>) -> String {
    s.map(format::size).unwrap_or_default()
}

fn json(r: &DiffReport, old: &str, new: &str) -> serde_json::Value {
    let totals = |c: Change| {
        let t = r.totals(c);
        serde_json::json!({"entries": t.entries, "old_bytes": t.old_bytes, "new_bytes": t.new_bytes})
    };
    serde_json::json!({
        "old": old,
        "new": new,
        "differences": r.differences.iter().map(|d| serde_json::json!({
            "path": String::from_utf8_lossy(&d.path),
            "change": d.change.as_str(),
            "type": super::ls::kind_name(d.kind),
            "old_size": d.old_size,
            "new_size": d.new_size,
        })).collect::<Vec<_>>(),
        "added": totals(Change::Added),
        "removed": totals(Change::Removed),
        "changed": totals(Change::Content),
        "metadata": totals(Change::Metadata),
        "trees_read": r.trees_read,
    })
}
