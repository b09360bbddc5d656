//! What bmbackup knows of Cyrus IMAP, to find a user's mailboxes in a backup the way Cyrus
//! itself does and to put them back as a new folder Cyrus accepts: its database files
//! ([`twoskip`]), the `dlist` encoding ([`dlist`]), mailbox names ([`name`]), the mailbox list
//! ([`mboxlist`]), the spool layout rules ([`layout`]), `cyrus.header` ([`header`]) and the
//! server's `imapd.conf` ([`ImapdConf`]). Everything here reads bytes that came out of a backup
//! and is written to fail with an error, never to panic or guess, on damaged input.

pub mod dlist;
pub mod header;
pub mod layout;
pub mod mboxlist;
pub mod name;
pub mod twoskip;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where distributions install Cyrus' command-line tools (Debian, RHEL, BlueMind/source builds).
const TOOL_DIRS: &[&str] = &[
    "/usr/lib/cyrus/bin",
    "/usr/lib/cyrus-imapd",
    "/usr/cyrus/bin",
    "/usr/sbin",
    "/usr/bin",
];

/// The path of a Cyrus tool (`cyr_dbtool`, `reconstruct`, `ctl_mboxlist`), when installed.
/// `BMBACKUP_CYRUS_BIN` names another folder to look in first; set to `none`, no tool is used
/// (the parser reads `mailboxes.db`).
pub fn tool(name: &str) -> Option<PathBuf> {
    let env = std::env::var("BMBACKUP_CYRUS_BIN").ok();
    if env.as_deref() == Some("none") {
        return None;
    }
    env.iter()
        .map(String::as_str)
        .chain(TOOL_DIRS.iter().copied())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The same as [`tool`], for a command printed to the operator: the plain name when absent.
pub fn tool_display(name: &str) -> String {
    match tool(name) {
        Some(p) => p.display().to_string(),
        None => name.to_string(),
    }
}

/// The settings of an `imapd.conf` that decide where mailboxes are and how they are named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImapdConf {
    pub path: PathBuf,
    pub values: BTreeMap<String, String>,
}

impl ImapdConf {
    /// Reads `key: value` lines (`#` comments); an unreadable file is an error naming it.
    pub fn read(path: &Path) -> Result<ImapdConf, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "{}: {e} (set [entities] cyrus_config to the Cyrus server's imapd.conf)",
                path.display()
            )
        })?;
        Ok(ImapdConf::parse(path, &text))
    }

    pub fn parse(path: &Path, text: &str) -> ImapdConf {
        let values = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        ImapdConf {
            path: path.to_path_buf(),
            values,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            Some("yes" | "on" | "true" | "1" | "t") => true,
            Some("no" | "off" | "false" | "0" | "f") => false,
            _ => default,
        }
    }

    /// The hierarchy separator of IMAP names: `/` unless `unixhierarchysep: no`.
    pub fn separator(&self) -> char {
        if self.flag("unixhierarchysep", true) {
            '/'
        } else {
            '.'
        }
    }

    pub fn hashing(&self) -> layout::Hashing {
        match (
            self.flag("hashimapspool", false),
            self.flag("fulldirhash", false),
        ) {
            (false, _) => layout::Hashing::None,
            (true, false) => layout::Hashing::Letter,
            (true, true) => layout::Hashing::Full,
        }
    }

    /// `virtdomains` is anything but off.
    pub fn virtdomains(&self) -> bool {
        !matches!(
            self.get("virtdomains")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            None | Some("off" | "no" | "0")
        )
    }

    /// New mailboxes get legacy directories (`mailbox_legacy_dirs: yes`).
    pub fn legacy_dirs(&self) -> bool {
        self.flag("mailbox_legacy_dirs", false)
    }

    /// The folder of partition `name` (`partition-<name>:`).
    pub fn partition(&self, name: &str) -> Option<PathBuf> {
        self.get(&format!("partition-{name}")).map(PathBuf::from)
    }

    /// `-C <file>` for the printed commands when the file is not Cyrus' default.
    pub fn c_flag(&self) -> String {
        if self.path == Path::new("/etc/imapd.conf") {
            String::new()
        } else {
            format!(" -C {}", self.path.display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imapd_conf_settings() {
        let c = ImapdConf::parse(
            Path::new("/x/imapd.conf"),
            "# c\nvirtdomains: userid\nhashimapspool: true\nunixhierarchysep: no\n\
             partition-default: /var/spool/cyrus/mail\n",
        );
        assert!(c.virtdomains());
        assert_eq!(c.hashing(), layout::Hashing::Letter);
        assert_eq!(c.separator(), '.');
        assert!(!c.legacy_dirs());
        assert_eq!(
            c.partition("default").unwrap(),
            Path::new("/var/spool/cyrus/mail")
        );
        assert_eq!(c.c_flag(), " -C /x/imapd.conf");
        let d = ImapdConf::parse(Path::new("/etc/imapd.conf"), "virtdomains: off\n");
        assert!(!d.virtdomains());
        assert_eq!(d.separator(), '/');
        assert_eq!(d.c_flag(), "");
    }
}
