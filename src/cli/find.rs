//! `bmbackup find [--host IP] [--part NAME] [--at WHEN] PATTERN`: names matching a glob across
//! snapshots.

use super::errors::count;
use super::restore_shared::parse_at;
use super::{Cli, EXIT_ERROR, EXIT_OK};
use crate::model::Snapshot;
use crate::repo::named_snapshots;
use crate::restore::find::Finder;
use crate::restore::glob::Glob;
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
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// `*` and `?` wildcards (within a name); matched against file names anywhere, or, when it
    /// contains `/`, against whole paths from the part's root, where a `**` component stands for
    /// any number of folders (e.g. '**/user/jdoe/Sent/*'). No match is exit 1, with the closest
    /// paths.
    pub pattern: String,
    /// Print a JSON array (keys: host, part, snapshot, name, date, path, kind, size).
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &FindArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    let all = repo.snapshots()?;
    let part = a.part.as_deref().map(|p| p.trim_matches('/'));
    super::select::check(&all, a.host.as_deref(), part.as_slice(), &common.config)?;
    let mut chosen: Vec<(&Snapshot, String)> = named_snapshots(&all)
        .into_iter()
        .filter(|(s, _)| {
            a.host.as_ref().is_none_or(|h| &s.manifest.host == h)
                && part.is_none_or(|p| s.manifest.part == p)
        })
        .collect();
    if let Some(w) = &a.at {
        chosen = super::select::pick_each(chosen, &parse_at(Some(w))?)?;
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
        "{} in {} ({} searched)",
        count(hits, "match", "matches"),
        count(chosen.len() as u64, "snapshot", "snapshots"),
        count(finder.trees_searched, "distinct folder", "distinct folders"),
    );
    if hits > 0 {
        return Ok(EXIT_OK);
    }
    // Like grep: nothing found is exit 1, with what the admin probably meant.
    eprintln!("{}", did_you_mean(&repo, &chosen, &a.pattern)?);
    Ok(EXIT_ERROR)
}

/// "0 matches — did you mean …": the pattern with `**/` in front when that matches (a path
/// pattern starts at the part's root), else the existing paths closest to it in the newest
/// snapshot of each part searched.
fn did_you_mean(
    repo: &crate::repo::Repository,
    chosen: &[(&Snapshot, String)],
    pattern: &str,
) -> anyhow::Result<String> {
    let glob = Glob::new(pattern);
    // `*/x` meant "x one folder down or deeper": its `*` becomes `**`.
    let rooted = pattern.trim_start_matches('/');
    let anywhere = format!("**/{}", rooted.strip_prefix("*/").unwrap_or(rooted));
    if glob.is_path() && !pattern.trim_start_matches('/').starts_with("**") {
        let mut finder = Finder::new(repo, Glob::new(&anywhere));
        let mut n = 0;
        for (s, _) in chosen {
            n += finder.find(s.root)?.len();
        }
        if n > 0 {
            return Ok(format!(
                "0 matches — did you mean '{anywhere}' ({})? A pattern with / starts at the part's root; ** crosses folders",
                count(n as u64, "match", "matches")
            ));
        }
    }
    // The newest snapshot of each part (the list is sorted by host, part and time).
    let newest: Vec<&(&Snapshot, String)> = chosen
        .chunk_by(|x, y| {
            x.0.manifest.host == y.0.manifest.host && x.0.manifest.part == y.0.manifest.part
        })
        .filter_map(|g| g.last())
        .collect();
    let roots: Vec<_> = newest.iter().map(|(s, _)| s.root).collect();
    let close = crate::restore::find_suggest::closest_paths(repo, &roots, &glob, 5)?;
    Ok(if close.is_empty() {
        "0 matches, and no path is close to the pattern (`*` and `?` stay within a name; ** crosses folders; a pattern with / starts at the part's root)".into()
    } else {
        format!("0 matches — did you mean: {}", close.join(", "))
    })
}
