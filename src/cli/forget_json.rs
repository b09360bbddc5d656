//! `bmbackup forget --json`: the same runs as the text forms (a policy, or named snapshots and
//! `--all`), told as one JSON document. A deletion by name cannot ask in JSON mode: it needs
//! `--yes` or `--dry-run`.

use super::forget::ForgetArgs;
use super::EXIT_OK;
use crate::repo::Repository;
use crate::retention::forget::{delete as delete_doomed, forget, plan, Doomed, Plan, Selection};
use crate::retention::prune::{prune, PruneOptions};
use crate::retention::Policy;
use crate::store::now_ns;
use serde_json::json;

pub fn run(
    repo: &Repository,
    a: &ForgetArgs,
    selection: &Selection,
    policy: &Policy,
) -> anyhow::Result<i32> {
    let (plan, removed) = if a.dry_run {
        (plan(repo, selection, policy, now_ns())?, 0)
    } else {
        forget(repo, selection, policy, now_ns())?
    };
    let pruned = if a.prune && !a.dry_run {
        Some(super::json::prune(&prune(repo, &PruneOptions::default())?))
    } else {
        None
    };
    super::json::print(&json!({
        "dry_run": a.dry_run,
        "snapshots": super::json::plan(&plan),
        "would_remove": plan.removed().count(),
        "removed": removed,
        "prune": pruned,
    }))?;
    Ok(EXIT_OK)
}

/// `forget SNAPSHOT... --json` and `forget --host IP --all --json`.
pub fn delete(
    repo: &Repository,
    a: &ForgetArgs,
    doomed: &Doomed,
    plan: &Plan,
) -> anyhow::Result<i32> {
    if !a.dry_run && !a.yes {
        return Err(super::UsageError(
            "forget --json cannot ask before deleting: add --yes (or --dry-run to list)".into(),
        )
        .into());
    }
    let removed = if a.dry_run {
        0
    } else {
        delete_doomed(repo, doomed, plan)?
    };
    let pruned = if a.prune && !a.dry_run {
        Some(super::json::prune(&prune(repo, &PruneOptions::default())?))
    } else {
        None
    };
    super::json::print(&json!({
        "dry_run": a.dry_run,
        "snapshots": super::json::plan(plan),
        "would_remove": plan.removed().count(),
        "removed": removed,
        "newest_removed": plan.newest_removed.iter()
            .map(|(part, all)| json!({"part": part, "every_snapshot": all}))
            .collect::<Vec<_>>(),
        "prune": pruned,
    }))?;
    Ok(EXIT_OK)
}
