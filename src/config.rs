//! The configuration file (`/etc/bmbackup/bmbackup.toml` by default): the store, this server's
//! address, compression, the parts to back up with their hooks, and the retention policy that
//! `backup` applies after a successful run. Unknown keys are errors so a typo never silently
//! disables a part or a rule.

use crate::retention::Policy;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG: &str = "/etc/bmbackup/bmbackup.toml";
/// The part `backup_emails` switches (BlueMind's mail spool).
pub const EMAILS_PART: &str = "mail/imap";
/// Cyrus' config directory (`/var/lib/cyrus`, with `mailboxes.db`), also switched by
/// `backup_emails`: without the spool it is of no use.
pub const EMAILS_META_PART: &str = "mail/imap-meta";
/// The part `backup_archived_emails` switches (BlueMind's archived mail).
pub const ARCHIVED_EMAILS_PART: &str = "mail/archive";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path}: {detail}")]
    Parse { path: String, detail: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: Option<PathBuf>,
    pub host: Option<String>,
    pub cache_dir: Option<PathBuf>,
    /// Where `bmbackup mount` shows the store when no MOUNTPOINT is given (the systemd unit's
    /// mount uses it), e.g. /var/backups/bluemind.
    pub mountpoint: Option<PathBuf>,
    /// zstd level of every part that does not set its own [default: 1, see `backup`].
    pub compression_level: Option<i32>,
    /// Threads of a backup run (reading, chunking, compressing, `lstat`) [default: the CPUs].
    pub threads: Option<usize>,
    /// Do not descend into filesystems mounted inside a part (as `backup --one-file-system`).
    #[serde(default)]
    pub one_file_system: bool,
    /// The CPU and I/O priority of a backup run, whoever starts it (the timer, an admin, the
    /// console) [default: background].
    #[serde(default)]
    pub priority: Priority,
    /// BlueMind's "Backup emails" switch: backs up the `mail/imap` part when it is configured.
    #[serde(default = "yes")]
    pub backup_emails: bool,
    /// BlueMind's "Backup archived emails" switch, off by default as in BlueMind: backs up the
    /// `mail/archive` part when it is configured.
    #[serde(default)]
    pub backup_archived_emails: bool,
    /// Command run after every `backup` run; `None` means the BlueMind default script when it
    /// exists, an empty string means none (see `hooks::post_backup_command`).
    pub post_backup_hook: Option<String>,
    /// Retention applied by `backup` after a fully successful run.
    pub retention: Option<RetentionConfig>,
    /// Folder of node_exporter's textfile collector: `backup` writes `bmbackup.prom` there
    /// after every run.
    pub metrics_dir: Option<PathBuf>,
    #[serde(default)]
    pub parts: BTreeMap<String, PartConfig>,
    /// Where one user's data sits in each part, for `restore-user`.
    #[serde(default)]
    pub entities: Entities,
    /// The `[console]` table: `bmbackup console`'s address and password file.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// Endpoint, region and credentials of a store on S3 (`store = "s3://BUCKET/PREFIX"`).
    pub s3: Option<crate::store::s3::S3Config>,
    /// Kinds of a user's data kept in a database dump part (`[db_entities.NAME]`), for
    /// `restore-user USER --what NAME`.
    #[serde(default)]
    pub db_entities: BTreeMap<String, crate::restore::db_entity::DbEntityConfig>,
}

/// `priority`: `background` runs backups as the nightly unit does (nice 19, batch scheduling,
/// idle I/O class) so they yield to the live mail server; `normal` keeps the caller's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    #[default]
    Background,
    Normal,
}

/// The `[console]` table (every key optional; the command line overrides it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// ADDRESS:PORT to listen on [default: 127.0.0.1:8470].
    pub listen: Option<String>,
    /// The file holding the console password's hash [default: `console-password` beside the
    /// config file, else /etc/bmbackup/console-password].
    pub password_file: Option<PathBuf>,
}

/// The `[entities]` table: which part holds each kind of a user's data and, as an override, the
/// path of one user's folder in it (see [`crate::restore::user::User::expand`] for the
/// placeholders). Without a mailbox path, `restore-user` finds the user's mailboxes as Cyrus does:
/// from `mailboxes_db` (the mailbox list in the backup of Cyrus' config directory), else from the
/// spool layout rules, else by searching the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entities {
    #[serde(default = "EntityConfig::mailbox")]
    pub mailbox: EntityConfig,
    #[serde(default = "EntityConfig::archive")]
    pub archive: EntityConfig,
    /// Cyrus' `mailboxes.db` in the part backing up its config directory (`/var/lib/cyrus`).
    #[serde(default = "EntityConfig::mailboxes_db")]
    pub mailboxes_db: EntityConfig,
    /// The live Cyrus server's `imapd.conf`, read (when present) for its partitions, hierarchy
    /// separator and spool hashing, and passed as `-C` to the printed Cyrus commands.
    #[serde(default = "default_cyrus_config")]
    pub cyrus_config: PathBuf,
    /// Cyrus' CalDAV/CardDAV server, through which calendars and contacts are restored.
    #[serde(default)]
    pub dav: Option<DavConfig>,
    /// After a mail restore, run the Cyrus commands that make it visible (`ctl_mboxlist -u`,
    /// `reconstruct`, from Cyrus' tools folder; as root they switch to the cyrus user) instead
    /// of printing them.
    #[serde(default)]
    pub run_next_steps: bool,
}

/// `[entities.dav]`: Cyrus' httpd and an admin that may act as any user (SCRAM-SHA-256 with an
/// authorization id, see `restore::dav_http`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DavConfig {
    /// `http://127.0.0.1:8008` (Cyrus' httpd; plain HTTP to the local server).
    pub url: String,
    /// A Cyrus admin (`admins:` in imapd.conf).
    pub admin: String,
    /// A file holding the admin's password on its first line (kept 0600; never printed).
    pub password_file: PathBuf,
}

fn default_cyrus_config() -> PathBuf {
    PathBuf::from("/etc/imapd.conf")
}

impl Default for Entities {
    fn default() -> Self {
        Entities {
            mailbox: EntityConfig::mailbox(),
            archive: EntityConfig::archive(),
            mailboxes_db: EntityConfig::mailboxes_db(),
            cyrus_config: default_cyrus_config(),
            dav: None,
            run_next_steps: false,
        }
    }
}

/// One kind of user data: a part name and a path template inside it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    pub part: String,
    /// Empty: found as Cyrus does (mailbox only).
    #[serde(default)]
    pub path: String,
}

impl EntityConfig {
    /// Cyrus' spool; no path: the mailboxes are found as Cyrus does (mailboxes.db, layout).
    pub fn mailbox() -> Self {
        EntityConfig {
            part: EMAILS_PART.into(),
            path: String::new(),
        }
    }

    /// Cyrus' mailbox list, in the backup of its config directory.
    pub fn mailboxes_db() -> Self {
        EntityConfig {
            part: EMAILS_META_PART.into(),
            path: "mailboxes.db".into(),
        }
    }

    /// BlueMind's archive (HSM) spool mirrors the mail spool's layout.
    pub fn archive() -> Self {
        EntityConfig {
            part: ARCHIVED_EMAILS_PART.into(),
            path: "{domain}/user/{local}".into(),
        }
    }
}

impl Default for Config {
    /// The config of a missing file: same defaults as an empty one (emails on, archives off).
    fn default() -> Self {
        Config {
            store: None,
            host: None,
            cache_dir: None,
            mountpoint: None,
            compression_level: None,
            threads: None,
            one_file_system: false,
            priority: Priority::default(),
            backup_emails: true,
            backup_archived_emails: false,
            post_backup_hook: None,
            retention: None,
            metrics_dir: None,
            parts: BTreeMap::new(),
            entities: Entities::default(),
            console: ConsoleConfig::default(),
            s3: None,
            db_entities: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartConfig {
    pub path: PathBuf,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Shell command run before the part's backup; when it fails the part is skipped.
    pub pre: Option<String>,
    /// Shell command run after the part's backup, whatever its outcome (to undo what `pre` did).
    pub post: Option<String>,
    /// zstd level for this part's new data, over the top-level `compression_level` (e.g. a
    /// higher one for a database dump that changes little, a lower one for a big spool).
    pub compression_level: Option<i32>,
}

/// The `[retention]` table: the keys of `bmbackup forget`'s flags, with `_` for `-`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub keep_last: Option<u32>,
    pub keep_days: Option<u32>,
    #[serde(default)]
    pub keep_ages: Vec<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
}

impl RetentionConfig {
    /// The policy, or why it is not one (an age of 0, or a table that keeps nothing).
    pub fn policy(&self) -> Result<Policy, String> {
        if self.keep_ages.contains(&0) {
            return Err("keep_ages: ages start at 1 day".into());
        }
        let mut ages = self.keep_ages.clone();
        ages.sort_unstable();
        ages.dedup();
        let policy = Policy {
            keep_last: self.keep_last,
            keep_days: self.keep_days,
            keep_ages: ages,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
        };
        if policy.is_empty() {
            // An empty table must not read as "forget everything but the newest".
            return Err("keeps nothing: set at least one of keep_last, keep_days, keep_ages, keep_daily, keep_weekly, keep_monthly above 0".into());
        }
        Ok(policy)
    }
}

/// Why a configured part is not backed up this run, if it is not.
pub fn part_skipped_because(
    name: &str,
    part: &PartConfig,
    config: &Config,
) -> Option<&'static str> {
    if !part.enabled {
        Some("enabled = false")
    } else if (name == EMAILS_PART || name == EMAILS_META_PART) && !config.backup_emails {
        Some("backup_emails = false")
    } else if name == ARCHIVED_EMAILS_PART && !config.backup_archived_emails {
        Some("backup_archived_emails = false (the default)")
    } else {
        None
    }
}

fn yes() -> bool {
    true
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_err = |detail: String| ConfigError::Parse {
            path: path.display().to_string(),
            detail,
        };
        let config: Config = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        // Checked at load, not at the end of a long backup run.
        if let Some(r) = &config.retention {
            r.policy()
                .map_err(|e| parse_err(format!("[retention] {e}")))?;
        }
        crate::restore::db_entity::check_config(&config.db_entities).map_err(parse_err)?;
        Ok(config)
    }

    /// The parts a `backup` run without `--part` backs up, by part name (`/` trimmed).
    pub fn parts_to_back_up(&self) -> Vec<(String, &PartConfig)> {
        self.parts
            .iter()
            .filter(|(name, p)| part_skipped_because(name.trim_matches('/'), p, self).is_none())
            .map(|(name, p)| (name.trim_matches('/').to_string(), p))
            .collect()
    }

    /// The explicit file, else the default one when it exists, else an empty config.
    pub fn load_default_or(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(p) => Self::load(p),
            None if Path::new(DEFAULT_CONFIG).exists() => Self::load(Path::new(DEFAULT_CONFIG)),
            None => Ok(Config::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts_and_rejects_typos() {
        let c = Config::parse(
            r#"store = "/srv/bmstore"
               compression_level = 5
               threads = 3
               one_file_system = true
               [parts."mail/imap"]
               path = "/var/spool/cyrus"
               compression_level = 2
               [parts."mail/archive"]
               path = "/var/spool/bm-hsm"
               enabled = false"#,
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.parts.len(), 2);
        assert!(c.one_file_system);
        assert!(!Config::default().one_file_system);
        assert!(c.parts["mail/imap"].enabled);
        assert_eq!(c.threads, Some(3));
        assert_eq!(c.parts["mail/imap"].compression_level, Some(2));
        assert_eq!(c.parts["mail/archive"].compression_level, None);
        assert!(!c.parts["mail/archive"].enabled);
        assert!(Config::parse("stroe = \"/x\"", Path::new("t.toml")).is_err());
    }

    #[test]
    fn vendor_switches_hooks_and_retention() {
        let c = Config::parse(
            r#"post_backup_hook = ""
               [retention]
               keep_days = 3
               keep_ages = [30, 7, 15, 7]
               [parts."mail/imap"]
               path = "/var/spool/cyrus"
               pre = "echo pre"
               post = "echo post"
               [parts."mail/archive"]
               path = "/var/spool/bm-hsm"
               [parts."bm/pgsql"]
               path = "/var/lib/pgsql""#,
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.post_backup_hook.as_deref(), Some(""));
        let policy = c.retention.as_ref().unwrap().policy().unwrap();
        assert_eq!(policy.keep_ages, [7, 15, 30]);
        assert_eq!(policy.keep_days, Some(3));
        assert_eq!(c.parts["mail/imap"].pre.as_deref(), Some("echo pre"));
        let names: Vec<String> = c.parts_to_back_up().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["bm/pgsql", "mail/imap"],
            "archives are off by default"
        );

        let mut c = c;
        c.backup_emails = false;
        c.backup_archived_emails = true;
        let names: Vec<String> = c.parts_to_back_up().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["bm/pgsql", "mail/archive"]);
        assert!(Config::default().backup_emails && !Config::default().backup_archived_emails);
    }

    #[test]
    fn retention_that_keeps_nothing_is_refused_at_load() {
        for text in [
            "[retention]",
            "[retention]\nkeep_last = 0",
            "[retention]\nkeep_ages = [0, 7]",
        ] {
            let e = Config::parse(text, Path::new("t.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("[retention]"), "{e}");
        }
        assert!(Config::parse("[retention]\nkeep_lats = 3", Path::new("t.toml")).is_err());
    }

    #[test]
    fn entities_default_to_cyrus_and_can_be_changed() {
        let c = Config::parse("", Path::new("t.toml")).unwrap();
        assert_eq!(c.entities, Entities::default());
        assert_eq!(c.entities.mailbox.part, "mail/imap");
        assert_eq!(c.entities.archive.path, "{domain}/user/{local}");
        let c = Config::parse(
            "[entities.mailbox]\npart = \"spool\"\npath = \"{domain}/{local}\"",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.entities.mailbox.path, "{domain}/{local}");
        assert_eq!(c.entities.archive, EntityConfig::archive());
        assert!(Config::parse(
            "[entities.calendar]\npart = \"x\"\npath = \"y\"",
            Path::new("t.toml")
        )
        .is_err());
        let c = Config::parse("[entities.mailbox]\npart = \"x\"", Path::new("t.toml")).unwrap();
        assert_eq!(
            (
                c.entities.mailbox.part.as_str(),
                c.entities.mailbox.path.as_str()
            ),
            ("x", "")
        );
        let c = Config::parse(
            "[entities]\ncyrus_config = \"/srv/imapd.conf\"\n[entities.mailboxes_db]\npart = \"meta\"\npath = \"db/mailboxes.db\"",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.entities.mailboxes_db.path, "db/mailboxes.db");
        assert_eq!(c.entities.cyrus_config, Path::new("/srv/imapd.conf"));
    }
}
