//! Finding an entity's mailboxes (a user's, or a shared mailbox's, with all their folders) in a
//! snapshot of the Cyrus spool, the way Cyrus itself would, in this order:
//!
//! 1. **mailboxes.db**: the mailbox list of the same time, from the part that backs up Cyrus'
//!    config directory. It names every folder with its partition, unique id and whether its
//!    files sit in a legacy (name-based) or uuid folder; the folder is then computed
//!    ([`crate::cyrus::layout`]) and must exist in the spool snapshot.
//! 2. **layout rules**: the legacy folder computed from the name with each hashing setting
//!    (the live `imapd.conf`'s first), with and without the domain, on each partition folder;
//!    the subfolders are the mailbox's folders.
//! 3. **search**: the `cyrus.header` of every uuid folder (each names its mailbox), else a walk
//!    of the snapshot for `…/user/<name>` under a folder named after the domain (any layout a
//!    template does not describe, such as the test spools of `gen`).
//!
//! [`Found`] says which rule answered, and the CLI prints it.

pub use super::snap_files::{entry_at, read_file};
use super::snap_files::{join, subtree};
use crate::cyrus::header::Header;
use crate::cyrus::layout::{self, Hashing};
use crate::cyrus::mboxlist::{self, Kind, MailboxList, Reader};
use crate::cyrus::name::MboxName;
use crate::cyrus::ImapdConf;
use crate::model::{Entry, Snapshot, Tree};
use crate::repo::{RepoError, Repository};
use crate::timefmt;

/// `mailboxes.db` larger than this is refused (a real one with a million mailboxes is ~300 MiB).
const MAX_MBOXDB: u64 = 2 << 30;
/// Folders visited at most by the search rule.
const SEARCH_BUDGET: usize = 200_000;
/// Deepest folder the search rule descends to (a legacy hashed path is 6 deep).
const SEARCH_DEPTH: usize = 8;

/// One mailbox folder found in the spool snapshot.
#[derive(Clone, Debug)]
pub struct Folder {
    pub name: MboxName,
    /// Its folder in the spool snapshot, `/`-separated.
    pub path: String,
    /// Files named after the mailbox (legacy) rather than its unique id.
    pub legacy: bool,
    pub partition: String,
    /// The partition's folder inside the snapshot (`""` when the part is the partition).
    pub partition_prefix: String,
    pub acl: Vec<(String, String)>,
    /// Its Cyrus 3.6 type letters when known (`e`, `el`, `c`…; empty: mail).
    pub mbtype: String,
}

/// The top folders Cyrus' DAV and JMAP servers keep below a user's mailbox (the defaults of
/// `calendarprefix`, `addressbookprefix`, `davnotificationsprefix`, …): collections, not mail,
/// which a mail restore found without a mailbox list leaves out.
pub const DAV_FOLDERS: &[&str] = &[
    "#calendars",
    "#addressbooks",
    "#notifications",
    "#jmap",
    "#jmapsubmission",
    "#jmappushsubscription",
    "#jmapnotification",
    "#sieve",
];

/// Which rule found the folders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    MailboxesDb {
        part: String,
        snapshot: String,
        reader: Reader,
    },
    Layout(String),
    /// The names in the uuid folders' `cyrus.header` files.
    Headers,
    Search,
    Template(String),
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::MailboxesDb {
                part,
                snapshot,
                reader,
            } => write!(
                f,
                "mailboxes.db of {part} snapshot {snapshot} ({})",
                match reader {
                    Reader::CyrDbtool => "read with cyr_dbtool",
                    Reader::Parser => "parsed by bmbackup",
                }
            ),
            Found::Layout(rule) => write!(f, "Cyrus layout rule ({rule})"),
            Found::Headers => write!(f, "the cyrus.header files of the spool's uuid folders"),
            Found::Search => write!(f, "a search of the spool snapshot"),
            Found::Template(t) => write!(f, "the [entities] template {t:?}"),
        }
    }
}

/// The folders of one entity and how they were found.
#[derive(Clone, Debug)]
pub struct Located {
    pub root: MboxName,
    /// Parents first; the first is the root (the INBOX, or the shared mailbox itself).
    pub folders: Vec<Folder>,
    pub found: Found,
    /// The hashing the legacy folders were found with.
    pub hashing: Hashing,
    /// The mailbox list had Cyrus 3.6 keys (`ctl_mboxlist -u` takes JSON).
    pub v36: bool,
    /// Things the operator should know (a mailbox listed but absent from the spool, …).
    pub notes: Vec<String>,
}

impl Located {
    /// Cyrus-aware results restore folder by folder; the others as one folder tree.
    pub fn per_folder(&self) -> bool {
        matches!(
            self.found,
            Found::MailboxesDb { .. } | Found::Layout(_) | Found::Headers
        )
    }
}

/// What the lookup may read.
pub struct Lookup<'a> {
    pub repo: &'a Repository,
    pub spool: &'a Snapshot,
    /// The config directory's snapshot and the path of `mailboxes.db` in it.
    pub meta: Option<(&'a Snapshot, &'a str)>,
    pub conf: Option<&'a ImapdConf>,
}

/// Finds `root`'s folders (`root` is `user.alice` or a shared mailbox); `alt` is another
/// spelling to try with the layout rules (the name without its domain, for a server without
/// virtdomains). `None`: no rule found them.
pub fn locate(
    l: &Lookup<'_>,
    root: &MboxName,
    alt: Option<&MboxName>,
) -> Result<Option<Located>, RepoError> {
    let mut notes = Vec::new();
    let spool_root = l.repo.read_tree(l.spool.root)?;
    if let Some((meta, path)) = l.meta {
        let apart = meta
            .manifest
            .started_ns
            .abs_diff(l.spool.manifest.started_ns);
        if apart > 3_600_000_000_000 {
            notes.push(format!(
                "the mailbox list ({} snapshot {}) is from {} UTC and the spool from {} UTC: \
                 folders created or deleted in between are missed or reported absent",
                meta.manifest.part,
                meta.id.short(),
                timefmt::display(meta.manifest.started_ns),
                timefmt::display(l.spool.manifest.started_ns)
            ));
        }
        match read_mailboxes_db(l.repo, meta, path)? {
            Ok((list, reader)) => {
                let names: Vec<&MboxName> = [Some(root), alt].into_iter().flatten().collect();
                let mut listed = false;
                for r in names {
                    let all = list.tree(r);
                    if all.is_empty() {
                        continue;
                    }
                    // Calendars, address books and the other DAV collections are mailboxes
                    // too; a mail restore leaves them alone (`--what calendar|contacts`).
                    let (boxes, dav): (Vec<_>, Vec<_>) =
                        all.into_iter().partition(|m| m.kind() == Kind::Mail);
                    if !dav.is_empty() {
                        notes.push(format!(
                            "{} calendar, address book or other DAV collection(s) left out of \
                             the mail restore (--what calendar or contacts restores them)",
                            dav.len()
                        ));
                    }
                    listed = true;
                    let found = Found::MailboxesDb {
                        part: meta.manifest.part.clone(),
                        snapshot: format!(
                            "{} of {}",
                            meta.id.short(),
                            timefmt::display(meta.manifest.started_ns)
                        ),
                        reader,
                    };
                    let (folders, hashing) = place_listed(l, &spool_root, &boxes, &mut notes)?;
                    if folders.first().is_some_and(|f| &f.name == r) {
                        return Ok(Some(Located {
                            root: r.clone(),
                            folders,
                            found,
                            hashing,
                            v36: list.v36,
                            notes,
                        }));
                    }
                    notes.push(format!(
                        "{} is in {found} but its folder is not in the spool snapshot",
                        r.legacy()
                    ));
                }
                if !listed {
                    notes.push(format!(
                        "{} is not in mailboxes.db of {} snapshot {}",
                        root.legacy(),
                        meta.manifest.part,
                        meta.id.short()
                    ));
                }
            }
            Err(e) => notes.push(format!(
                "mailboxes.db of {} snapshot {} not used: {e}",
                meta.manifest.part,
                meta.id.short()
            )),
        }
    }
    for r in [Some(root), alt].into_iter().flatten() {
        if let Some(mut loc) = by_layout(l, &spool_root, r)? {
            loc.notes = notes;
            return Ok(Some(loc));
        }
    }
    for r in [Some(root), alt].into_iter().flatten() {
        let folders = by_headers(l, &spool_root, r)?;
        if folders.first().is_some_and(|f| &f.name == r) {
            return Ok(Some(Located {
                root: r.clone(),
                folders,
                found: Found::Headers,
                hashing: Hashing::None,
                v36: true,
                notes,
            }));
        }
    }
    if let Some(path) = search(l.repo, &spool_root, root)? {
        return Ok(Some(Located {
            root: root.clone(),
            folders: vec![Folder {
                name: root.clone(),
                path,
                legacy: true,
                partition: String::new(),
                partition_prefix: String::new(),
                acl: Vec::new(),
                mbtype: String::new(),
            }],
            found: Found::Search,
            hashing: Hashing::None,
            v36: false,
            notes,
        }));
    }
    Ok(None)
}

/// The snapshot of the config directory's part (`meta_part`) to read beside `spool`: the
/// complete one taken closest in time (the same backup run backs up both, one after the other,
/// so the list matches the spool best; an older or newer list only shifts which folders are
/// listed, and folders absent from the spool are reported, not restored).
pub fn meta_for<'a>(
    all: &'a [Snapshot],
    spool: &Snapshot,
    meta_part: &str,
) -> Option<&'a Snapshot> {
    let part = meta_part.trim_matches('/');
    all.iter()
        .filter(|s| {
            s.manifest.host == spool.manifest.host
                && s.manifest.part == part
                && s.manifest.status == crate::model::SnapshotStatus::Complete
        })
        .min_by_key(|s| s.manifest.started_ns.abs_diff(spool.manifest.started_ns))
}

/// Reads and interprets `mailboxes.db` from a snapshot: `Err(text)` for a file that is absent or
/// unusable (the next rule is tried), `RepoError` for a store that cannot be read.
pub fn read_mailboxes_db(
    repo: &Repository,
    snap: &Snapshot,
    path: &str,
) -> Result<Result<(MailboxList, Reader), String>, RepoError> {
    let Some(entry) = entry_at(repo, snap, path)? else {
        return Ok(Err(format!("{path} is not in the snapshot")));
    };
    if entry.size > MAX_MBOXDB {
        return Ok(Err(format!(
            "{path} is {} bytes, more than bmbackup reads",
            entry.size
        )));
    }
    let data = read_file(repo, &entry)?;
    Ok(mboxlist::read(&data, (entry.uid, entry.gid)))
}

/// Where partition `name` sits inside the spool part: the live `partition-<name>` folder below
/// the part's source folder, a subfolder named after the partition, or the part itself.
fn partition_prefixes(l: &Lookup<'_>, spool_root: &Tree, name: &str) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(p) = l.conf.and_then(|c| c.partition(name)) {
        if let Ok(rel) = p.strip_prefix(&l.spool.manifest.source) {
            v.push(rel.to_string_lossy().trim_matches('/').to_string());
        }
    }
    if !name.is_empty() && spool_root.find(name.as_bytes()).is_some() {
        v.push(name.to_string());
    }
    v.push(String::new());
    v.dedup();
    v
}

fn hashings(l: &Lookup<'_>) -> Vec<Hashing> {
    let mut v: Vec<Hashing> = l.conf.map(|c| vec![c.hashing()]).unwrap_or_default();
    v.extend(Hashing::ALL);
    v.dedup();
    let mut seen = Vec::new();
    v.retain(|h| {
        let new = !seen.contains(h);
        seen.push(*h);
        new
    });
    v
}

/// Rule 1: the listed mailboxes' folders, those present in the spool snapshot.
pub fn place_listed(
    l: &Lookup<'_>,
    spool_root: &Tree,
    boxes: &[&mboxlist::Mailbox],
    notes: &mut Vec<String>,
) -> Result<(Vec<Folder>, Hashing), RepoError> {
    let mut out = Vec::new();
    let mut used = l.conf.map(ImapdConf::hashing).unwrap_or(Hashing::Letter);
    for m in boxes {
        let mut hit = None;
        'search: for prefix in partition_prefixes(l, spool_root, &m.partition) {
            if m.legacy_dirs {
                for h in hashings(l) {
                    let p = join(&prefix, &layout::legacy_path(&m.name, h));
                    if subtree(l.repo, spool_root, &p)?.is_some() {
                        used = h;
                        hit = Some((p, prefix));
                        break 'search;
                    }
                }
            } else if let Some(id) = &m.uniqueid {
                let p = join(&prefix, &layout::uuid_path(id));
                if subtree(l.repo, spool_root, &p)?.is_some() {
                    hit = Some((p, prefix));
                    break 'search;
                }
            }
        }
        match hit {
            Some((path, partition_prefix)) => out.push(Folder {
                name: m.name.clone(),
                path,
                legacy: m.legacy_dirs,
                partition: m.partition.clone(),
                partition_prefix,
                acl: m.acl.clone(),
                mbtype: m.mbtype.clone(),
            }),
            None => notes.push(format!(
                "{} (partition {}) is listed but its folder is not in the spool snapshot (created after it?)",
                m.name.legacy(),
                m.partition
            )),
        }
    }
    Ok((out, used))
}

/// Rule 2: the legacy folder of `root`, and every folder below it.
fn by_layout(
    l: &Lookup<'_>,
    spool_root: &Tree,
    root: &MboxName,
) -> Result<Option<Located>, RepoError> {
    let partition = l
        .conf
        .and_then(|c| c.get("defaultpartition"))
        .unwrap_or("default")
        .to_string();
    for prefix in partition_prefixes(l, spool_root, &partition) {
        for h in hashings(l) {
            let path = join(&prefix, &layout::legacy_path(root, h));
            let Some(tree) = subtree(l.repo, spool_root, &path)? else {
                continue;
            };
            let mk = |name: MboxName, path: String| Folder {
                name,
                path,
                legacy: true,
                partition: partition.clone(),
                partition_prefix: prefix.clone(),
                acl: Vec::new(),
                mbtype: String::new(),
            };
            let mut folders = vec![mk(root.clone(), path.clone())];
            // A folder's hash letter is that of its name after the first level, so a user's
            // folders all sit below the user's, but a shared mailbox's subfolders may sit below
            // other letters (`s/shared`, `o/shared/other`): each letter is looked in, and a
            // folder counts where its own name puts it.
            let mut starts = vec![(tree, path.clone())];
            if h != Hashing::None && root.parts.len() == 1 {
                let base = match &root.domain {
                    Some(d) => join(&prefix, &layout::domain_dir(d, h)),
                    None => prefix.clone(),
                };
                if let Some(letters) = subtree(l.repo, spool_root, &base)? {
                    for e in letters.entries.iter().filter(|e| e.name.len() == 1) {
                        let p = join(
                            &base,
                            &format!("{}/{}", char::from(e.name[0]), root.parts[0]),
                        );
                        if p == path {
                            continue;
                        }
                        if let Some(t) = subtree(l.repo, spool_root, &p)? {
                            starts.push((t, p));
                        }
                    }
                }
            }
            for (tree, start) in starts {
                let mut stack = vec![(tree, root.clone(), start, 0usize)];
                while let Some((t, name, p, depth)) = stack.pop() {
                    if depth > 64 {
                        continue;
                    }
                    for e in &t.entries {
                        let Some(id) = e.subtree() else { continue };
                        let dir = String::from_utf8_lossy(&e.name).into_owned();
                        if depth == 0 && DAV_FOLDERS.contains(&dir.as_str()) {
                            continue;
                        }
                        let child = name.child(&dir.replace('^', "."));
                        let cp = join(&p, &dir);
                        if join(&prefix, &layout::legacy_path(&child, h)) == cp {
                            folders.push(mk(child.clone(), cp.clone()));
                        }
                        stack.push((l.repo.read_tree(id)?, child, cp, depth + 1));
                    }
                }
            }
            folders[1..].sort_by(|a, b| a.name.parts.cmp(&b.name.parts));
            let rule = format!(
                "{}{}{}",
                h.describe(),
                if root.domain.is_some() {
                    ", virtdomains"
                } else {
                    ", no virtdomains"
                },
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!(", partition folder {prefix}")
                }
            );
            return Ok(Some(Located {
                root: root.clone(),
                folders,
                found: Found::Layout(rule),
                hashing: h,
                v36: false,
                notes: Vec::new(),
            }));
        }
    }
    Ok(None)
}

/// Rule 3 for uuid folders: every `uuid/x/y/<id>/cyrus.header` below a partition folder whose
/// name is `root` or below it (parents first).
fn by_headers(
    l: &Lookup<'_>,
    spool_root: &Tree,
    root: &MboxName,
) -> Result<Vec<Folder>, RepoError> {
    let partition = l
        .conf
        .and_then(|c| c.get("defaultpartition"))
        .unwrap_or("default")
        .to_string();
    let mut out = Vec::new();
    let mut budget = SEARCH_BUDGET;
    for prefix in partition_prefixes(l, spool_root, &partition) {
        let Some(uuid) = subtree(l.repo, spool_root, &join(&prefix, "uuid"))? else {
            continue;
        };
        for a in uuid.entries.iter().filter_map(Entry::subtree) {
            for b in l.repo.read_tree(a)?.entries.iter() {
                let Some(b_id) = b.subtree() else { continue };
                let b_tree = l.repo.read_tree(b_id)?;
                for c in &b_tree.entries {
                    budget = budget.saturating_sub(1);
                    if budget == 0 {
                        return Ok(out);
                    }
                    let Some(c_id) = c.subtree() else { continue };
                    let folder = l.repo.read_tree(c_id)?;
                    let Some(h) = folder.find(b"cyrus.header") else {
                        continue;
                    };
                    let Ok(header) = Header::parse(&read_file(l.repo, h)?) else {
                        continue;
                    };
                    let Some(name) = header.name() else { continue };
                    let mbtype = header.mbtype().unwrap_or_default();
                    if !name.is_under(root) || Kind::of(&mbtype) != Kind::Mail {
                        continue;
                    }
                    let id = String::from_utf8_lossy(&c.name).into_owned();
                    out.push(Folder {
                        name,
                        path: join(&prefix, &layout::uuid_path(&id)),
                        legacy: false,
                        partition: partition.clone(),
                        partition_prefix: prefix.clone(),
                        acl: header.acl(),
                        mbtype,
                    });
                }
            }
        }
        if !out.is_empty() {
            break;
        }
    }
    out.sort_by(|a, b| a.name.parts.cmp(&b.name.parts));
    Ok(out)
}

/// Rule 3: a folder named like the mailbox's last level below one named like its first (`user`
/// for users), below one named after the domain when there is one.
fn search(
    repo: &Repository,
    spool_root: &Tree,
    root: &MboxName,
) -> Result<Option<String>, RepoError> {
    let legacy: Vec<String> = root.parts.iter().map(|p| p.replace('.', "^")).collect();
    let (Some(first), Some(last)) = (legacy.first(), legacy.last()) else {
        return Ok(None);
    };
    let mut budget = SEARCH_BUDGET;
    // Breadth-first, so the shallowest match wins.
    let mut queue = std::collections::VecDeque::from([(spool_root.clone(), Vec::<String>::new())]);
    while let Some((t, path)) = queue.pop_front() {
        for e in &t.entries {
            let Some(id) = e.subtree() else { continue };
            let name = String::from_utf8_lossy(&e.name).into_owned();
            let mut p = path.clone();
            p.push(name.clone());
            let parent_ok = legacy.len() == 1 || path.last() == Some(first);
            let domain_ok = root
                .domain
                .as_ref()
                .is_none_or(|d| path.iter().any(|c| c == d));
            // Cyrus writes a dot in a name as `^`; other tools keep the dot.
            let name_ok = &name == last || name.replace('^', ".") == last.replace('^', ".");
            if name_ok && parent_ok && domain_ok {
                return Ok(Some(p.join("/")));
            }
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return Ok(None);
            }
            if p.len() < SEARCH_DEPTH {
                queue.push_back((repo.read_tree(id)?, p));
            }
        }
    }
    Ok(None)
}
