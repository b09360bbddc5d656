//! Applying selected objects to the live database with the kind's configured statements, in
//! one transaction through psql (so the connection is libpq's: socket or TCP, `passfile`,
//! TLS, peer authentication when `live_as` names a system user). The rows go in as data only:
//! COPY into a temporary `json` table (escaped here), then into the temporary table `restored`
//! with the selection's columns and types; each statement is prepared with the user as `$1`,
//! `$2`, `$3` and executed; psql's command tags (and any RETURNING rows) say what changed.
//! With ON_ERROR_STOP a failing statement ends psql before COMMIT: nothing is changed.

use super::instance::{tail, SysUser};
use super::select::{statement, Selected, UserParams};
use super::DbEntityError;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What one statement did: psql's command tag (`INSERT 0 3`) and the rows it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementDone {
    pub tag: String,
    pub returned: Vec<String>,
}

/// The psql script: the transaction, the rows, the statements between markers; with `run`
/// false only prepared (names and types checked) and rolled back.
fn script(sel: &Selected, statements: &[String], marker: &str, run: bool) -> String {
    let mut s = String::from("BEGIN;\nCREATE TEMP TABLE bmbackup_rows (row json) ON COMMIT DROP;\nCOPY bmbackup_rows (row) FROM STDIN;\n");
    for row in &sel.rows {
        let mut line = String::from("{");
        for (i, ((name, _), v)) in sel.columns.iter().zip(row).enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&serde_json::Value::from(name.as_str()).to_string());
            line.push(':');
            line.push_str(&v.to_string());
        }
        line.push('}');
        // COPY's text format: a backslash is an escape; JSON has no raw newline or tab.
        s.push_str(&line.replace('\\', "\\\\"));
        s.push('\n');
    }
    s.push_str("\\.\n");
    let cols: Vec<String> = sel
        .columns
        .iter()
        .map(|(n, t)| format!("\"{}\" {t}", n.replace('"', "\"\"")))
        .collect();
    s.push_str(&format!(
        "CREATE TEMP TABLE restored ({}) ON COMMIT DROP;\n\
         INSERT INTO restored SELECT r.* FROM bmbackup_rows j, json_populate_record(NULL::restored, j.row) r;\n",
        cols.join(", ")
    ));
    // All prepared before the first marker, so each marker is followed by its statement's
    // output only.
    for (i, st) in statements.iter().enumerate() {
        s.push_str(&format!(
            "PREPARE bmbackup_apply_{i}(text, text, text) AS\n{};\n",
            statement(st)
        ));
    }
    if !run {
        s.push_str(&format!("\\echo {marker} end\nROLLBACK;\n"));
        return s;
    }
    for i in 0..statements.len() {
        s.push_str(&format!(
            "\\echo {marker} {i}\nEXECUTE bmbackup_apply_{i}(:'user', :'local', :'domain');\n"
        ));
    }
    s.push_str(&format!("\\echo {marker} end\nCOMMIT;\n"));
    s
}

/// The live database and how psql reaches it.
#[derive(Debug, Clone, Copy)]
pub struct Live<'a> {
    /// psql's path.
    pub psql: &'a Path,
    /// A libpq connection string.
    pub conninfo: &'a str,
    /// The system user psql runs as (else this process's).
    pub run_as: Option<&'a SysUser>,
}

/// Runs the statements on the live database in one transaction.
pub fn apply(
    live: Live<'_>,
    sel: &Selected,
    statements: &[String],
    user: &UserParams,
) -> Result<Vec<StatementDone>, DbEntityError> {
    let (stdout, marker) = run_script(live, sel, statements, user, true)?;
    Ok(parse(&stdout, &marker, statements.len()))
}

/// Prepares the statements on the live database (so a misspelt table or column is found)
/// and rolls back: nothing is run, nothing changes.
pub fn check(
    live: Live<'_>,
    sel: &Selected,
    statements: &[String],
    user: &UserParams,
) -> Result<(), DbEntityError> {
    run_script(live, sel, statements, user, false).map(|_| ())
}

/// Runs the script; returns psql's output and the marker.
fn run_script(
    live: Live<'_>,
    sel: &Selected,
    statements: &[String],
    user: &UserParams,
    run: bool,
) -> Result<(String, String), DbEntityError> {
    let Live {
        psql,
        conninfo: live,
        run_as: live_as,
    } = live;
    let marker = format!(
        "@@bmbackup-{}-{}",
        std::process::id(),
        crate::store::now_ns()
    );
    let mut c = match live_as {
        Some(u) => u.command(psql, &u.home),
        None => {
            let mut c = Command::new(psql);
            c.env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("LC_ALL", "C")
                .env(
                    "HOME",
                    std::env::var_os("HOME").unwrap_or_else(|| "/root".into()),
                );
            c
        }
    };
    c.env("PGAPPNAME", "bmbackup restore-user")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", live])
        .args(user.psql_vars())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| DbEntityError::Setup(format!("{}: {e}", psql.display())))?;
    let text = script(sel, statements, &marker, run);
    let writer = child.stdin.take().map(|mut stdin| {
        std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        })
    });
    let out = child
        .wait_with_output()
        .map_err(|e| DbEntityError::Setup(format!("psql: {e}")))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.lines().any(|l| l == format!("{marker} end")) {
        return Err(DbEntityError::Apply(format!(
            "the live database was not changed (the transaction was not committed): {}",
            tail(&String::from_utf8_lossy(&out.stderr), 4)
        )));
    }
    Ok((stdout.into_owned(), marker))
}

fn parse(stdout: &str, marker: &str, n: usize) -> Vec<StatementDone> {
    let mut done: Vec<StatementDone> = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let finish = |lines: Vec<String>, done: &mut Vec<StatementDone>| {
        let mut lines = lines;
        let tag = lines.pop().unwrap_or_default();
        done.push(StatementDone {
            tag,
            returned: lines,
        });
    };
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix(marker) {
            if let Some(lines) = current.take() {
                finish(lines, &mut done);
            }
            if rest.trim() != "end" {
                current = Some(Vec::new());
            }
        } else if let Some(lines) = current.as_mut() {
            if !line.is_empty() {
                lines.push(line.to_string());
            }
        }
    }
    done.truncate(n);
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn script_escapes_rows_and_quotes_names() {
        let sel = Selected {
            columns: vec![
                ("u\"id".into(), "text".into()),
                ("n".into(), "integer".into()),
            ],
            rows: vec![vec![Value::from("a\\b\n\\.\t"), Value::from(3)]],
        };
        let st = ["INSERT INTO t SELECT * FROM restored;".to_string()];
        let checked = script(&sel, &st, "@@m", false);
        assert!(
            checked.ends_with("FROM restored;\n\\echo @@m end\nROLLBACK;\n"),
            "{checked}"
        );
        assert!(!checked.contains("EXECUTE"));
        let s = script(&sel, &st, "@@m", true);
        assert!(
            s.contains("{\"u\\\\\"id\":\"a\\\\\\\\b\\\\n\\\\\\\\.\\\\t\",\"n\":3}\n\\.\n"),
            "{s}"
        );
        assert!(s.contains("CREATE TEMP TABLE restored (\"u\"\"id\" text, \"n\" integer)"));
        assert!(s.contains("AS\nINSERT INTO t SELECT * FROM restored;\n\\echo @@m 0\nEXECUTE"));
        assert!(s.ends_with("\\echo @@m end\nCOMMIT;\n"));
        // Every row is one line: nothing in the data can end the COPY.
        let copy = s.split("FROM STDIN;\n").nth(1).unwrap();
        assert_eq!(
            copy.lines()
                .next()
                .unwrap()
                .chars()
                .filter(|&c| c == '\n')
                .count(),
            0
        );
    }

    #[test]
    fn tags_and_returned_rows() {
        let out = "BEGIN\nCREATE TABLE\nCOPY 2\n@@m 0\nINSERT 0 0\n@@m 1\nu1\nu2\nINSERT 0 2\n@@m end\nCOMMIT\n";
        let done = parse(out, "@@m", 2);
        assert_eq!(
            done[0],
            StatementDone {
                tag: "INSERT 0 0".into(),
                returned: vec![]
            }
        );
        assert_eq!(done[1].returned, ["u1", "u2"]);
        assert_eq!(done[1].tag, "INSERT 0 2");
    }
}
