//! `bmbackup forget --json`: the same run as the text form, told as one JSON document.

use super::forget::ForgetArgs;
use super::EXIT_OK;
use crate::repo::Repository;
use crate::retention::forget::{forget, plan, Selection};
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
