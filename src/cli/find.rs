//! `bmbackup find [--host IP] [--part NAME] [--at WHEN] PATTERN`: names matching a glob across
//! snapshots.

use super::restore_shared::parse_at;
use super::{Cli, EXIT_OK};
use crate::model::Snapshot;
use crate::repo::named_snapshots;
use crate::restore::find::Finder;
use crate::restore::glob::Glob;
use crate::restore::when::pick_at;
use crate::timefmt;
use clap::Args;

#[derive(Args, Debug)]
pub struct FindArgs {
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only this part.
    #[arg(long)]
    pub part: Option<String>,
    /// Only the snapshot of each host and part that `restore --at WHEN` would use.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
    /// `*` and `?` wildcards; matched against file names, or against whole paths inside the
    /// part when it contains `/` (e.g. '*/user/jdoe/Sent/*').
    pub pattern: String,
    /// Print a JSON array (keys: host, part, snapshot, name, date, path, kind, size).
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &FindArgs) -> anyhow::Result<i32> {
    let (_, repo) = cli.open_repo()?;
    let all = repo.snapshots()?;
    let part = a.part.as_deref().map(|p| p.trim_matches('/'));
    let mut chosen: Vec<(&Snapshot, String)> = named_snapshots(&all)
        .into_iter()
        .filter(|(s, _)| {
            a.host.as_ref().is_none_or(|h| &s.manifest.host == h)
                && part.is_none_or(|p| s.manifest.part == p)
        })
        .collect();
    if let Some(w) = &a.at {
        let at = parse_at(Some(w))?;
        let mut picked = Vec::new();
        for group in chosen.chunk_by(|x, y| {
            x.0.manifest.host == y.0.manifest.host && x.0.manifest.part == y.0.manifest.part
        }) {
            let refs: Vec<&Snapshot> = group.iter().map(|(s, _)| *s).collect();
            // A part that did not exist yet at WHEN is simply not searched.
            if let Ok(s) = pick_at(&refs, &at, "") {
                picked.extend(group.iter().filter(|(g, _)| g.id == s.id).cloned());
            }
        }
        chosen = picked;
    }
    let mut finder = Finder::new(&repo, Glob::new(&a.pattern));
    let mut json = Vec::new();
    let mut hits = 0u64;
    for (s, name) in &chosen {
        let m = &s.manifest;
        for f in finder.find(s.root)?.iter() {
            hits += 1;
            let path = String::from_utf8_lossy(&f.path);
            if a.json {
                json.push(serde_json::json!({
                    "host": m.host,
                    "part": m.part,
                    "snapshot": s.id.to_hex(),
                    "name": name,
                    "date": timefmt::iso8601(m.started_ns),
                    "path": path,
                    "kind": format!("{:?}", f.kind).to_lowercase(),
                    "size": f.size,
                }));
            } else {
                println!("{}/{}/{name}/{path}", m.host, m.part);
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    eprintln!(
        "{hits} matches in {} snapshots ({} distinct folders searched)",
        chosen.len(),
        finder.trees_searched
    );
    Ok(EXIT_OK)
}
