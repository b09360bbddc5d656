//! `restore-user`: one user's mail (and archived mail), or one shared mailbox, at a point in
//! time. The mailboxes are found as Cyrus does ([`super::mailboxes`]: the snapshot's
//! `mailboxes.db`, else the layout rules, else a search), or where the config's `[entities]`
//! template says when it has one; this module plans where each folder goes (a new folder beside
//! the live mailbox, under `--to`, or in place), checks that the entity exists (else suggests
//! close names) and that destinations are free, then restores.
//!
//! Why the default is a new `Restored-<date>` folder and not in place: Cyrus' `cyrus.index` and
//! `cyrus.header` hold the mailbox's UID counter and unique id. Put back in place, they rewind
//! UIDs that clients have already seen, so clients keep their caches and do not show the
//! restored mail. A new folder is a new mailbox to clients: with Cyrus-found folders each gets a
//! new `cyrus.header` (new name and unique id, [`super::cyrus_folder`]) and keeps its index (the
//! flags); with a template or search, its `cyrus.*` files are left out and `reconstruct` builds
//! them.

use super::cyrus_folder::{self, NewFolder};
use super::mailboxes::{locate, Located, Lookup};
pub use super::suggest::{closest, edit_distance};
pub use super::user_id::{User, What};
use super::user_journal::Journal;
use crate::config::{Entities, EntityConfig};
use crate::cyrus::name::MboxName;
use crate::cyrus::{tool_display, ImapdConf};
use crate::model::{Entry, Snapshot, Tree};
use crate::repo::{RepoError, Repository};
use crate::restore::glob::Glob;
use crate::restore::when::{pick_part_at, When, WhenError};
use crate::restore::{restore, RestoreError, RestoreOptions, RestoreReport};
use crate::timefmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum UserRestoreError {
    #[error("{0:?} is not a user: give local@domain (e.g. jdoe@example.com), or local alone on a server without virtual domains")]
    BadUser(String),
    #[error("{what:?}: expected mail, archive, calendar, contacts or all (comma-separated)")]
    BadWhat { what: String },
    #[error("{user} is not in {part} snapshot {snapshot} ({path} is missing){hint}")]
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
    #[error("{0}")]
    Cyrus(String),
    #[error(transparent)]
    When(#[from] WhenError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

type Result<T> = std::result::Result<T, UserRestoreError>;

/// Where the restored folders go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A new folder `Restored-<date>` below the live mailbox.
    Beside,
    /// `DIR/<local>@<domain>/<part>/`.
    To(PathBuf),
    /// The user's live folder itself, removed first.
    InPlace,
}

/// One folder's share of a user restore.
#[derive(Clone, Debug)]
pub struct Item {
    pub what: What,
    pub snapshot: Snapshot,
    /// The folder inside the snapshot, `/`-separated.
    pub path: String,
    pub dest: PathBuf,
    /// In place: the folder is removed before the restore (never merged); with `files_only`,
    /// only its files (its subfolders are other mailboxes, restored as their own items).
    pub remove_first: bool,
    pub exclude: Vec<Glob>,
    /// One Cyrus mailbox: its files without its subfolders.
    pub files_only: bool,
    /// Restored as a new Cyrus mailbox (new header and unique id).
    pub new_folder: Option<NewFolder>,
}

/// What would be restored, and what was skipped and why.
#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
    pub skipped: Vec<String>,
    /// How the mailboxes were found (for the output), and remarks.
    pub found: Option<String>,
    pub notes: Vec<String>,
    /// The new mailbox tree, when restored as new Cyrus mailboxes.
    pub new_root: Option<MboxName>,
    /// The mailbox list had Cyrus 3.6 keys.
    pub v36: bool,
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
    /// The live server's imapd.conf, when readable.
    pub conf: Option<&'a ImapdConf>,
    /// For [`Destination::Beside`]: the Nth restore of that date, `Restored-<date>-N` (None:
    /// `Restored-<date>`). The console takes the next free one instead of failing on an
    /// earlier restore's folder.
    pub label_number: Option<u32>,
}

/// Checks everything before anything is written: snapshots, the user's folders, destinations.
pub fn plan(repo: &Repository, entities: &Entities, req: &Request<'_>) -> Result<Plan> {
    plan_resuming(repo, entities, req, None)
}

/// As [`plan`], continuing the interrupted run `journal` recorded: its destinations are not
/// refused as not empty, and its new mailboxes keep their unique ids and folders.
pub fn plan_resuming(
    repo: &Repository,
    entities: &Entities,
    req: &Request<'_>,
    journal: Option<&Journal>,
) -> Result<Plan> {
    let all = repo.snapshots()?;
    let mut plan = Plan::default();
    for &what in req.what {
        if what.is_dav() {
            // Put back through the DAV server by super::dav, not as folders.
            continue;
        }
        let entity = what.entity(entities);
        let snap = match pick_part_at(&all, req.host, &entity.part, &req.at) {
            Ok(s) => s.clone(),
            Err(e) if req.lenient && what == What::Archive => {
                plan.skipped.push(format!("archive: {e}"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let day = &timefmt::folder_name(snap.manifest.started_ns)[..10];
        let label = match req.label_number {
            Some(n) => format!("Restored-{day}-{n}"),
            None => format!("Restored-{day}"),
        };
        if what == What::Mail && entity.path.is_empty() {
            let meta = super::mailboxes::meta_for(&all, &snap, &entities.mailboxes_db.part)
                .map(|m| (m, entities.mailboxes_db.path.as_str()));
            if meta.is_none() {
                plan.notes.push(format!(
                    "no mailbox list used: no complete {}/{} snapshot",
                    req.host, entities.mailboxes_db.part
                ));
            }
            let lookup = Lookup {
                repo,
                spool: &snap,
                meta,
                conf: req.conf,
            };
            let root = req.user.root();
            let alt = root.domain.as_ref().map(|_| MboxName {
                domain: None,
                parts: root.parts.clone(),
            });
            let Some(loc) = locate(&lookup, &root, alt.as_ref())? else {
                plan.notes.clear();
                return Err(not_found(repo, &snap, meta, req.user)?);
            };
            plan.found = Some(loc.found.to_string());
            plan.notes.extend(loc.notes.iter().cloned());
            plan.v36 = loc.v36;
            if loc.per_folder() {
                plan_folders(&mut plan, &loc, &snap, req, &label, journal)?;
                continue;
            }
            let path = loc
                .folders
                .first()
                .map(|f| f.path.clone())
                .unwrap_or_default();
            push_tree(&mut plan, what, &snap, path, req, &label, journal)?;
            continue;
        }
        let template = if entity.path.is_empty() {
            EntityConfig::archive().path
        } else {
            entity.path.clone()
        };
        let path = req.user.expand(&template);
        if let Err(e) = check_exists(repo, &snap, &template, &path, req.user) {
            if req.lenient && what == What::Archive {
                plan.skipped.push(format!("archive: {e}"));
                continue;
            }
            return Err(e);
        }
        if what == What::Mail {
            plan.found = Some(super::mailboxes::Found::Template(template).to_string());
        }
        push_tree(&mut plan, what, &snap, path, req, &label, journal)?;
    }
    Ok(plan)
}

/// One folder tree restored as a whole (template, search, archive).
fn push_tree(
    plan: &mut Plan,
    what: What,
    snap: &Snapshot,
    path: String,
    req: &Request<'_>,
    label: &str,
    journal: Option<&Journal>,
) -> Result<()> {
    let journal = journal.filter(|j| j.covers(&snap.id.to_string()));
    let live = Path::new(&snap.manifest.source).join(&path);
    let (dest, remove_first, mut exclude) = match req.dest {
        Destination::Beside => (live.join(label), false, vec![Glob::new("cyrus.*")]),
        Destination::To(dir) => (
            dir.join(req.user.to_string()).join(&snap.manifest.part),
            false,
            vec![],
        ),
        Destination::InPlace => (live, true, vec![]),
    };
    if what == What::Mail {
        // A user's calendars and address books are folders of the same tree: not mail.
        exclude.extend(super::mailboxes::DAV_FOLDERS.iter().map(|d| Glob::new(d)));
    }
    let resumed = journal.is_some_and(|j| j.has_dest(&dest));
    if !remove_first && !req.overwrite && !resumed && !is_empty_or_missing(&dest)? {
        return Err(UserRestoreError::NotEmpty(dest.display().to_string()));
    }
    plan.items.push(Item {
        what,
        snapshot: snap.clone(),
        path,
        dest,
        remove_first,
        exclude,
        files_only: false,
        new_folder: None,
    });
    Ok(())
}

/// Cyrus-found folders, one item each.
fn plan_folders(
    plan: &mut Plan,
    loc: &Located,
    snap: &Snapshot,
    req: &Request<'_>,
    label: &str,
    journal: Option<&Journal>,
) -> Result<()> {
    let journal = journal.filter(|j| j.covers(&snap.id.to_string()));
    let source = Path::new(&snap.manifest.source);
    let mut items = Vec::new();
    match req.dest {
        Destination::Beside => {
            let mut tree = cyrus_folder::plan(loc, source, req.conf, label);
            if let Some(j) = journal {
                j.apply(&mut tree.folders);
            }
            if let Some(live) = req.conf.and_then(live_mailboxes) {
                // The commands run against the live server: its list's version decides them.
                plan.v36 = live.v36;
                if live
                    .mailboxes
                    .iter()
                    .any(|m| m.is_live() && m.name == tree.root)
                {
                    return Err(UserRestoreError::Cyrus(format!(
                        "mailbox {} already exists on the server (restored earlier from the same \
                         day?): rename or delete it first, or restore elsewhere with --to",
                        tree.root.legacy()
                    )));
                }
            }
            for nf in &tree.folders {
                items.push(Item {
                    what: What::Mail,
                    snapshot: snap.clone(),
                    path: nf.src.path.clone(),
                    dest: nf.dest.clone(),
                    remove_first: false,
                    exclude: vec![],
                    files_only: true,
                    new_folder: Some(nf.clone()),
                });
            }
            plan.new_root = Some(tree.root);
        }
        Destination::To(dir) => {
            let base = dir.join(req.user.to_string()).join(&snap.manifest.part);
            for f in &loc.folders {
                items.push(Item {
                    what: What::Mail,
                    snapshot: snap.clone(),
                    path: f.path.clone(),
                    dest: base.join(&f.path),
                    remove_first: false,
                    exclude: vec![],
                    files_only: true,
                    new_folder: None,
                });
            }
        }
        Destination::InPlace => {
            let live = req.conf.and_then(live_mailboxes);
            for f in &loc.folders {
                // A folder deleted since is not a mailbox any more: files put back there would
                // be invisible to Cyrus (the default Restored- folder brings it back).
                if let Some(live) = &live {
                    if !live
                        .mailboxes
                        .iter()
                        .any(|m| m.is_live() && m.name == f.name)
                    {
                        plan.notes.push(format!(
                            "{} is not a mailbox on the server any more: not restored in place \
                             (restore without --in-place to get it back as a new folder)",
                            f.name.legacy()
                        ));
                        continue;
                    }
                }
                items.push(Item {
                    what: What::Mail,
                    snapshot: snap.clone(),
                    path: f.path.clone(),
                    dest: source.join(&f.path),
                    remove_first: true,
                    exclude: vec![],
                    files_only: true,
                    new_folder: None,
                });
            }
        }
    }
    for it in &items {
        let resumed = journal.is_some_and(|j| j.has_dest(&it.dest));
        if !it.remove_first && !req.overwrite && !resumed && !is_empty_or_missing(&it.dest)? {
            return Err(UserRestoreError::NotEmpty(it.dest.display().to_string()));
        }
    }
    plan.items.extend(items);
    Ok(())
}

/// The live server's mailbox list (None when it cannot be read).
pub fn live_mailboxes(conf: &ImapdConf) -> Option<crate::cyrus::mboxlist::MailboxList> {
    use std::os::unix::fs::MetadataExt;
    let path = Path::new(conf.get("configdirectory")?).join("mailboxes.db");
    let data = std::fs::read(&path).ok()?;
    let md = std::fs::metadata(&path).ok()?;
    let (list, _) = crate::cyrus::mboxlist::read(&data, (md.uid(), md.gid())).ok()?;
    Some(list)
}

/// The error for an entity no rule found, with the close names of that snapshot.
fn not_found(
    repo: &Repository,
    snap: &Snapshot,
    meta: Option<(&Snapshot, &str)>,
    user: &User,
) -> Result<UserRestoreError> {
    let list = super::entities::list(repo, snap, meta)?;
    let names: Vec<String> = if user.shared {
        list.shared.iter().map(|e| e.name.clone()).collect()
    } else {
        list.users.iter().map(|e| e.name.clone()).collect()
    };
    let close = closest(&user.to_string(), &names, 5);
    Ok(UserRestoreError::NoSuchUser {
        user: format!("{} {user}", user.kind()),
        part: snap.manifest.part.clone(),
        snapshot: format!(
            "{} of {}",
            snap.id.short(),
            timefmt::display(snap.manifest.started_ns)
        ),
        path: format!("mailbox {}", user.root().legacy()),
        hint: if close.is_empty() {
            String::new()
        } else {
            format!("; did you mean {}?", close.join(", "))
        },
    })
}

/// What one item wrote; for a new Cyrus mailbox also its ACL (for the mailbox-list file).
pub struct Done {
    pub report: RestoreReport,
    pub new_folder: Option<(NewFolder, Vec<(String, String)>)>,
}

/// Restores one planned item (removing the live folder first when in place).
pub fn execute(repo: &Repository, item: &Item, opts: &RestoreOptions) -> Result<Done> {
    if let Some(nf) = &item.new_folder {
        let (report, acl) =
            cyrus_folder::write(repo, &item.snapshot, nf, opts).map_err(UserRestoreError::Cyrus)?;
        return Ok(Done {
            report,
            new_folder: Some((nf.clone(), acl)),
        });
    }
    if item.remove_first && !opts.dry_run {
        // By descriptors, like the restore itself: the live folder is in a tree users can write.
        if item.files_only {
            crate::restore::remove_files(&item.dest)?;
        } else {
            crate::restore::remove_tree(&item.dest)?;
        }
    }
    let opts = RestoreOptions {
        exclude: item.exclude.clone(),
        files_only: item.files_only,
        // The destination gets the user folder's owner and mode too: an exact copy for --to and
        // in place, and for a Restored- folder the owner Cyrus needs to write its index there.
        folder_metadata: true,
        ..opts.clone()
    };
    Ok(Done {
        report: restore(
            repo,
            &item.snapshot,
            item.path.as_bytes(),
            &item.dest,
            &opts,
        )?,
        new_folder: None,
    })
}

/// After every item: writes the mailbox-list file for the new mailboxes into `work_dir` and
/// returns the commands that make Cyrus take them, to print.
pub fn finish(
    plan: &Plan,
    done: &[(NewFolder, Vec<(String, String)>)],
    conf: Option<&ImapdConf>,
    work_dir: &Path,
    user: &User,
) -> Result<Vec<String>> {
    let Some(root) = &plan.new_root else {
        return Ok(Vec::new());
    };
    let c = conf.map(ImapdConf::c_flag).unwrap_or_default();
    let sep = conf.map(ImapdConf::separator).unwrap_or('/');
    let reconstruct = tool_display("reconstruct");
    if !plan.v36 {
        // Before 3.6 reconstruct -f finds the new folders by their cyrus.header.
        let parent = MboxName {
            domain: root.domain.clone(),
            parts: root.parts[..root.parts.len().saturating_sub(1)].to_vec(),
        };
        return Ok(vec![format!(
            "{reconstruct}{c} -r -f {}",
            parent.external(sep)
        )]);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let file = work_dir.join(format!(
        "{}-{}.mboxlist.json",
        user.to_string().replace('/', "_"),
        root.parts.last().map(String::as_str).unwrap_or("restored")
    ));
    cyrus_folder::write_mboxlist_file(&file, &cyrus_folder::mboxlist_json(done, now)).map_err(
        |source| UserRestoreError::Io {
            path: file.display().to_string(),
            source,
        },
    )?;
    Ok(vec![
        format!(
            "{}{c} -u < {}",
            tool_display("ctl_mboxlist"),
            file.display()
        ),
        format!("{reconstruct}{c} -r {}", root.external(sep)),
    ])
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
