//! The `[db_entities.NAME]` tables of the config: a kind of one user's data kept in a database
//! dump part (BlueMind keeps calendars and contacts in PostgreSQL), how to select it from the
//! dump, and what `restore-user USER --what NAME` does with it (export files, or apply to the
//! live database). Checked when the config is loaded, so a typo is an error, never "nothing".

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `--what` names that belong to the built-in kinds (and the Cyrus calendar and contacts), so a
/// database kind never hides one of them.
const RESERVED: &[&str] = &[
    "mail",
    "archive",
    "all",
    "calendar",
    "calendars",
    "contacts",
    "addressbook",
];

/// What `--to DIR` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One iCalendar file per `file_by` value, the `column` of each row being a VEVENT (or a
    /// whole VCALENDAR whose components are merged).
    Ics,
    /// vCards (`column`) one after the other, one file per `file_by` value.
    Vcf,
    /// Every selected column, with a header line (RFC 4180).
    Csv,
    /// An array of objects, one per row, columns in the selection's order.
    Json,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Ics => "ics",
            ExportFormat::Vcf => "vcf",
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    }
}

/// One `[db_entities.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbEntityConfig {
    /// The part holding the dump (e.g. `bm/pgsql`).
    pub part: String,
    /// The dump's path inside the part: empty for the part's top folder (a `pg_dump -Fd`
    /// folder), else a folder or a file (`-Fc` custom or `-Fp` plain format).
    #[serde(default)]
    pub dump: String,
    /// One SELECT (no trailing `;`) of one user's objects: `$1` is USER as typed, `$2` its
    /// local part, `$3` its domain (empty without `@`), all `text`.
    pub select: String,
    /// What `--to DIR` writes [default: json].
    #[serde(default = "default_export")]
    pub export: ExportFormat,
    /// ics and vcf: the column holding each object's text.
    pub column: Option<String>,
    /// One file per distinct value of this column (e.g. the calendar); else one file.
    pub file_by: Option<String>,
    /// Columns listed per object by `--dry-run` and the report [default: the first two].
    #[serde(default)]
    pub show: Vec<String>,
    /// Statements run on the live database, in order, in one transaction, when there is no
    /// `--to`. The selected rows are in the temporary table `restored` (the selection's
    /// columns and types); `$1`, `$2`, `$3` are as in `select`.
    #[serde(default)]
    pub apply: Vec<String>,
    /// The live database, as a libpq connection string (`host=/var/run/postgresql dbname=bj
    /// user=bj`, `passfile=…` for a password); needed by `apply`.
    pub live: Option<String>,
    /// The system user `psql` runs as to reach the live database (peer authentication, e.g.
    /// `postgres`) [default: root].
    pub live_as: Option<String>,
    /// The system user the throwaway PostgreSQL runs as [default: nobody]. Not the live
    /// server's `postgres`: the dump comes from the store and is not trusted.
    #[serde(default = "default_run_as")]
    pub run_as: String,
    /// Where the throwaway instance's private folder is made; it must be reachable by
    /// `run_as` and hold the loaded database [default: /var/tmp].
    #[serde(default = "default_work_dir")]
    pub work_dir: PathBuf,
    /// PostgreSQL's programs (initdb, postgres, pg_restore, psql) [default:
    /// /usr/lib/postgresql/MAJOR/bin for the major version the dump needs].
    pub pg_bin: Option<PathBuf>,
    /// `pg_restore --jobs` for a folder-format dump [default: 1].
    #[serde(default = "one")]
    pub jobs: u32,
}

fn default_export() -> ExportFormat {
    ExportFormat::Json
}

fn default_run_as() -> String {
    "nobody".into()
}

fn default_work_dir() -> PathBuf {
    PathBuf::from("/var/tmp")
}

fn one() -> u32 {
    1
}

impl DbEntityConfig {
    /// The columns the report shows for each object.
    pub fn shown<'a>(&'a self, columns: &'a [String]) -> Vec<&'a str> {
        if self.show.is_empty() {
            columns.iter().take(2).map(String::as_str).collect()
        } else {
            self.show.iter().map(String::as_str).collect()
        }
    }
}

/// Why the `[db_entities]` tables cannot be used, naming the table and what to change.
pub fn check(kinds: &BTreeMap<String, DbEntityConfig>) -> Result<(), String> {
    for (name, k) in kinds {
        let at = format!("[db_entities.\"{name}\"]");
        if RESERVED.contains(&name.as_str()) {
            return Err(format!(
                "{at}: {name:?} is a built-in kind of restore-user; choose another name (e.g. {name}-db)"
            ));
        }
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(format!(
                "{at}: a kind's name is letters, digits, '-', '_' and '.'"
            ));
        }
        if k.part.trim_matches('/').is_empty() {
            return Err(format!("{at}: part is empty"));
        }
        if k.select.trim().trim_end_matches(';').trim().is_empty() {
            return Err(format!("{at}: select is empty"));
        }
        if matches!(k.export, ExportFormat::Ics | ExportFormat::Vcf) && k.column.is_none() {
            return Err(format!(
                "{at}: export = \"{}\" needs `column`, the column holding each object's text",
                k.export.extension()
            ));
        }
        if !k.apply.is_empty() && k.live.is_none() {
            return Err(format!(
                "{at}: apply needs `live`, the live database's connection string"
            ));
        }
        if k.live
            .as_deref()
            .is_some_and(|l| l.split_whitespace().any(|w| w.starts_with("password=")))
        {
            // The string is on psql's command line, which every local user can read.
            return Err(format!(
                "{at}: live holds a password: put it in a pgpass file and name it with passfile=/etc/bmbackup/pgpass"
            ));
        }
        if k.apply.iter().any(|s| s.trim().is_empty()) {
            return Err(format!("{at}: an apply statement is empty"));
        }
        if k.jobs == 0 {
            return Err(format!("{at}: jobs starts at 1"));
        }
        if k.run_as == "root" {
            return Err(format!(
                "{at}: run_as = \"root\": PostgreSQL refuses to run as root (and the dump is not trusted)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BTreeMap<String, DbEntityConfig>, String> {
        #[derive(Deserialize)]
        struct T {
            db_entities: BTreeMap<String, DbEntityConfig>,
        }
        let t: T = toml::from_str(text).map_err(|e| e.to_string())?;
        check(&t.db_entities)?;
        Ok(t.db_entities)
    }

    #[test]
    fn a_kind_parses_with_defaults() {
        let k = parse(
            "[db_entities.calendar-db]\npart = \"bm/pgsql\"\nselect = \"SELECT 1\"\nexport = \"ics\"\ncolumn = \"ics\"",
        )
        .unwrap();
        let k = &k["calendar-db"];
        assert_eq!(k.export, ExportFormat::Ics);
        assert_eq!(k.run_as, "nobody");
        assert_eq!(k.work_dir, PathBuf::from("/var/tmp"));
        assert_eq!(k.dump, "");
        assert_eq!(k.jobs, 1);
        let cols = ["a".to_string(), "b".into(), "c".into()];
        assert_eq!(k.shown(&cols), ["a", "b"]);
    }

    #[test]
    fn mistakes_are_named() {
        let base = "part = \"p\"\nselect = \"SELECT 1\"";
        for (text, needle) in [
            (format!("[db_entities.mail]\n{base}"), "built-in"),
            (format!("[db_entities.\"a b\"]\n{base}"), "letters"),
            (
                format!("[db_entities.x]\n{base}\nexport = \"vcf\""),
                "needs `column`",
            ),
            (
                format!("[db_entities.x]\n{base}\napply = [\"INSERT\"]"),
                "needs `live`",
            ),
            (
                format!("[db_entities.x]\n{base}\nexprt = \"csv\""),
                "unknown field",
            ),
            (
                format!("[db_entities.x]\n{base}\nexport = \"xls\""),
                "unknown variant",
            ),
            (
                "[db_entities.x]\npart = \"p\"\nselect = \";\"".into(),
                "select is empty",
            ),
            (
                format!("[db_entities.x]\n{base}\nrun_as = \"root\""),
                "refuses",
            ),
            (
                format!("[db_entities.x]\n{base}\nlive = \"host=h password=secret\""),
                "passfile",
            ),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
