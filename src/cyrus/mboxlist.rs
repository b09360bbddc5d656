//! The mailbox list (`mailboxes.db`): which mailboxes existed, their unique ids, partitions,
//! types and ACLs. Read with the server's own `cyr_dbtool` when it is installed (it knows every
//! format and version), else parsed here (twoskip and flat); both give the same records, which
//! `tests/cyrus_restore_user.rs` checks on a real server's file.
//!
//! Three generations of records are understood: Cyrus 3.6 and later (`N<name>` and `I<uuid>`
//! keys, dlist values with `T`ype letters: `d` deleted, `l` legacy directories), 3.0 to 3.4
//! (legacy names as keys, dlist values) and 2.x (`type partition acl…` text values).

use super::dlist::Dlist;
use super::name::MboxName;
use super::twoskip::{self, DbFormat, Records};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One mailbox of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub name: MboxName,
    /// Cyrus 3.x unique id; with uuid directories, it names the mailbox's folder.
    pub uniqueid: Option<String>,
    pub partition: String,
    /// Cyrus 3.6 type letters (`e`, `el`, …), empty for older lists.
    pub mbtype: String,
    /// Whether the mailbox's files sit in a folder named after the mailbox (`l` type letter,
    /// and every mailbox before 3.6) rather than after its unique id.
    pub legacy_dirs: bool,
    pub acl: Vec<(String, String)>,
}

impl Mailbox {
    /// A mailbox with mail on disk: not deleted, not an intermediate or remote placeholder.
    pub fn is_live(&self) -> bool {
        !self.name.is_deleted() && !self.mbtype.contains(['d', 'i', 'r', 'R', 'm'])
    }

    /// What the mailbox holds ([`Kind::of`] its type letters).
    pub fn kind(&self) -> Kind {
        Kind::of(&self.mbtype)
    }
}

/// Type letters of Cyrus 3.x that are flags on a mailbox, not what it holds: `d` deleted, `i`
/// intermediate, `l` legacy folders, `m` moving, `r` remote, `z`/`R` reserved.
const FLAG_LETTERS: &[char] = &['d', 'i', 'l', 'm', 'r', 'z', 'R'];

/// What a mailbox holds, from its type letters: mail (`e`, or no letter before 3.x), a CalDAV
/// calendar (`c`), a CardDAV address book (`a`), or something else of the DAV or JMAP servers
/// (`b` collections such as `#notifications` and calendar attachments, `s` sieve, `j`, `p`,
/// `S`, `n`, …), which a mail restore leaves alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mail,
    Calendar,
    AddressBook,
    Other(char),
}

impl Kind {
    pub fn of(mbtype: &str) -> Kind {
        match mbtype.chars().find(|c| !FLAG_LETTERS.contains(c)) {
            None | Some('e') => Kind::Mail,
            Some('c') => Kind::Calendar,
            Some('a') => Kind::AddressBook,
            Some(c) => Kind::Other(c),
        }
    }

    /// The type letter a new mailbox of this kind is registered with.
    pub fn letter(self) -> char {
        match self {
            Kind::Mail => 'e',
            Kind::Calendar => 'c',
            Kind::AddressBook => 'a',
            Kind::Other(c) => c,
        }
    }
}

/// How long `cyr_dbtool` may take before the parser is used instead.
const TOOL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// How the list was read, for the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    CyrDbtool,
    Parser,
}

#[derive(Clone, Debug, Default)]
pub struct MailboxList {
    pub mailboxes: Vec<Mailbox>,
    /// Records whose name could not be used (control characters, `..`, …).
    pub skipped: usize,
    /// The list has Cyrus 3.6 keys (so `ctl_mboxlist -u` takes JSON lines).
    pub v36: bool,
}

impl MailboxList {
    /// The live mailboxes at or under `root`, sorted by name (parents first).
    pub fn tree(&self, root: &MboxName) -> Vec<&Mailbox> {
        let mut v: Vec<&Mailbox> = self
            .mailboxes
            .iter()
            .filter(|m| m.is_live() && m.name.is_under(root))
            .collect();
        v.sort_by(|a, b| a.name.parts.cmp(&b.name.parts));
        v
    }

    /// Interprets a database's records.
    pub fn from_records(recs: &Records) -> MailboxList {
        let v36 = recs.iter().any(|(k, v)| {
            k.first() == Some(&b'I') && Dlist::parse(v).ok().and_then(|d| d.text("N")).is_some()
        });
        let mut out = MailboxList {
            v36,
            ..MailboxList::default()
        };
        for (k, v) in recs {
            let key = String::from_utf8_lossy(k);
            let parsed = if v36 {
                match key.strip_prefix('N') {
                    Some(name) => {
                        MboxName::from_internal(name).and_then(|n| from_dlist(n, v, true))
                    }
                    None => continue,
                }
            } else if v.starts_with(b"%(") {
                MboxName::from_legacy(&key).and_then(|n| from_dlist(n, v, false))
            } else {
                MboxName::from_legacy(&key).and_then(|n| from_text(n, v))
            };
            match parsed {
                Some(m) => out.mailboxes.push(m),
                None => out.skipped += 1,
            }
        }
        out
    }
}

fn from_dlist(name: MboxName, v: &[u8], v36: bool) -> Option<Mailbox> {
    let d = Dlist::parse(v).ok()?;
    let mbtype = d.text("T").unwrap_or_default();
    Some(Mailbox {
        legacy_dirs: !v36 || mbtype.contains('l'),
        uniqueid: d.text("I").filter(|u| is_uniqueid(u)),
        partition: d.text("P").unwrap_or_default(),
        acl: super::dlist::acl_pairs(d.get("A")),
        mbtype,
        name,
    })
}

/// Cyrus 2.x: `type partition id rights id rights …` (tab- or space-separated).
fn from_text(name: MboxName, v: &[u8]) -> Option<Mailbox> {
    let s = String::from_utf8_lossy(v);
    let mut it = s.split([' ', '\t']).filter(|x| !x.is_empty());
    let kind: u32 = it.next()?.parse().ok()?;
    let partition = it.next()?.to_string();
    let rest: Vec<&str> = it.collect();
    // MBTYPE_REMOTE, _RESERVE, _MOVING, _DELETED of Cyrus 2.x.
    let dead = kind & (1 | 2 | 8 | 16) != 0;
    Some(Mailbox {
        name,
        uniqueid: None,
        partition,
        mbtype: if dead { "d".into() } else { String::new() },
        legacy_dirs: true,
        acl: rest
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].to_string(), c[1].to_string()))
            .collect(),
    })
}

/// A Cyrus unique id is safe to use as a folder name: letters, digits, `-`, 1 to 64 of them.
pub fn is_uniqueid(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Reads `data` (a copy of `mailboxes.db`) with `cyr_dbtool` when it is installed, else with
/// the parser. `owner` is the file's uid and gid in the backup: `cyr_dbtool` run as root
/// switches to the cyrus user, which must be able to read the temporary copy.
pub fn read(data: &[u8], owner: (u32, u32)) -> Result<(MailboxList, Reader), String> {
    if let Some(tool) = super::tool("cyr_dbtool") {
        match with_cyr_dbtool(&tool, data, owner) {
            Ok(recs) => return Ok((MailboxList::from_records(&recs), Reader::CyrDbtool)),
            Err(e) => log::warn!(
                "{}: {e}; reading mailboxes.db with bmbackup's parser",
                tool.display()
            ),
        }
    }
    let recs = twoskip::read_db(data)?;
    Ok((MailboxList::from_records(&recs), Reader::Parser))
}

/// Runs `cyr_dbtool FILE FORMAT show` on a private copy of `data`.
pub fn with_cyr_dbtool(tool: &Path, data: &[u8], owner: (u32, u32)) -> Result<Records, String> {
    let dir = PrivateDir::new()?;
    let db = dir.0.join("mailboxes.db");
    let conf = dir.0.join("imapd.conf");
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::write(&db, data).map_err(|e| io(&db, e))?;
    std::fs::write(&conf, format!("configdirectory: {}\n", dir.0.display()))
        .map_err(|e| io(&conf, e))?;
    // Cyrus' database layer reads `db/skipstamp` (the last recovery time) in the config folder
    // and, missing, writes a DBERROR line to the live server's syslog on every run: a fresh
    // stamp says no recovery is due (the copy is read only).
    let db_dir = dir.0.join("db");
    let stamp = db_dir.join("skipstamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0);
    std::fs::create_dir(&db_dir).map_err(|e| io(&db_dir, e))?;
    std::fs::write(&stamp, now.to_be_bytes()).map_err(|e| io(&stamp, e))?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // A root-owned copy (a backup of a copy) is given to the cyrus user the tool becomes.
        let owner = if owner.0 == 0 {
            cyrus_user().unwrap_or(owner)
        } else {
            owner
        };
        for p in [&dir.0, &db, &conf, &db_dir, &stamp] {
            std::os::unix::fs::chown(p, Some(owner.0), Some(owner.1)).map_err(|e| io(p, e))?;
        }
    }
    let mut child = Command::new(tool)
        .arg("-C")
        .arg(&conf)
        .arg(&db)
        .arg(DbFormat::detect(data).name())
        .arg("show")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    // A damaged file must not hang the restore: the tool gets a deadline, then the parser runs.
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        let mut e = Vec::new();
        if let Some(s) = out.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut o);
        }
        if let Some(s) = err.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut e);
        }
        (o, e)
    });
    let deadline = std::time::Instant::now() + TOOL_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", TOOL_DEADLINE.as_secs()));
            }
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    let (stdout, stderr) = reader
        .join()
        .map_err(|_| "its output reader failed".to_string())?;
    if !status.success() {
        return Err(format!(
            "failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        ));
    }
    twoskip::read_flat(&stdout)
}

/// The uid and gid of the `cyrus` user, when there is one.
fn cyrus_user() -> Option<(u32, u32)> {
    let name = std::ffi::CString::new("cyrus").ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid value for getpwnam_r to fill in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf` outlives it (getpwnam_r is the
    // thread-safe variant: the record lives in our own buffer).
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some((pw.pw_uid, pw.pw_gid))
}

/// A 0700 temporary folder, removed on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> Result<PrivateDir, String> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("bmbackup-mboxlist-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(PrivateDir(p))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(v: &[(&str, &str)]) -> Records {
        v.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn cyrus_36_records() {
        let l = MailboxList::from_records(&recs(&[
            ("Iaaa", "%(T e N \"ex.org\x1duser\x1fal\" P default)"),
            (
                "Nex.org\x1duser\x1fal",
                "%(T e I aaa P default A %(al lrs))",
            ),
            ("Nex.org\x1duser\x1fal\x1fOld", "%(T edl I bbb V 1)"),
            ("Nex.org\x1duser\x1fal\x1fW", "%(T el I ccc P p2)"),
            ("Nex.org\x1duser\x1f..", "%(T e I ddd P default)"),
        ]));
        assert!(l.v36);
        assert_eq!(l.skipped, 1);
        let root = MboxName::from_legacy("ex.org!user.al").unwrap();
        let t = l.tree(&root);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].uniqueid.as_deref(), Some("aaa"));
        assert!(!t[0].legacy_dirs && t[1].legacy_dirs);
        assert_eq!(t[1].partition, "p2");
        assert_eq!(t[0].acl, [("al".to_string(), "lrs".to_string())]);
    }

    #[test]
    fn kinds_from_type_letters() {
        for (t, k) in [
            ("", Kind::Mail),
            ("e", Kind::Mail),
            ("el", Kind::Mail),
            ("c", Kind::Calendar),
            ("cl", Kind::Calendar),
            ("a", Kind::AddressBook),
            ("b", Kind::Other('b')),
            ("ld", Kind::Mail),
        ] {
            assert_eq!(Kind::of(t), k, "{t:?}");
        }
        assert_eq!(Kind::of("al").letter(), 'a');
    }

    #[test]
    fn older_records() {
        let l = MailboxList::from_records(&recs(&[
            ("ex.org!user.a^b", "0 default a^b@ex.org\tlrs\t"),
            ("ex.org!user.gone", "16 default x lrs"),
            ("user.c", "%(A %(c lrs) I u1 P default V 1)"),
        ]));
        assert!(!l.v36);
        let live: Vec<String> = l
            .mailboxes
            .iter()
            .filter(|m| m.is_live())
            .map(|m| m.name.legacy())
            .collect();
        assert_eq!(live, ["ex.org!user.a^b", "user.c"]);
        assert!(l.mailboxes.iter().all(|m| m.legacy_dirs));
        assert!(!is_uniqueid("../x") && is_uniqueid("qpbg04lsloiiih2ooiwxw4yn"));
    }
}
