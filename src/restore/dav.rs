//! A user's calendars and address books on a Cyrus CalDAV/CardDAV server, as of a snapshot:
//! which collections existed ([`collections`]: the snapshot's `mailboxes.db`, types `c` and
//! `a`, display names from `annotations.db`), what each held ([`resources`]: the live items of
//! the user's `.dav` SQLite index of the same time, each read from its RFC 5322 wrapper in the
//! spool snapshot), and putting them back **through the server** ([`super::dav_put`]), so that
//! Cyrus moves its index, the `.dav` database and the sync-token forward and clients see the
//! change. Files put back under a running server would do none of that.

use super::mailboxes::{entry_at, place_listed, read_file, read_mailboxes_db, Lookup};
use super::user_id::User;
use crate::cyrus::layout;
use crate::cyrus::mboxlist::{Kind, Mailbox};
use crate::cyrus::ImapdConf;
use crate::model::{Snapshot, Tree};
use crate::repo::{RepoError, Repository};

#[derive(Debug, thiserror::Error)]
pub enum DavError {
    #[error("calendars and contacts are found in Cyrus' mailbox list: no complete {0} snapshot with mailboxes.db (back up Cyrus' config directory, [entities.mailboxes_db])")]
    NoMailboxList(String),
    #[error("mailboxes.db: {0}")]
    MailboxList(String),
    #[error("{user} has no {kind} named {name:?} in snapshot {snapshot}; there are: {have}")]
    NoSuchCollection {
        user: String,
        kind: &'static str,
        name: String,
        snapshot: String,
        have: String,
    },
    #[error("{user} has no calendar or address book in snapshot {snapshot} (mailboxes.db lists none below {root})")]
    NoCollections {
        user: String,
        snapshot: String,
        root: String,
    },
    #[error("{0}")]
    Index(String),
    #[error("[entities.dav] is not in the config: calendars and contacts are restored through Cyrus' DAV server (url, admin, password_file)")]
    NotConfigured,
    #[error("{path}: {why}")]
    Secret { path: String, why: String },
    #[error(transparent)]
    Http(#[from] super::dav_http::HttpError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    When(#[from] super::when::WhenError),
}

/// Calendar or address book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DavKind {
    Calendar,
    AddressBook,
}

impl DavKind {
    pub fn name(self) -> &'static str {
        match self {
            DavKind::Calendar => "calendar",
            DavKind::AddressBook => "address book",
        }
    }

    /// The user's home below the server's URL: `/dav/calendars/user/<user>/`.
    pub fn home(self, user: &User) -> String {
        let top = match self {
            DavKind::Calendar => "calendars",
            DavKind::AddressBook => "addressbooks",
        };
        format!("/dav/{top}/user/{}/", url_escape(&user.to_string()))
    }

    /// The `.dav` table and its UID column.
    fn table(self) -> (&'static str, &'static str) {
        match self {
            DavKind::Calendar => ("ical_objs", "ical_uid"),
            DavKind::AddressBook => ("vcard_objs", "vcard_uid"),
        }
    }
}

/// One calendar or address book of a snapshot.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Collection {
    pub kind: DavKind,
    /// Its name in the URL (`Default`, `work`).
    pub name: String,
    pub display_name: Option<String>,
    /// The Cyrus mailbox (`example.org!user.alice.#calendars.Default`).
    pub mailbox: String,
    pub uniqueid: String,
    /// Its folder in the spool snapshot.
    #[serde(skip)]
    pub path: String,
    /// Items alive at the snapshot (from the `.dav` index; None when it was not backed up).
    pub items: Option<usize>,
}

/// The calendars and address books of `user` in `spool`, with the mailbox list of `meta`.
pub fn collections(
    repo: &Repository,
    spool: &Snapshot,
    meta: Option<(&Snapshot, &str)>,
    conf: Option<&ImapdConf>,
    user: &User,
) -> Result<Vec<Collection>, DavError> {
    let Some((meta_snap, db_path)) = meta else {
        return Err(DavError::NoMailboxList(spool.manifest.host.clone()));
    };
    let (list, _) = read_mailboxes_db(repo, meta_snap, db_path)?.map_err(DavError::MailboxList)?;
    let root = user.root();
    let boxes: Vec<&Mailbox> = list
        .tree(&root)
        .into_iter()
        .filter(|m| {
            // `#calendars` itself is typed `c` too: collections are one level below it.
            m.name.parts.len() == root.parts.len() + 2
                && matches!(m.kind(), Kind::Calendar | Kind::AddressBook)
        })
        .collect();
    let l = Lookup {
        repo,
        spool,
        meta,
        conf,
    };
    let spool_root = repo.read_tree(spool.root)?;
    let mut notes = Vec::new();
    let (folders, _) = place_listed(&l, &spool_root, &boxes, &mut notes)?;
    for n in notes {
        log::info!("{n}");
    }
    let conf_dir = db_path.rsplit_once('/').map(|x| x.0).unwrap_or("");
    let names = display_names(repo, meta_snap, conf_dir)?;
    let index = DavIndex::open(repo, meta_snap, conf_dir, &list.mailboxes, user)?;
    let mut out = Vec::new();
    for f in folders {
        let Some(m) = boxes.iter().find(|m| m.name == f.name) else {
            continue;
        };
        let kind = if m.kind() == Kind::Calendar {
            DavKind::Calendar
        } else {
            DavKind::AddressBook
        };
        let uniqueid = m.uniqueid.clone().unwrap_or_default();
        let items = match &index {
            Some(ix) => Some(ix.alive(kind, &uniqueid, &m.name.legacy())?.len()),
            None => None,
        };
        out.push(Collection {
            kind,
            name: m.name.parts.last().cloned().unwrap_or_default(),
            display_name: names.get(&uniqueid).cloned(),
            mailbox: m.name.legacy(),
            uniqueid,
            path: f.path,
            items,
        });
    }
    Ok(out)
}

/// One calendar object or vCard of a snapshot.
#[derive(Clone, Debug)]
pub struct Resource {
    /// Its name in the collection (`ev1.ics`).
    pub name: String,
    /// The iCalendar or vCard UID, when the index has it.
    pub uid: Option<String>,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The items of `coll` alive at the snapshot; the notes say what could not be read.
pub fn resources(
    repo: &Repository,
    spool: &Snapshot,
    meta: Option<(&Snapshot, &str)>,
    coll: &Collection,
    user: &User,
) -> Result<(Vec<Resource>, Vec<String>), DavError> {
    let mut notes = Vec::new();
    let mut out = Vec::new();
    let index = match meta {
        Some((m, db_path)) => {
            let conf_dir = db_path.rsplit_once('/').map(|x| x.0).unwrap_or("");
            let (list, _) = read_mailboxes_db(repo, m, db_path)?.map_err(DavError::MailboxList)?;
            DavIndex::open(repo, m, conf_dir, &list.mailboxes, user)?
        }
        None => None,
    };
    let wanted: Option<Vec<(String, u32, Option<String>)>> = match &index {
        Some(ix) => Some(ix.alive(coll.kind, &coll.uniqueid, &coll.mailbox)?),
        None => {
            notes.push(format!(
                "{}'s DAV index (.dav) is not in the backup: every message file of {} is put \
                 back, including items deleted shortly before the snapshot",
                user, coll.name
            ));
            None
        }
    };
    let folder = repo.read_tree(
        entry_at(repo, spool, &coll.path)?
            .and_then(|e| e.subtree())
            .ok_or_else(|| DavError::Index(format!("{} is not in the snapshot", coll.path)))?,
    )?;
    let files: Vec<(String, u32, Option<String>)> = match wanted {
        Some(w) => w,
        None => message_files(&folder),
    };
    for (name, imap_uid, uid) in files {
        let Some(e) = folder.find(format!("{imap_uid}.").as_bytes()) else {
            notes.push(format!(
                "{name} (message {imap_uid}.) is in the index but not in the spool snapshot"
            ));
            continue;
        };
        let wrapper = read_file(repo, e)?;
        match unwrap_resource(&wrapper) {
            Some((ctype, body, filename)) => out.push(Resource {
                name: if name.is_empty() {
                    filename.unwrap_or_else(|| format!("{imap_uid}.{}", extension(coll.kind)))
                } else {
                    name
                },
                uid,
                content_type: ctype,
                body,
            }),
            None => notes.push(format!("{imap_uid}. of {}: not a DAV resource", coll.name)),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, notes))
}

fn extension(kind: DavKind) -> &'static str {
    match kind {
        DavKind::Calendar => "ics",
        DavKind::AddressBook => "vcf",
    }
}

/// Every `N.` message file of a folder (without an index: resource names from the wrappers).
fn message_files(folder: &Tree) -> Vec<(String, u32, Option<String>)> {
    let mut v: Vec<(String, u32, Option<String>)> = folder
        .entries
        .iter()
        .filter_map(|e| {
            let n = std::str::from_utf8(&e.name).ok()?.strip_suffix('.')?;
            Some((String::new(), n.parse().ok()?, None))
        })
        .collect();
    v.sort_by_key(|x| x.1);
    v
}

/// The body of a Cyrus DAV wrapper (an RFC 5322 message), its content type and the resource
/// name of its `Content-Disposition` filename.
pub fn unwrap_resource(wrapper: &[u8]) -> Option<(String, Vec<u8>, Option<String>)> {
    let (head, body) = find(wrapper, b"\r\n\r\n")
        .map(|i| (&wrapper[..i], &wrapper[i + 4..]))
        .or_else(|| find(wrapper, b"\n\n").map(|i| (&wrapper[..i], &wrapper[i + 2..])))?;
    // Unfold continuation lines, then read the few headers used.
    let head = String::from_utf8_lossy(head)
        .replace("\r\n\t", " ")
        .replace("\r\n ", " ");
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let ctype = header("Content-Type")?;
    let base = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if base != "text/calendar" && base != "text/vcard" && base != "text/x-vcard" {
        return None;
    }
    let body = match header("Content-Transfer-Encoding") {
        Some(cte) if cte.eq_ignore_ascii_case("base64") => {
            super::dav_http::unb64(&String::from_utf8_lossy(body))?
        }
        _ => body.to_vec(),
    };
    let filename = header("Content-Disposition").and_then(|d| {
        let i = d.find("filename=")?;
        let name = d[i + 9..]
            .split(';')
            .next()?
            .trim()
            .trim_matches('"')
            .to_string();
        (!name.is_empty() && !name.contains(['/', '\0'])).then_some(name)
    });
    Some((base, body, filename))
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// The display names (`DAV:displayname` annotations) by mailbox unique id, from the
/// `annotations.db` beside `mailboxes.db` (parsed here; absent or unreadable: none).
pub fn display_names(
    repo: &Repository,
    meta: &Snapshot,
    conf_dir: &str,
) -> Result<std::collections::HashMap<String, String>, RepoError> {
    let mut out = std::collections::HashMap::new();
    let path = join(conf_dir, "annotations.db");
    let Some(e) = entry_at(repo, meta, &path)? else {
        return Ok(out);
    };
    if e.size > 1 << 30 {
        return Ok(out);
    }
    let Ok(recs) = crate::cyrus::twoskip::read_db(&read_file(repo, &e)?) else {
        return Ok(out);
    };
    const ENTRY: &[u8] = b"/vendor/cmu/cyrus-httpd/<DAV:>displayname";
    for (k, v) in recs {
        let mut parts = k.split(|b| *b == 0);
        let (Some(id), Some(entry)) = (parts.next(), parts.next()) else {
            continue;
        };
        // Only the shared value (an empty user id), not a user's private one.
        if entry != ENTRY || parts.next().is_some_and(|u| !u.is_empty()) {
            continue;
        }
        if let Some(name) = annotation_value(&v) {
            out.insert(String::from_utf8_lossy(id).into_owned(), name);
        }
    }
    Ok(out)
}

/// An annotation record's value: a 32-bit big-endian length, then (Cyrus 3.x) 4 more bytes,
/// then the value.
fn annotation_value(v: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as usize;
    let at = |off: usize| {
        v.get(off..off + len)
            .filter(|_| v.get(off + len) == Some(&0))
    };
    let bytes = at(8).or_else(|| at(4))?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// The user's `.dav` SQLite index of the snapshot, copied to a private temporary file.
struct DavIndex {
    _dir: tempfile_dir::TempDir,
    db: rusqlite::Connection,
}

impl DavIndex {
    /// Finds it: `user/uuid/x/y/<INBOX id>/dav.db` (uuid folders) or `…/user/<l>/<local>.dav`.
    fn open(
        repo: &Repository,
        meta: &Snapshot,
        conf_dir: &str,
        mailboxes: &[Mailbox],
        user: &User,
    ) -> Result<Option<DavIndex>, DavError> {
        let root = user.root();
        let mut candidates = Vec::new();
        if let Some(id) = mailboxes
            .iter()
            .find(|m| m.name == root)
            .and_then(|m| m.uniqueid.clone())
        {
            candidates.push(join(
                conf_dir,
                &format!("user/{}/dav.db", layout::uuid_path(&id)),
            ));
        }
        let local = user.local.replace('.', "^");
        for h in layout::Hashing::ALL {
            let letter = layout::hash_letter(&local, h)
                .map(|c| format!("{c}/"))
                .unwrap_or_default();
            let user_dir = format!("user/{letter}{local}.dav");
            let p = if user.domain.is_empty() {
                user_dir
            } else {
                format!("{}/{user_dir}", layout::domain_dir(&user.domain, h))
            };
            candidates.push(join(conf_dir, &p));
        }
        for c in candidates {
            let Some(e) = entry_at(repo, meta, &c)? else {
                continue;
            };
            let dir = tempfile_dir::TempDir::new().map_err(DavError::Index)?;
            let file = dir.0.join("user.dav");
            std::fs::write(&file, read_file(repo, &e)?)
                .map_err(|e| DavError::Index(format!("{}: {e}", file.display())))?;
            let db = rusqlite::Connection::open_with_flags(
                &file,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .map_err(|e| DavError::Index(format!("{c} in snapshot: {e}")))?;
            return Ok(Some(DavIndex { _dir: dir, db }));
        }
        Ok(None)
    }

    /// (resource, message uid, UID) of the alive items of a collection (named by unique id in
    /// Cyrus 3.6, by mailbox name before).
    fn alive(
        &self,
        kind: DavKind,
        uniqueid: &str,
        name: &str,
    ) -> Result<Vec<(String, u32, Option<String>)>, DavError> {
        let (table, uid_col) = kind.table();
        let sql = format!(
            "SELECT resource, imap_uid, {uid_col} FROM {table} \
             WHERE alive = 1 AND (mailbox = ?1 OR mailbox = ?2) ORDER BY resource"
        );
        let err = |e: rusqlite::Error| DavError::Index(format!("the .dav index: {e}"));
        let mut st = self.db.prepare(&sql).map_err(err)?;
        let rows = st
            .query_map([uniqueid, name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }
}

/// A 0700 temporary folder removed on drop.
mod tempfile_dir {
    pub struct TempDir(pub std::path::PathBuf);

    impl TempDir {
        pub fn new() -> Result<TempDir, String> {
            use std::os::unix::fs::DirBuilderExt;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let p =
                std::env::temp_dir().join(format!("bmbackup-dav-{}-{nanos}", std::process::id()));
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(TempDir(p))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Percent-escapes what may not appear raw in a URL path segment.
pub fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+!$&'()*,;=:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappers_unwrap() {
        let w = b"From: <a@x>\r\nContent-Type: text/vcard; version=3.0\r\nContent-Disposition: attachment;\r\n\tfilename=\"c1.vcf\"\r\n\r\nBEGIN:VCARD\r\nEND:VCARD\r\n";
        let (t, body, name) = unwrap_resource(w).unwrap();
        assert_eq!(t, "text/vcard");
        assert_eq!(body, b"BEGIN:VCARD\r\nEND:VCARD\r\n");
        assert_eq!(name.as_deref(), Some("c1.vcf"));
        assert!(unwrap_resource(b"Content-Type: text/plain\r\n\r\nhi").is_none());
        assert_eq!(url_escape("a b/c@d"), "a%20b%2Fc@d");
    }

    #[test]
    fn annotation_values() {
        let mut v = vec![0, 0, 0, 8, 0, 0, 0, 0];
        v.extend(b"personal\0text/plain\0");
        assert_eq!(annotation_value(&v).as_deref(), Some("personal"));
        let mut old = vec![0, 0, 0, 4];
        old.extend(b"Work\0");
        assert_eq!(annotation_value(&old).as_deref(), Some("Work"));
    }
}
