//! `bmbackup entities`: the users and shared mailboxes present in a snapshot of the Cyrus spool,
//! for an operator (and the console's restore wizard) choosing what to restore. Taken from the
//! mailbox list of the same time when the config directory is backed up, else read from the
//! spool itself: legacy `…/user/<name>` folders and the names in uuid folders' `cyrus.header`s.
//! With the mailbox list, each user's calendars and address books (CalDAV/CardDAV collections,
//! mailbox types `c` and `a`) are listed too, with their display names from `annotations.db`,
//! and are not counted as mail folders.

use super::mailboxes::{entry_at, read_file, read_mailboxes_db};
use crate::cyrus::header::Header;
use crate::cyrus::mboxlist::Kind;
use crate::cyrus::name::MboxName;
use crate::model::{Snapshot, Tree};
use crate::repo::{RepoError, Repository};
use std::collections::BTreeMap;

/// Folders visited at most when reading the spool itself.
const SCAN_BUDGET: usize = 500_000;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EntityInfo {
    /// `alice@example.org`, or a shared mailbox's top level `shared@example.org`.
    pub name: String,
    /// Its mailboxes (the INBOX or shared mailbox and every folder below it).
    pub folders: usize,
}

/// One calendar or address book of a user.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CollectionInfo {
    /// `calendar` or `addressbook`.
    pub kind: &'static str,
    /// Its name in the DAV URL (`Default`).
    pub name: String,
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct EntityList {
    pub users: Vec<EntityInfo>,
    pub shared: Vec<EntityInfo>,
    /// Per user (`alice@example.org`), the calendars and address books.
    pub collections: BTreeMap<String, Vec<CollectionInfo>>,
    /// Where the list comes from.
    pub source: String,
}

/// Lists a spool snapshot's users and shared mailboxes.
pub fn list(
    repo: &Repository,
    spool: &Snapshot,
    meta: Option<(&Snapshot, &str)>,
) -> Result<EntityList, RepoError> {
    let mut names: Vec<MboxName> = Vec::new();
    let mut source = None;
    let mut collections: BTreeMap<String, Vec<CollectionInfo>> = BTreeMap::new();
    if let Some((m, path)) = meta {
        if let Ok((list, _)) = read_mailboxes_db(repo, m, path)? {
            let conf_dir = path.rsplit_once('/').map(|x| x.0).unwrap_or("");
            let shown = super::dav::display_names(repo, m, conf_dir)?;
            for b in list.mailboxes.iter().filter(|b| b.is_live()) {
                let kind = b.kind();
                if kind == Kind::Mail {
                    names.push(b.name.clone());
                    continue;
                }
                // `user.alice.#calendars.Default`: the collection is two levels below the user.
                let (Some(user), true) = (b.name.user(), b.name.parts.len() == 4) else {
                    continue;
                };
                let kind = match kind {
                    Kind::Calendar => "calendar",
                    Kind::AddressBook => "addressbook",
                    _ => continue,
                };
                collections.entry(user).or_default().push(CollectionInfo {
                    kind,
                    name: b.name.parts[3].clone(),
                    display_name: b.uniqueid.as_ref().and_then(|u| shown.get(u).cloned()),
                });
            }
            source = Some(format!(
                "mailboxes.db of {} snapshot {}",
                m.manifest.part,
                m.id.short()
            ));
        }
    }
    if source.is_none() {
        names = scan(repo, spool)?;
        source = Some(format!(
            "the folders of {} snapshot {}",
            spool.manifest.part,
            spool.id.short()
        ));
    }
    let mut users: BTreeMap<String, usize> = BTreeMap::new();
    let mut shared: BTreeMap<String, usize> = BTreeMap::new();
    for n in names {
        match n.user() {
            Some(u) => *users.entry(u).or_default() += 1,
            None => {
                if let Some(top) = n.parts.first() {
                    let name = match &n.domain {
                        Some(d) => format!("{top}@{d}"),
                        None => top.clone(),
                    };
                    *shared.entry(name).or_default() += 1;
                }
            }
        }
    }
    let to_vec = |m: BTreeMap<String, usize>| {
        m.into_iter()
            .map(|(name, folders)| EntityInfo { name, folders })
            .collect()
    };
    Ok(EntityList {
        users: to_vec(users),
        shared: to_vec(shared),
        collections: collections
            .into_iter()
            .map(|(u, mut v)| {
                v.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
                (u, v)
            })
            .collect(),
        source: source.unwrap_or_default(),
    })
}

/// Mailbox names read from the spool: every folder below a `user` folder (legacy layouts; the
/// domain is the folder after `domain/<letter>/` or the one holding `user`), and the `N` of
/// every `uuid/x/y/<id>/cyrus.header`.
fn scan(repo: &Repository, spool: &Snapshot) -> Result<Vec<MboxName>, RepoError> {
    let mut out = Vec::new();
    let mut budget = SCAN_BUDGET;
    let root = repo.read_tree(spool.root)?;
    let mut stack: Vec<(Tree, Vec<String>)> = vec![(root, Vec::new())];
    while let Some((t, path)) = stack.pop() {
        for e in &t.entries {
            let Some(id) = e.subtree() else { continue };
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return Ok(out);
            }
            let name = String::from_utf8_lossy(&e.name).into_owned();
            let mut p = path.clone();
            p.push(name.clone());
            if let Some(i) = p.iter().position(|c| c == "user") {
                let deleted = i > 0 && p[i - 1] == crate::cyrus::name::DELETED_PREFIX;
                if p.len() > i + 1 && !deleted {
                    let domain = domain_of(&p[..i]);
                    let parts: Vec<String> = p[i..].iter().map(|c| c.replace('^', ".")).collect();
                    out.push(MboxName { domain, parts });
                }
            }
            if path.len() == 3 && path.first().is_some_and(|c| c == "uuid") {
                if let Some(h) = entry_at(repo, spool, &format!("{}/cyrus.header", p.join("/")))? {
                    if let Ok(Header::V3(d)) = Header::parse(&read_file(repo, &h)?) {
                        if let Some(n) = d.text("N").and_then(|n| MboxName::from_legacy(&n)) {
                            out.push(n);
                        }
                    }
                }
                continue;
            }
            if p.len() < 12 {
                stack.push((repo.read_tree(id)?, p));
            }
        }
    }
    Ok(out)
}

fn domain_of(above_user: &[String]) -> Option<String> {
    if let Some(i) = above_user.iter().position(|c| c == "domain") {
        let rest = &above_user[i + 1..];
        return match rest {
            [h, d, ..] if h.len() == 1 => Some(d.clone()),
            [d, ..] => Some(d.clone()),
            [] => None,
        };
    }
    above_user.iter().rev().find(|c| c.contains('.')).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_from_folder_paths() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            domain_of(&v(&["domain", "e", "example.org", "a"])).as_deref(),
            Some("example.org")
        );
        assert_eq!(
            domain_of(&v(&["domain", "example.org"])).as_deref(),
            Some("example.org")
        );
        assert_eq!(
            domain_of(&v(&["example.com"])).as_deref(),
            Some("example.com")
        );
        assert_eq!(domain_of(&v(&["a"])), None);
    }
}
