//! `bmbackup forget`: applies a retention policy (flags shared with nothing else, the same keys
//! as the config's `[retention]`), printing each snapshot with its verdict and the rules that
//! keep it; `--dry-run` only prints. With SNAPSHOT... or `--all` it deletes on purpose instead
//! (`forget_delete`).

use super::errors::count;
use super::policy_args::PolicyArgs;
use super::{format, Cli, EXIT_OK, EXIT_USAGE};
use crate::retention::forget::{forget, plan, Plan, Selection};
use crate::retention::prune::{prune, PruneOptions};
use crate::retention::RetentionError;
use crate::store::now_ns;
use clap::Args;

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Snapshots to delete on purpose, whatever a policy would keep (the newest too): an id
    /// prefix, HOST/PART/NAME (the folder name on the mount) or HOST/PART/last.
    #[arg(value_name = "SNAPSHOT", conflicts_with = "all")]
    pub snapshots: Vec<String>,
    /// Delete every snapshot of --host (only of its --part ones when given).
    #[arg(long, requires = "host")]
    pub all: bool,
    /// Delete without asking (an explicit deletion asks on a terminal, and refuses without one).
    #[arg(long)]
    pub yes: bool,
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots of this part (repeatable).
    #[arg(long = "part", value_name = "NAME")]
    pub parts: Vec<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Print what would be kept and removed, and why; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Then delete the data no snapshot references any more (as `bmbackup prune`).
    #[arg(long)]
    pub prune: bool,
    /// Print one JSON document: each snapshot's verdict, how many were removed, the prune.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &ForgetArgs) -> anyhow::Result<i32> {
    if !a.snapshots.is_empty() || a.all {
        return super::forget_delete::run(cli, a);
    }
    // A usage error, checked before the store is opened: an empty policy must never delete.
    let policy = match a.policy.policy() {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return usage(&RetentionError::EmptyPolicy),
        Err(e) => return usage(&e),
    };
    let (common, repo) = cli.open_repo()?;
    let parts: Vec<&str> = a.parts.iter().map(String::as_str).collect();
    super::select::check(
        &repo.snapshots()?,
        a.host.as_deref(),
        &parts,
        &common.config,
    )?;
    let selection = Selection {
        host: a.host.clone(),
        parts: a
            .parts
            .iter()
            .map(|p| p.trim_matches('/').to_string())
            .collect(),
    };
    if a.json {
        return super::forget_json::run(&repo, a, &selection, &policy);
    }
    if a.dry_run {
        let plan = plan(&repo, &selection, &policy, now_ns())?;
        print_plan(&plan);
        let n = plan.removed().count();
        crate::say!(
            "dry run: would remove {n} of {}; nothing was deleted",
            count(plan.verdicts.len() as u64, "snapshot", "snapshots")
        );
        if a.prune {
            // A prune dry run now would still count the snapshots above as live.
            crate::say!(
                "(--prune is not run in a dry run: the snapshots above are still in the store)"
            );
        }
        return Ok(EXIT_OK);
    }
    let (plan, removed) = forget(&repo, &selection, &policy, now_ns())?;
    print_plan(&plan);
    if !a.prune {
        crate::say!(
            "removed {removed} of {}; their data is freed by the next prune",
            count(plan.verdicts.len() as u64, "snapshot", "snapshots")
        );
        return Ok(EXIT_OK);
    }
    crate::say!(
        "removed {removed} of {}",
        count(plan.verdicts.len() as u64, "snapshot", "snapshots")
    );
    let report = prune(&repo, &PruneOptions::default())?;
    crate::say!("prune: {}", super::prune::text(&report));
    Ok(EXIT_OK)
}

fn usage(e: &RetentionError) -> anyhow::Result<i32> {
    crate::tell!("bmbackup forget: {e}");
    crate::tell!("usage: bmbackup forget [--host IP] [--part NAME] --keep-… [--dry-run] [--prune]");
    crate::tell!("       bmbackup forget SNAPSHOT... | --host IP [--part NAME] --all  [--dry-run] [--yes] [--prune]; see `bmbackup forget --help`");
    Ok(EXIT_USAGE)
}

/// One block per host and part: `keep`/`remove`, folder name, id, status, size and reasons.
pub(super) fn print_plan(plan: &Plan) {
    if plan.verdicts.is_empty() {
        crate::say!("no snapshots match");
        return;
    }
    let mut group = None;
    for v in &plan.verdicts {
        let m = &v.snapshot.manifest;
        let key = (m.host.as_str(), m.part.as_str());
        if group != Some(key) {
            crate::say!("{}/{}:", m.host, m.part);
            group = Some(key);
        }
        let line = format!(
            "  {:<6}  {:<20}  {:<12}  {:<8}  {:>10}  {}",
            if v.decision.keep { "keep" } else { "remove" },
            v.name,
            v.snapshot.id.short(),
            m.status.as_str(),
            format::size(m.bytes),
            v.decision.reasons.join(", ")
        );
        crate::say!("{}", line.trim_end());
    }
}
