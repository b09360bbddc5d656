//! `bmbackup entities --at WHEN [--json]`: the users and shared mailboxes of a spool snapshot.

use super::restore_shared::{host_or_default, parse_at};
use super::{Cli, EXIT_OK};
use crate::restore::entities::list;
use crate::restore::mailboxes::meta_for;
use crate::restore::when::pick_part_at;
use crate::timefmt;
use clap::Args;

#[derive(Args, Debug)]
pub struct EntitiesArgs {
    /// The newest complete snapshot at or before WHEN (UTC): 2026-11-20, last, 7d, D-7.
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "last",
        allow_hyphen_values = true
    )]
    pub at: String,
    /// Host [default: `host` of the config, else this machine's primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// Print JSON: {"snapshot", "date", "source", "users": [{"name", "folders"}], "shared": […],
    /// "collections": {"USER": [{"kind": "calendar"|"addressbook", "name", "display_name"}]}}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &EntitiesArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    let host = host_or_default(a.host.as_deref(), &common);
    let at = parse_at(Some(&a.at))?;
    let all = repo.snapshots()?;
    let e = &common.config.entities;
    let spool = pick_part_at(&all, &host, &e.mailbox.part, &at)?;
    let meta = meta_for(&all, spool, &e.mailboxes_db.part);
    let l = list(
        &repo,
        spool,
        meta.map(|m| (m, e.mailboxes_db.path.as_str())),
    )?;
    if a.json {
        let v = serde_json::json!({
            "snapshot": spool.id.short(),
            "date": timefmt::iso8601(spool.manifest.started_ns),
            "source": l.source,
            "users": l.users,
            "shared": l.shared,
            "collections": l.collections,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(EXIT_OK);
    }
    println!(
        "{host}/{} snapshot {} of {} UTC ({}):",
        spool.manifest.part,
        spool.id.short(),
        timefmt::display(spool.manifest.started_ns),
        l.source
    );
    for u in &l.users {
        println!("user    {:<40} {}", u.name, folders(u.folders));
    }
    for s in &l.shared {
        println!("shared  {:<40} {}", s.name, folders(s.folders));
    }
    for (user, colls) in &l.collections {
        for c in colls {
            let shown = c
                .display_name
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            println!(
                "{:<7} {user:<40} {}{shown}",
                if c.kind == "calendar" { "cal" } else { "book" },
                c.name
            );
        }
    }
    Ok(EXIT_OK)
}

fn folders(n: usize) -> String {
    super::errors::count(n as u64, "folder", "folders")
}
