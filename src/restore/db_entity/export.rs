//! Writing selected objects as files: iCalendar (`.ics`), vCard (`.vcf`), CSV or JSON, one
//! file per value of `file_by` (else one), into `DIR/<user>/<kind>/`. Written by directory
//! descriptors (DIR is opened once; nothing below it is followed if it is a symlink), each
//! file under a temporary name then renamed, so a rerun finds whole files: an identical file is
//! left as it is, a different one is replaced only with `--overwrite`. Names come from the
//! data (hostile): only letters, digits and `._@-` are kept.

use super::config::{DbEntityConfig, ExportFormat};
use super::select::Selected;
use super::DbEntityError;
use rustix::fs::{self as rfs, Mode, OFlags};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What happened to one exported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Written,
    Unchanged,
    Replaced,
}

#[derive(Debug, Clone)]
pub struct ExportedFile {
    pub path: PathBuf,
    pub objects: usize,
    pub state: FileState,
}

/// The files an export makes: (file name, objects, bytes), before anything is written.
pub fn render(
    kind_name: &str,
    kind: &DbEntityConfig,
    sel: &Selected,
) -> Result<Vec<(String, usize, Vec<u8>)>, DbEntityError> {
    let need = |c: &Option<String>| -> Result<Option<usize>, DbEntityError> {
        match c {
            None => Ok(None),
            Some(name) => sel.column(name).map(Some).ok_or_else(|| {
                DbEntityError::Config(format!(
                    "[db_entities.\"{kind_name}\"]: the selection has no column {name:?} (it has: {})",
                    sel.columns.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                ))
            }),
        }
    };
    let text_col = need(&kind.column)?;
    let group_col = need(&kind.file_by)?;
    let mut groups: BTreeMap<String, Vec<&Vec<Value>>> = BTreeMap::new();
    for row in &sel.rows {
        let key = match group_col {
            Some(i) => file_stem(&as_text(&row[i])),
            None => file_stem(kind_name),
        };
        groups.entry(key).or_default().push(row);
    }
    let ext = kind.export.extension();
    let mut files = Vec::new();
    for (stem, rows) in groups {
        let body = match kind.export {
            ExportFormat::Ics => ics(rows.iter().map(|r| as_text(&r[text_col.unwrap_or(0)]))),
            ExportFormat::Vcf => vcf(rows.iter().map(|r| as_text(&r[text_col.unwrap_or(0)]))),
            ExportFormat::Csv => csv(sel, &rows),
            ExportFormat::Json => json(sel, &rows),
        };
        files.push((format!("{stem}.{ext}"), rows.len(), body));
    }
    Ok(files)
}

/// Writes `files` into `dir/<user>/<kind>/`.
pub fn write(
    dir: &Path,
    user: &str,
    kind_name: &str,
    files: &[(String, usize, Vec<u8>)],
    overwrite: bool,
) -> Result<Vec<ExportedFile>, DbEntityError> {
    let io = |p: &Path, e: std::io::Error| DbEntityError::Export(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let top = rfs::open(
        dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(dir, e.into()))?;
    let user_dir = dir.join(file_stem(user));
    let u = subdir(top.as_fd(), &file_stem(user)).map_err(|e| io(&user_dir, e))?;
    let kind_dir = user_dir.join(file_stem(kind_name));
    let k = subdir(u.as_fd(), &file_stem(kind_name)).map_err(|e| io(&kind_dir, e))?;
    let mut done = Vec::new();
    for (name, objects, body) in files {
        let path = kind_dir.join(name);
        let state = write_file(k.as_fd(), name, body, overwrite).map_err(|e| io(&path, e))?;
        done.push(ExportedFile {
            path,
            objects: *objects,
            state,
        });
    }
    Ok(done)
}

fn subdir(parent: BorrowedFd<'_>, name: &str) -> std::io::Result<OwnedFd> {
    match rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(rfs::openat(
        parent,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn write_file(
    dir: BorrowedFd<'_>,
    name: &str,
    body: &[u8],
    overwrite: bool,
) -> std::io::Result<FileState> {
    let existed = match rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => {
            let mut old = Vec::new();
            std::fs::File::from(fd).read_to_end(&mut old)?;
            if old == body {
                return Ok(FileState::Unchanged);
            }
            if !overwrite {
                return Err(std::io::Error::other(
                    "exists with other content (an export of another date?): use --overwrite to replace it, or another --to",
                ));
            }
            true
        }
        Err(rustix::io::Errno::NOENT) => false,
        Err(e) => return Err(e.into()),
    };
    let tmp = format!("{}{name}", crate::restore::PARTIAL_PREFIX);
    match rfs::unlinkat(dir, tmp.as_str(), rfs::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = rfs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut f = std::fs::File::from(fd);
    f.write_all(body)?;
    f.sync_all()?;
    rfs::renameat(dir, tmp.as_str(), dir, name)?;
    Ok(if existed {
        FileState::Replaced
    } else {
        FileState::Written
    })
}

/// A value as text: strings as they are, null as empty, anything else as JSON.
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A safe file name from data: letters, digits and `._@-` kept, the rest `_`, no leading dot,
/// at most 100 bytes.
pub fn file_stem(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    while out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

fn crlf_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// One VCALENDAR holding every object's components: a whole VCALENDAR contributes the
/// components inside it (time zones once per TZID), a bare VEVENT or VTODO is taken as is.
fn ics(texts: impl Iterator<Item = String>) -> Vec<u8> {
    let mut zones: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut comps: Vec<String> = Vec::new();
    for text in texts {
        let lines = crlf_lines(&text);
        let wrapped = lines
            .first()
            .is_some_and(|l| l.eq_ignore_ascii_case("BEGIN:VCALENDAR"));
        let inner: &[String] = if wrapped {
            &lines[1..lines.len().saturating_sub(1).max(1)]
        } else {
            &lines
        };
        // Components at depth 0 of `inner`; calendar properties (VERSION, PRODID…) dropped.
        let mut depth = 0usize;
        let mut current: Vec<String> = Vec::new();
        for l in inner {
            let upper = l.to_ascii_uppercase();
            if upper.starts_with("BEGIN:") {
                depth += 1;
            }
            if depth > 0 {
                current.push(l.clone());
            }
            if upper.starts_with("END:") && depth > 0 {
                depth -= 1;
                if depth == 0 {
                    let block = std::mem::take(&mut current);
                    if block[0].eq_ignore_ascii_case("BEGIN:VTIMEZONE") {
                        let tzid = block
                            .iter()
                            .find(|l| l.to_ascii_uppercase().starts_with("TZID:"))
                            .cloned()
                            .unwrap_or_default();
                        zones.entry(tzid).or_insert(block);
                    } else {
                        comps.extend(block);
                    }
                }
            }
        }
    }
    let mut out =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bmbackup//restore-user//EN\r\n");
    for l in zones.into_values().flatten().chain(comps) {
        out.push_str(&l);
        out.push_str("\r\n");
    }
    out.push_str("END:VCALENDAR\r\n");
    out.into_bytes()
}

/// The vCards one after the other, CRLF line ends.
fn vcf(texts: impl Iterator<Item = String>) -> Vec<u8> {
    let mut out = String::new();
    for text in texts {
        for l in crlf_lines(&text) {
            out.push_str(&l);
            out.push_str("\r\n");
        }
    }
    out.into_bytes()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(sel: &Selected, rows: &[&Vec<Value>]) -> Vec<u8> {
    let mut out = String::new();
    let header: Vec<String> = sel.columns.iter().map(|(n, _)| csv_field(n)).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for r in rows {
        let fields: Vec<String> = r.iter().map(|v| csv_field(&as_text(v))).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// An array of objects with the selection's column order (serde_json's map would sort them).
fn json(sel: &Selected, rows: &[&Vec<Value>]) -> Vec<u8> {
    let mut out = String::from("[");
    for (i, r) in rows.iter().enumerate() {
        out.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
        for (j, ((name, _), v)) in sel.columns.iter().zip(r.iter()).enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            out.push_str(&Value::from(name.as_str()).to_string());
            out.push_str(": ");
            out.push_str(&v.to_string());
        }
        out.push('}');
    }
    out.push_str(if rows.is_empty() { "]\n" } else { "\n]\n" });
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel() -> Selected {
        Selected {
            columns: vec![("cal".into(), "text".into()), ("ics".into(), "text".into())],
            rows: vec![
                vec![
                    "work/../x".into(),
                    "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VTIMEZONE\nTZID:Europe/Paris\nEND:VTIMEZONE\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\nEND:VCALENDAR\n".into(),
                ],
                vec![
                    "work/../x".into(),
                    "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\nEND:VCALENDAR".into(),
                ],
                vec![".hidden".into(), "BEGIN:VEVENT\nUID:c\nSUMMARY:a, \"b\"\nEND:VEVENT".into()],
            ],
        }
    }

    fn kind(export: &str) -> DbEntityConfig {
        toml::from_str(&format!(
            "part = \"p\"\nselect = \"s\"\nexport = \"{export}\"\ncolumn = \"ics\"\nfile_by = \"cal\""
        ))
        .unwrap()
    }

    #[test]
    fn ics_merges_calendars_per_file() {
        let files = render("k", &kind("ics"), &sel()).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["_hidden.ics", "work_.._x.ics"]);
        let work = String::from_utf8(files[1].2.clone()).unwrap();
        assert_eq!(work.matches("BEGIN:VTIMEZONE").count(), 1);
        assert_eq!(work.matches("BEGIN:VEVENT").count(), 2);
        assert!(work.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(work.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        assert_eq!(work.matches("VERSION:").count(), 1);
        assert!(!work.contains("\n\n") && !work.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn csv_and_json_keep_column_order_and_quote() {
        let mut k = kind("csv");
        k.file_by = None;
        let files = render("cal-db", &k, &sel()).unwrap();
        assert_eq!(files[0].0, "cal-db.csv");
        let text = String::from_utf8(files[0].2.clone()).unwrap();
        assert!(text.starts_with("cal,ics\r\n"));
        assert!(text.contains("\"BEGIN:VEVENT\nUID:c\nSUMMARY:a, \"\"b\"\"\nEND:VEVENT\""));
        k.export = ExportFormat::Json;
        let files = render("cal-db", &k, &sel()).unwrap();
        let v: Value = serde_json::from_slice(&files[0].2).unwrap();
        assert_eq!(v[2]["cal"], ".hidden");
        assert!(String::from_utf8_lossy(&files[0].2).contains("{\"cal\": "));
    }

    #[test]
    fn write_is_idempotent_and_refuses_other_content() {
        let d = tempfile::tempdir().unwrap();
        let files = vec![("a.ics".to_string(), 1, b"one".to_vec())];
        let w = write(d.path(), "al/ice", "k", &files, false).unwrap();
        assert_eq!(w[0].state, FileState::Written);
        assert_eq!(w[0].path, d.path().join("al_ice/k/a.ics"));
        assert_eq!(
            write(d.path(), "al/ice", "k", &files, false).unwrap()[0].state,
            FileState::Unchanged
        );
        let other = vec![("a.ics".to_string(), 1, b"two".to_vec())];
        assert!(write(d.path(), "al/ice", "k", &other, false).is_err());
        assert_eq!(
            write(d.path(), "al/ice", "k", &other, true).unwrap()[0].state,
            FileState::Replaced
        );
        assert_eq!(
            std::fs::read(d.path().join("al_ice/k/a.ics")).unwrap(),
            b"two"
        );
    }

    #[test]
    fn missing_column_is_named() {
        let mut k = kind("ics");
        k.column = Some("vevent".into());
        let e = render("k", &k, &sel()).unwrap_err().to_string();
        assert!(e.contains("\"vevent\"") && e.contains("cal, ics"), "{e}");
    }
}
