//! Running a kind's selection in the throwaway instance: the configured SELECT is prepared
//! with the user as bound parameters (`$1` USER, `$2` local part, `$3` domain; psql passes the
//! values), its rows are kept in a temporary table, and psql prints the table's column names
//! and types, then each row as JSON. What comes back is treated as hostile (the instance ran a
//! dump from the store): every line must parse, column types must be plain type names, since
//! they are written into the live database's SQL by [`super::apply`].

use super::instance::{tail, Instance, DATABASE};
use super::DbEntityError;
use serde_json::Value;
use std::io::Write;
use std::process::Stdio;

/// The selected objects: columns (name, SQL type) and rows (one value per column).
#[derive(Debug, Clone, Default)]
pub struct Selected {
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Value>>,
}

impl Selected {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| n == name)
    }
}

/// The user as the three bound parameters.
#[derive(Debug, Clone)]
pub struct UserParams {
    pub user: String,
    pub local: String,
    pub domain: String,
}

impl UserParams {
    pub fn new(user: &str) -> UserParams {
        let (local, domain) = user.split_once('@').unwrap_or((user, ""));
        UserParams {
            user: user.to_string(),
            local: local.to_string(),
            domain: domain.to_string(),
        }
    }

    /// psql's `-v` options that set `:user`, `:local` and `:domain`.
    pub fn psql_vars(&self) -> Vec<String> {
        vec![
            "-v".into(),
            format!("user={}", self.user),
            "-v".into(),
            format!("local={}", self.local),
            "-v".into(),
            format!("domain={}", self.domain),
        ]
    }
}

/// The configured SQL without trailing `;` and blanks.
pub fn statement(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim_end()
}

pub fn select(inst: &Instance, sql: &str, user: &UserParams) -> Result<Selected, DbEntityError> {
    let script = format!(
        "PREPARE bmbackup_select(text, text, text) AS\n{};\n\
         CREATE TEMP TABLE bmbackup_selected AS EXECUTE bmbackup_select(:'user', :'local', :'domain');\n\
         SELECT coalesce(json_agg(json_build_array(attname, format_type(atttypid, atttypmod)) ORDER BY attnum), '[]')::text \
         FROM pg_attribute WHERE attrelid = 'bmbackup_selected'::regclass AND attnum > 0 AND NOT attisdropped;\n\
         SELECT to_json(s)::text FROM bmbackup_selected s;\n",
        statement(sql)
    );
    let mut child = inst
        .psql(DATABASE)
        .args(["-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(user.psql_vars())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DbEntityError::Setup(format!("psql: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write shows as psql's own error below.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| DbEntityError::Setup(format!("psql: {e}")))?;
    if !out.status.success() {
        return Err(DbEntityError::Select(tail(
            &String::from_utf8_lossy(&out.stderr),
            4,
        )));
    }
    parse(&out.stdout)
}

/// Parses psql's output: the columns line, then one JSON object per row.
fn parse(stdout: &[u8]) -> Result<Selected, DbEntityError> {
    let bad = |m: String| {
        DbEntityError::Select(format!(
            "unexpected answer from the throwaway PostgreSQL: {m}"
        ))
    };
    let text = std::str::from_utf8(stdout).map_err(|_| bad("not UTF-8".into()))?;
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let cols: Vec<(String, String)> =
        serde_json::from_str(lines.next().ok_or_else(|| bad("no column list".into()))?)
            .map_err(|e| bad(format!("column list: {e}")))?;
    for (name, ty) in &cols {
        if name.contains('\0') {
            return Err(bad("a column name with NUL".into()));
        }
        if !plain_type(ty) {
            return Err(DbEntityError::Select(format!(
                "column {name:?} has type {ty:?}, which bmbackup does not pass on to the live database: cast it in select (e.g. {name}::text)"
            )));
        }
    }
    let mut rows = Vec::new();
    for line in lines {
        let obj: serde_json::Map<String, Value> =
            serde_json::from_str(line).map_err(|e| bad(format!("a row: {e}")))?;
        if obj.len() != cols.len() {
            return Err(bad("a row whose columns differ from the column list".into()));
        }
        let row = cols
            .iter()
            .map(|(n, _)| {
                obj.get(n)
                    .cloned()
                    .ok_or_else(|| bad(format!("a row without {n:?}")))
            })
            .collect::<Result<Vec<Value>, _>>()?;
        rows.push(row);
    }
    Ok(Selected {
        columns: cols,
        rows,
    })
}

/// A type name as format_type prints ordinary types: words, dots, digits, `(n,m)`, `[]` and
/// spaces (`character varying(255)`, `timestamp with time zone`, `public.mood[]`); nothing
/// that could end a statement or open a quote.
fn plain_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 200
        && t.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'_' | b' ' | b'.' | b',' | b'(' | b')' | b'[' | b']')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_columns_and_rows_in_order() {
        let out = b"[[\"uid\", \"text\"], [\"n\", \"integer\"]]\n{\"uid\":\"a\",\"n\":1}\n{\"uid\":\"b\",\"n\":null}\n";
        let s = parse(out).unwrap();
        assert_eq!(s.columns[1], ("n".to_string(), "integer".to_string()));
        assert_eq!(s.rows[1], vec![Value::from("b"), Value::Null]);
        assert_eq!(s.column("n"), Some(1));
    }

    #[test]
    fn hostile_answers_are_refused() {
        for out in [
            &b"[[\"x\", \"text); DROP TABLE t; --\"]]\n"[..],
            b"[[\"x\", \"\\\"quoted\\\"\"]]\n",
            b"[[\"x\", \"text\"]]\nnot json\n",
            b"[[\"x\", \"text\"]]\n{\"y\":1}\n",
            b"",
        ] {
            assert!(parse(out).is_err(), "{}", String::from_utf8_lossy(out));
        }
        assert!(plain_type("timestamp(3) with time zone"));
        assert!(plain_type("character varying(255)[]"));
    }

    #[test]
    fn user_params() {
        let u = UserParams::new("alice@example.com");
        assert_eq!(
            (u.local.as_str(), u.domain.as_str()),
            ("alice", "example.com")
        );
        assert_eq!(UserParams::new("bob").domain, "");
        assert_eq!(statement(" SELECT 1 ;\n"), "SELECT 1");
    }
}
