//! `restore-user`: one user's mail (and archived mail) at a point in time. The config's
//! `[entities]` templates say where a user's folder sits in each part; this module plans where
//! each part's folder goes (beside the live mailbox, under `--to`, or in place), checks that the
//! user exists (else suggests close names) and that destinations are free, then restores.
//!
//! Why the default is a new `Restored-<date>` folder beside the live mailbox and not in place:
//! Cyrus' `cyrus.index` and `cyrus.header` hold the mailbox's UID counter and unique id. Put back
//! in place, they rewind UIDs that clients have already seen, so clients keep their caches and do
//! not show the restored mail. A new subfolder is a new mailbox to clients. Its `cyrus.*` files
//! are left out so that `reconstruct` gives it its own fresh index and id instead of a copy of
//! the live INBOX's.

use crate::config::{Entities, EntityConfig};
use crate::model::{Entry, Snapshot, Tree};
use crate::repo::{RepoError, Repository};
use crate::restore::glob::Glob;
use crate::restore::when::{pick_part_at, When, WhenError};
use crate::restore::{restore, RestoreError, RestoreOptions, RestoreReport};
use crate::timefmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum UserRestoreError {
    #[error("{0:?} is not a user: give local@domain, e.g. jdoe@example.com")]
    BadUser(String),
    #[error("{what:?}: expected mail, archive or all (comma-separated)")]
    BadWhat { what: String },
    #[error("user {user} is not in {part} snapshot {snapshot} ({path} is missing){hint}")]
    NoSuchUser {
        user: String,
        part: String,
        snapshot: String,
        path: String,
        hint: String,
    },
    #[error("{0} exists and is not empty; use --overwrite to restore over it (identical files are kept, others replaced)")]
    NotEmpty(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    When(#[from] WhenError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

type Result<T> = std::result::Result<T, UserRestoreError>;

/// A user as `local@domain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub local: String,
    pub domain: String,
}

impl User {
    pub fn parse(s: &str) -> Result<User> {
        let bad = || UserRestoreError::BadUser(s.to_string());
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let ok = |p: &str| {
            !p.is_empty() && p != "." && p != ".." && !p.contains(['/', '\0', '@', '{', '}'])
        };
        if !ok(local) || !ok(domain) {
            return Err(bad());
        }
        Ok(User {
            local: local.to_string(),
            domain: domain.to_string(),
        })
    }

    pub fn expand(&self, template: &str) -> String {
        template
            .replace("{domain}", &self.domain)
            .replace("{local}", &self.local)
    }
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Which of a user's data to restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Mail,
    Archive,
}

impl What {
    /// Parses `mail,archive,all`; `all` means both, with a part or user missing from the archive
    /// skipped (archives are off by default, and most users have none).
    pub fn parse_list(s: &str) -> Result<(Vec<What>, bool)> {
        let mut out = Vec::new();
        let mut all = false;
        for w in s.split(',').map(str::trim) {
            match w {
                "mail" | "mailbox" => out.push(What::Mail),
                "archive" => out.push(What::Archive),
                "all" => {
                    all = true;
                    out.extend([What::Mail, What::Archive]);
                }
                _ => return Err(UserRestoreError::BadWhat { what: w.into() }),
            }
        }
        out.sort_by_key(|w| *w as u8);
        out.dedup();
        Ok((out, all))
    }

    pub fn entity(self, e: &Entities) -> &EntityConfig {
        match self {
            What::Mail => &e.mailbox,
            What::Archive => &e.archive,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            What::Mail => "mail",
            What::Archive => "archive",
        }
    }
}

/// Where the restored folders go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// `<source>/<user folder>/Restored-<date>`, a new mailbox beside the live ones.
    Beside,
    /// `DIR/<local>@<domain>/<part>/`.
    To(PathBuf),
    /// The user's live folder itself, removed first.
    InPlace,
}

/// One part's share of a user restore.
#[derive(Clone, Debug)]
pub struct Item {
    pub what: What,
    pub snapshot: Snapshot,
    /// The user's folder inside the snapshot, `/`-separated.
    pub path: String,
    pub dest: PathBuf,
    /// In place: the folder is removed before the restore (never merged).
    pub remove_first: bool,
    pub exclude: Vec<Glob>,
}

/// What would be restored, and what was skipped and why.
#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
    pub skipped: Vec<String>,
}

pub struct Request<'a> {
    pub user: &'a User,
    pub what: &'a [What],
    /// `all` was asked: a missing archive part or user is skipped, not an error.
    pub lenient: bool,
    pub host: &'a str,
    pub at: When,
    pub dest: &'a Destination,
    pub overwrite: bool,
}

/// Checks everything before anything is written: snapshots, the user's folders, destinations.
pub fn plan(repo: &Repository, entities: &Entities, req: &Request<'_>) -> Result<Plan> {
    let all = repo.snapshots()?;
    let mut plan = Plan::default();
    for &what in req.what {
        let entity = what.entity(entities);
        let snap = match pick_part_at(&all, req.host, &entity.part, &req.at) {
            Ok(s) => s.clone(),
            Err(e) if req.lenient && what == What::Archive => {
                plan.skipped.push(format!("archive: {e}"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let path = req.user.expand(&entity.path);
        if let Err(e) = check_exists(repo, &snap, &entity.path, &path, req.user) {
            if req.lenient && what == What::Archive {
                plan.skipped.push(format!("archive: {e}"));
                continue;
            }
            return Err(e);
        }
        let live = Path::new(&snap.manifest.source).join(&path);
        let (dest, remove_first, exclude) = match req.dest {
            Destination::Beside => {
                let day = &timefmt::folder_name(snap.manifest.started_ns)[..10];
                (
                    live.join(format!("Restored-{day}")),
                    false,
                    vec![Glob::new("cyrus.*")],
                )
            }
            Destination::To(dir) => (
                dir.join(req.user.to_string()).join(&snap.manifest.part),
                false,
                vec![],
            ),
            Destination::InPlace => (live, true, vec![]),
        };
        if !remove_first && !req.overwrite && !is_empty_or_missing(&dest)? {
            return Err(UserRestoreError::NotEmpty(dest.display().to_string()));
        }
        plan.items.push(Item {
            what,
            snapshot: snap,
            path,
            dest,
            remove_first,
            exclude,
        });
    }
    Ok(plan)
}

/// Restores one planned item (removing the live folder first when in place).
pub fn execute(repo: &Repository, item: &Item, opts: &RestoreOptions) -> Result<RestoreReport> {
    if item.remove_first && !opts.dry_run {
        match std::fs::remove_dir_all(&item.dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(UserRestoreError::Io {
                    path: item.dest.display().to_string(),
                    source,
                })
            }
        }
    }
    let opts = RestoreOptions {
        exclude: item.exclude.clone(),
        // The destination gets the user folder's owner and mode too: an exact copy for --to and
        // in place, and for a Restored- folder the owner Cyrus needs to write its index there.
        folder_metadata: true,
        ..opts.clone()
    };
    Ok(restore(
        repo,
        &item.snapshot,
        item.path.as_bytes(),
        &item.dest,
        &opts,
    )?)
}

pub fn is_empty_or_missing(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(UserRestoreError::Io {
            path: dir.display().to_string(),
            source,
        }),
    }
}

/// Walks `path` in the snapshot; when a component is missing, the error suggests the closest
/// names of the folder where the walk stopped, phrased as users when that component is
/// `{local}` or `{domain}` in the template.
fn check_exists(
    repo: &Repository,
    snap: &Snapshot,
    template: &str,
    path: &str,
    user: &User,
) -> Result<()> {
    let mut tree: Tree = repo.read_tree(snap.root)?;
    let templ: Vec<&str> = template.split('/').filter(|c| !c.is_empty()).collect();
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, comp) in comps.iter().enumerate() {
        match tree.find(comp.as_bytes()).and_then(Entry::subtree) {
            Some(sub) => tree = repo.read_tree(sub)?,
            None => {
                let names: Vec<String> = tree
                    .entries
                    .iter()
                    .filter(|e| e.subtree().is_some())
                    .map(|e| String::from_utf8_lossy(&e.name).into_owned())
                    .collect();
                let close = closest(comp, &names, 5);
                let shown: Vec<String> = close
                    .iter()
                    .map(|n| match templ.get(i).copied() {
                        Some("{local}") => format!("{n}@{}", user.domain),
                        Some("{domain}") => format!("{}@{n}", user.local),
                        _ => comps[..i]
                            .iter()
                            .chain(std::iter::once(&n.as_str()))
                            .copied()
                            .collect::<Vec<_>>()
                            .join("/"),
                    })
                    .collect();
                let hint = if shown.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean {}?", shown.join(", "))
                };
                return Err(UserRestoreError::NoSuchUser {
                    user: user.to_string(),
                    part: snap.manifest.part.clone(),
                    snapshot: format!(
                        "{} of {}",
                        snap.id.short(),
                        timefmt::display(snap.manifest.started_ns)
                    ),
                    path: comps[..=i].join("/"),
                    hint,
                });
            }
        }
    }
    Ok(())
}

/// Up to `n` of `names` closest to `want` by edit distance, close enough to be a likely typo.
pub fn closest(want: &str, names: &[String], n: usize) -> Vec<String> {
    let limit = (want.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|c| (edit_distance(want, c), c))
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, c)| c.clone()).collect()
}

/// Levenshtein distance over characters, two rows of memory.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse_and_expand() {
        let u = User::parse("jdoe@example.com").unwrap();
        assert_eq!(u.expand("{domain}/user/{local}"), "example.com/user/jdoe");
        assert_eq!(u.to_string(), "jdoe@example.com");
        for bad in ["jdoe", "@x", "a@", "../x@y", "a@b/c", "a@..", "a@b@c"] {
            assert!(User::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_lists() {
        assert_eq!(What::parse_list("mail").unwrap(), (vec![What::Mail], false));
        assert_eq!(
            What::parse_list("archive,mail").unwrap(),
            (vec![What::Mail, What::Archive], false)
        );
        assert_eq!(
            What::parse_list("all").unwrap(),
            (vec![What::Mail, What::Archive], true)
        );
        assert!(What::parse_list("calendar").is_err());
    }

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("jdoe", "jdoe"), 0);
        let names: Vec<String> = ["john.doe", "jane.doe", "bob.smith", "johnny.doe"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("jhon.doe", &names, 5), ["john.doe"]);
        assert_eq!(closest("jon.doe", &names, 5), ["john.doe", "jane.doe"]);
        assert!(closest("zzzzzz", &names, 5).is_empty());
    }
}
