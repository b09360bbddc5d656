//! `forget`: applies a retention policy to the store's snapshots by deleting the manifests of the
//! snapshots it does not keep, or deletes snapshots named on purpose ([`Doomed`]). Only manifests
//! go: the data they referenced stays until `prune` deletes what no snapshot references, so
//! forget is cheap and runs beside backups (shared lock). A policy always keeps each part's
//! newest snapshot; an explicit deletion may remove it (the plan says so: [`Plan::newest_removed`]).

use crate::catalog::CatalogError;
use crate::id::SnapshotId;
use crate::model::{Snapshot, SnapshotStatus};
use crate::repo::{named_snapshots, RepoError, Repository};
use crate::retention::{decide, Decision, Policy, RetentionError, SnapshotMeta};
use crate::store::lock::{LockError, LockKind, StoreLock};
use crate::store::StoreError;
use std::collections::HashSet;

#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot forget snapshot {id} ({name}): {source}")]
    Delete {
        id: String,
        name: String,
        source: StoreError,
    },
    #[error("snapshot {id} was deleted from the store but is still in the catalog: {source}")]
    Catalog { id: String, source: CatalogError },
    #[error("{0}")]
    NothingMatches(String),
    #[error("the snapshots changed since they were listed (a backup or another forget ran); nothing was deleted: run the command again")]
    Changed,
}

/// Which snapshots a forget looks at; the others are left alone. Empty means "all".
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub host: Option<String>,
    pub parts: Vec<String>,
}

impl Selection {
    fn matches(&self, s: &Snapshot) -> bool {
        self.host.as_ref().is_none_or(|h| &s.manifest.host == h)
            && (self.parts.is_empty() || self.parts.iter().any(|p| p == &s.manifest.part))
    }
}

/// The verdict for one snapshot, with its folder name (`HOST/PART/NAME` in the mount).
#[derive(Debug, Clone)]
pub struct Verdict {
    pub snapshot: Snapshot,
    pub name: String,
    pub decision: Decision,
}

/// What a policy decides for the selected snapshots, sorted by host, part and time.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub verdicts: Vec<Verdict>,
    /// `HOST/PART` of each part whose newest snapshot the plan removes (only an explicit
    /// deletion can), with true when it removes every snapshot of that part.
    pub newest_removed: Vec<(String, bool)>,
}

impl Plan {
    pub fn removed(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.decision.keep)
    }
}

/// Decides, without changing anything, which selected snapshots `policy` keeps at `now_ns`.
pub fn plan(
    repo: &Repository,
    selection: &Selection,
    policy: &Policy,
    now_ns: i64,
) -> Result<Plan, ForgetError> {
    // Refused before looking at the store, so an empty policy fails the same on an empty store.
    if policy.is_empty() {
        return Err(RetentionError::EmptyPolicy.into());
    }
    let all = repo.snapshots()?;
    let selected: Vec<(&Snapshot, String)> = named_snapshots(&all)
        .into_iter()
        .filter(|(s, _)| selection.matches(s))
        .collect();
    let metas: Vec<SnapshotMeta> = selected
        .iter()
        .map(|(s, _)| SnapshotMeta {
            id: s.id.to_hex(),
            host: s.manifest.host.clone(),
            part: s.manifest.part.clone(),
            time_ns: s.manifest.started_ns,
            complete: s.manifest.status == SnapshotStatus::Complete,
        })
        .collect();
    let decisions = decide(&metas, policy, now_ns)?;
    Ok(Plan {
        verdicts: selected
            .into_iter()
            .zip(decisions)
            .map(|((s, name), decision)| Verdict {
                snapshot: s.clone(),
                name,
                decision,
            })
            .collect(),
        newest_removed: Vec::new(),
    })
}

/// Snapshots deleted on purpose, whatever a policy would keep.
#[derive(Debug, Clone)]
pub enum Doomed {
    /// Each an id prefix, `HOST/PART/NAME` or `HOST/PART/last`: every one must match.
    Snapshots(Vec<String>),
    /// Every snapshot of a host, or of some of its parts (a typo'd part, a decommissioned server).
    All { host: String, parts: Vec<String> },
}

/// The plan of an explicit deletion: the doomed snapshots, marked removed, sorted by host, part
/// and time. Any name that matches nothing fails the whole plan, so a typo deletes nothing.
pub fn plan_delete(repo: &Repository, doomed: &Doomed) -> Result<Plan, ForgetError> {
    let all = repo.snapshots()?;
    let ids: HashSet<SnapshotId> = match doomed {
        Doomed::Snapshots(specs) => {
            let mut ids = HashSet::new();
            for spec in specs {
                ids.insert(repo.resolve(spec)?.id);
            }
            ids
        }
        Doomed::All { host, parts } => {
            let sel = Selection {
                host: Some(host.clone()),
                parts: parts.clone(),
            };
            let ids: HashSet<SnapshotId> = all
                .iter()
                .filter(|s| sel.matches(s))
                .map(|s| s.id)
                .collect();
            for p in parts {
                if !all
                    .iter()
                    .any(|s| &s.manifest.host == host && &s.manifest.part == p)
                {
                    return Err(ForgetError::NothingMatches(format!(
                        "no snapshot of part {p:?} on host {host:?}; see `bmbackup snapshots`"
                    )));
                }
            }
            if ids.is_empty() {
                return Err(ForgetError::NothingMatches(format!(
                    "no snapshot of host {host:?}; see `bmbackup snapshots`"
                )));
            }
            ids
        }
    };
    let mut plan = Plan::default();
    for group in all
        .chunk_by(|a, b| a.manifest.host == b.manifest.host && a.manifest.part == b.manifest.part)
    {
        let named = named_snapshots(group);
        let doomed_here = named.iter().filter(|(s, _)| ids.contains(&s.id)).count();
        if doomed_here == 0 {
            continue;
        }
        if let Some((newest, _)) = named.last() {
            if ids.contains(&newest.id) {
                plan.newest_removed.push((
                    format!("{}/{}", newest.manifest.host, newest.manifest.part),
                    doomed_here == named.len(),
                ));
            }
        }
        plan.verdicts
            .extend(
                named
                    .into_iter()
                    .filter(|(s, _)| ids.contains(&s.id))
                    .map(|(s, name)| Verdict {
                        snapshot: s.clone(),
                        name,
                        decision: Decision {
                            keep: false,
                            reasons: Vec::new(),
                        },
                    }),
            );
    }
    Ok(plan)
}

/// Forget's lock: shared (backups may run meanwhile: they only add manifests; a prune may
/// not), never waited for.
fn shared_lock(repo: &Repository) -> Result<StoreLock, LockError> {
    StoreLock::acquire(
        repo.store.shared_backend(),
        LockKind::Shared,
        "forget",
        std::time::Duration::ZERO,
    )
}

/// Deletes what `confirmed` (a [`plan_delete`] shown to the user) removes, under a shared store
/// lock. The plan is made again under the lock and must remove exactly the same snapshots:
/// otherwise nothing is deleted ([`ForgetError::Changed`]).
pub fn delete(repo: &Repository, doomed: &Doomed, confirmed: &Plan) -> Result<usize, ForgetError> {
    let lock = shared_lock(repo)?;
    repo.sync()?;
    let now = plan_delete(repo, doomed)?;
    let ids = |p: &Plan| -> Vec<SnapshotId> { p.removed().map(|v| v.snapshot.id).collect() };
    if ids(&now) != ids(confirmed) {
        return Err(ForgetError::Changed);
    }
    apply(repo, &now, &lock)
}

/// Plans and applies `policy` under its own shared store lock (backups may run meanwhile: they
/// only add manifests; a prune may not). Planning happens under the lock, so what is deleted is
/// what the returned plan says. Returns the plan and how many snapshots went.
pub fn forget(
    repo: &Repository,
    selection: &Selection,
    policy: &Policy,
    now_ns: i64,
) -> Result<(Plan, usize), ForgetError> {
    let lock = shared_lock(repo)?;
    let plan = plan(repo, selection, policy, now_ns)?;
    let removed = apply(repo, &plan, &lock)?;
    Ok((plan, removed))
}

/// Deletes the manifests of the snapshots `plan` does not keep and returns how many went.
/// `lock` is the caller's store lock (shared is enough): checked first, so a forget whose lock
/// was taken away as stale does not delete while a prune believes it has the store to itself.
pub fn apply(repo: &Repository, plan: &Plan, lock: &StoreLock) -> Result<usize, ForgetError> {
    lock.check()?;
    let mut removed = 0;
    for v in plan.removed() {
        let id = &v.snapshot.id;
        match repo.store.delete_manifest(id) {
            Ok(()) => {}
            // Another forget (same policy, other host) got there first: the outcome is the same.
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            }
            Err(source) => {
                return Err(ForgetError::Delete {
                    id: id.short(),
                    name: format!(
                        "{}/{}/{}",
                        v.snapshot.manifest.host, v.snapshot.manifest.part, v.name
                    ),
                    source,
                })
            }
        }
        repo.catalog
            .remove_snapshot(id)
            .map_err(|source| ForgetError::Catalog {
                id: id.short(),
                source,
            })?;
        removed += 1;
    }
    Ok(removed)
}
