//! `forget`: applies a retention policy to the store's snapshots by deleting the manifests of the
//! snapshots it does not keep. Only manifests go: the data they referenced stays until `prune`
//! deletes what no snapshot references, so forget is cheap and runs beside backups (shared lock).

use crate::catalog::CatalogError;
use crate::model::{Snapshot, SnapshotStatus};
use crate::repo::{named_snapshots, RepoError, Repository};
use crate::retention::{decide, Decision, Policy, RetentionError, SnapshotMeta};
use crate::store::lock::{LockError, LockKind, StoreLock};
use crate::store::StoreError;

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
    })
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
    let lock = StoreLock::acquire(
        repo.store.shared_backend(),
        LockKind::Shared,
        "forget",
        std::time::Duration::ZERO,
    )?;
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
