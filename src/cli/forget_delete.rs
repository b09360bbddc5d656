//! `bmbackup forget SNAPSHOT...` and `forget --host IP [--part NAME] --all`: deleting snapshots on
//! purpose. Prints what goes (and whether a part loses its newest or every snapshot), asks on a
//! terminal unless `--yes`, refuses without one; `--dry-run` only prints.

use super::forget::{print_plan, ForgetArgs};
use super::{Cli, EXIT_OK, EXIT_USAGE};
use crate::retention::forget::{delete, plan_delete, Doomed, Plan};
use crate::retention::prune::{prune, PruneOptions};
use std::io::{BufRead, IsTerminal, Write};

pub fn run(cli: &Cli, a: &ForgetArgs) -> anyhow::Result<i32> {
    if a.policy.given() {
        crate::tell!("bmbackup forget: give snapshots (or --all) or --keep-… rules, not both");
        return Ok(EXIT_USAGE);
    }
    let doomed = match (&a.host, a.all) {
        (Some(host), true) => Doomed::All {
            host: host.clone(),
            parts: a
                .parts
                .iter()
                .map(|p| p.trim_matches('/').to_string())
                .collect(),
        },
        _ if a.host.is_some() || !a.parts.is_empty() => {
            crate::tell!("bmbackup forget: --host/--part select for --all or a policy; name snapshots as HOST/PART/NAME");
            return Ok(EXIT_USAGE);
        }
        _ => Doomed::Snapshots(a.snapshots.clone()),
    };
    let (common, repo) = cli.open_repo()?;
    if a.all {
        let parts: Vec<&str> = a.parts.iter().map(String::as_str).collect();
        super::select::check(
            &repo.snapshots()?,
            a.host.as_deref(),
            &parts,
            &common.config,
        )?;
    }
    let plan = plan_delete(&repo, &doomed)?;
    if a.json {
        return super::forget_json::delete(&repo, a, &doomed, &plan);
    }
    print_plan(&plan);
    let n = plan.removed().count();
    let warning = newest_warning(&plan);
    if let Some(w) = &warning {
        crate::say!("{w}");
    }
    if a.dry_run {
        crate::say!("dry run: would delete {}; nothing was deleted", snaps(n));
        return Ok(EXIT_OK);
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            crate::tell!("bmbackup forget: not deleting {} without confirmation: there is no terminal to ask on; add --yes to delete them (or --dry-run to list them)", snaps(n));
            return Ok(EXIT_USAGE);
        }
        if !confirm(n, warning.is_some())? {
            crate::say!("nothing was deleted");
            return Ok(EXIT_OK);
        }
    }
    let removed = delete(&repo, &doomed, &plan)?;
    if !a.prune {
        crate::say!(
            "deleted {}; their data is freed by the next prune",
            snaps(removed)
        );
        return Ok(EXIT_OK);
    }
    crate::say!("deleted {}", snaps(removed));
    let report = prune(&repo, &PruneOptions::default())?;
    crate::say!("prune: {}", super::prune::text(&report));
    Ok(EXIT_OK)
}

/// `1 snapshot`, `2 snapshots`.
fn snaps(n: usize) -> String {
    super::errors::count(n as u64, "snapshot", "snapshots")
}

/// Says which parts lose their newest snapshot, or all of them: a policy never does that.
fn newest_warning(plan: &Plan) -> Option<String> {
    let mut lines = Vec::new();
    for (part, all) in &plan.newest_removed {
        lines.push(if *all {
            format!("warning: this deletes EVERY snapshot of {part}")
        } else {
            format!("warning: this deletes the newest snapshot of {part} (its `last` on the mount)")
        });
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Asks on the terminal; only `y` or `yes` deletes.
fn confirm(n: usize, newest: bool) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    write!(
        err,
        "delete {}{}? This cannot be undone. [y/N] ",
        if n == 1 {
            "this snapshot".to_string()
        } else {
            format!("these {n} snapshots")
        },
        if newest { ", newest included" } else { "" }
    )?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
