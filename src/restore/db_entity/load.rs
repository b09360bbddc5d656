//! Finding the dump in a snapshot and loading it into the throwaway instance. A custom, tar
//! or plain dump is streamed from the store (chunk by chunk, each verified) into pg_restore's
//! or psql's stdin: no second copy is written. A folder dump (`-Fd`) is restored into the
//! instance's private folder first, since pg_restore reads its files by name. A plain dump is
//! SQL that psql runs, and psql also runs its backslash commands (`\!` is a shell): the stream
//! starts with `\restrict KEY` (a random key), after which psql refuses every backslash
//! command, and the dump's own `\restrict`/`\unrestrict` lines are left out.

use super::dumpfmt::{sniff_file, sniff_toc, DumpFormat, Versions};
use super::instance::{tail, Instance, DATABASE};
use super::DbEntityError;
use crate::model::{Entry, Snapshot};
use crate::repo::Repository;
use crate::restore::ls::{components, lookup, node_at, Node};
use crate::restore::{restore, RestoreOptions};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// How many bytes of a dump are read to tell its format and versions.
const HEAD: usize = 64 << 10;

/// The dump of a snapshot: where it is, its format and the versions it names.
pub struct Dump {
    pub path: String,
    pub format: DumpFormat,
    pub versions: Versions,
    /// The file (custom, tar, plain), or None for a folder.
    file: Option<Entry>,
}

/// Finds the dump at `path` (empty: the part's top folder) in `snap` and reads its header.
pub fn locate(repo: &Repository, snap: &Snapshot, path: &str) -> Result<Dump, DbEntityError> {
    let shown = if path.is_empty() { "/" } else { path };
    let what = format!(
        "{shown} in {}/{} snapshot {}",
        snap.manifest.host,
        snap.manifest.part,
        snap.id.short()
    );
    let comps = components(path.as_bytes());
    let node = node_at(&mut |id, n| lookup(repo, id, n), snap.root, &comps)?.ok_or_else(|| {
        DbEntityError::Dump(format!(
            "{what}: not there (set `dump` to the dump's path in the part)"
        ))
    })?;
    match node.subtree() {
        Some(folder) => {
            let toc = lookup(repo, folder, b"toc.dat")?.ok_or_else(|| {
                DbEntityError::Dump(format!(
                    "{what} is a folder without toc.dat, so not a pg_dump -Fd folder: set `dump` to the dump file's path in the part"
                ))
            })?;
            let versions = sniff_toc(&head(repo, &toc)?)
                .map_err(|e| DbEntityError::Dump(format!("{what}: {e}")))?;
            Ok(Dump {
                path: path.to_string(),
                format: DumpFormat::Directory,
                versions,
                file: None,
            })
        }
        None => {
            let Node::Entry(e) = node else {
                return Err(DbEntityError::Dump(format!("{what}: not a file")));
            };
            if e.kind != crate::model::EntryKind::File {
                return Err(DbEntityError::Dump(format!("{what}: not a regular file")));
            }
            let (format, versions) = sniff_file(&head(repo, &e)?)
                .map_err(|m| DbEntityError::Dump(format!("{what}: {m}")))?;
            Ok(Dump {
                path: path.to_string(),
                format,
                versions,
                file: Some(e),
            })
        }
    }
}

fn head(repo: &Repository, e: &Entry) -> Result<Vec<u8>, DbEntityError> {
    let mut out = Vec::new();
    for c in e.chunks() {
        if out.len() >= HEAD {
            break;
        }
        out.extend(repo.read_chunk(c.id)?);
    }
    out.truncate(HEAD);
    Ok(out)
}

/// Puts a folder dump's files into the instance's folder (before it starts: only root has
/// touched the folder so far). Other formats need nothing.
/// Returns the bytes restored.
pub fn prepare(
    repo: &Repository,
    snap: &Snapshot,
    dump: &Dump,
    inst: &Instance,
) -> Result<u64, DbEntityError> {
    if dump.format != DumpFormat::Directory {
        return Ok(0);
    }
    let dest = inst.dir().join("dump");
    std::fs::create_dir(&dest)
        .map_err(|e| DbEntityError::Setup(format!("{}: {e}", dest.display())))?;
    let report = restore(
        repo,
        snap,
        dump.path.as_bytes(),
        &dest,
        &RestoreOptions::default(),
    )?;
    if let Some((p, e)) = report.failed.first() {
        return Err(DbEntityError::Dump(format!(
            "restoring the dump folder: {p}: {e} ({} files failed)",
            report.failed.len()
        )));
    }
    Ok(report.bytes)
}

/// What loading said: errors pg_restore or psql went past (a role the dump's owners name that
/// the throwaway instance lacks, …), which matter only if the selection then fails.
#[derive(Debug, Default)]
pub struct Loaded {
    pub errors: usize,
    pub first_errors: Vec<String>,
    pub bytes: u64,
}

/// Loads the dump into the instance's database.
pub fn load(
    repo: &Repository,
    dump: &Dump,
    inst: &Instance,
    jobs: u32,
) -> Result<Loaded, DbEntityError> {
    match (dump.format, &dump.file) {
        (DumpFormat::Directory, _) => {
            let mut c = pg_restore(inst);
            c.arg("-j")
                .arg(jobs.to_string())
                .arg(inst.dir().join("dump"));
            run_loader(c, "pg_restore", |_| Ok(0))
        }
        (DumpFormat::Custom | DumpFormat::Tar, Some(file)) => {
            let mut c = pg_restore(inst);
            c.arg(if dump.format == DumpFormat::Tar {
                "-Ft"
            } else {
                "-Fc"
            });
            run_loader(c, "pg_restore", |stdin| copy_file(repo, file, stdin, None))
        }
        (DumpFormat::Plain, Some(file)) => {
            check_restrict(inst)?;
            let mut c = inst.psql(DATABASE);
            c.arg("-q");
            let key = random_key()?;
            run_loader(c, "psql", |stdin| {
                stdin.write_all(format!("\\restrict {key}\n").as_bytes())?;
                let mut filter = PlainFilter::default();
                copy_file(repo, file, stdin, Some(&mut filter))
            })
        }
        (_, None) => Err(DbEntityError::Dump("the dump is not a file".into())),
    }
}

fn pg_restore(inst: &Instance) -> Command {
    let mut c = inst.command("pg_restore");
    // Owners and grants name roles the throwaway instance does not have; the data need neither.
    c.arg("-h").arg(inst.dir()).args([
        "-U",
        super::instance::SUPERUSER,
        "-d",
        DATABASE,
        "-O",
        "-x",
    ]);
    c
}

/// Runs a loader, feeding its stdin with `feed` while a thread collects its stderr.
fn run_loader(
    mut c: Command,
    name: &str,
    feed: impl FnOnce(&mut std::process::ChildStdin) -> std::io::Result<u64>,
) -> Result<Loaded, DbEntityError> {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DbEntityError::Setup(format!("{name}: {e}")))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| DbEntityError::Setup(format!("{name}: no stderr")))?;
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let fed = match child.stdin.take() {
        Some(mut stdin) => feed(&mut stdin),
        None => Ok(0),
    };
    let status = child
        .wait()
        .map_err(|e| DbEntityError::Setup(format!("{name}: {e}")))?;
    let text = reader.join().unwrap_or_default();
    let error_lines: Vec<String> = text
        .lines()
        .filter(|l| l.contains("ERROR:") || l.contains("error:"))
        .map(str::to_string)
        .collect();
    // pg_restore exits 1 after going past errors ("errors ignored on restore: N").
    let went_past = text.contains("errors ignored on restore");
    if !status.success() && !went_past {
        return Err(DbEntityError::Load(format!(
            "{name} failed ({status}): {}",
            tail(&text, 6)
        )));
    }
    let bytes = match fed {
        Ok(n) => n,
        // The loader stopped reading yet exited 0, or went past errors: the dump is cut.
        Err(e) => {
            return Err(DbEntityError::Load(format!(
                "{name} stopped reading the dump ({e}): {}",
                tail(&text, 6)
            )))
        }
    };
    Ok(Loaded {
        errors: error_lines
            .iter()
            .filter(|l| !l.contains("errors ignored"))
            .count(),
        first_errors: error_lines.into_iter().take(3).collect(),
        bytes,
    })
}

/// Writes the file's chunks (each verified by the repository) to `out`, through `filter`.
fn copy_file(
    repo: &Repository,
    file: &Entry,
    out: &mut impl Write,
    mut filter: Option<&mut PlainFilter>,
) -> std::io::Result<u64> {
    let mut n = 0u64;
    for c in file.chunks() {
        let data = repo.read_chunk(c.id).map_err(std::io::Error::other)?;
        n += data.len() as u64;
        match filter.as_deref_mut() {
            Some(f) => f.feed(&data, out)?,
            None => out.write_all(&data)?,
        }
    }
    if let Some(f) = filter {
        f.finish(out)?;
    }
    if n != file.size {
        return Err(std::io::Error::other(format!(
            "the snapshot's file has {n} bytes, its entry says {}",
            file.size
        )));
    }
    Ok(n)
}

/// Leaves the dump's own `\restrict` and `\unrestrict` lines out (outside COPY data).
#[derive(Default)]
struct PlainFilter {
    carry: Vec<u8>,
    in_copy: bool,
}

impl PlainFilter {
    fn feed(&mut self, data: &[u8], out: &mut impl Write) -> std::io::Result<()> {
        self.carry.extend_from_slice(data);
        let mut start = 0;
        while let Some(i) = self.carry[start..].iter().position(|&b| b == b'\n') {
            let end = start + i + 1;
            let line = self.carry[start..end].to_vec();
            self.line(&line, out)?;
            start = end;
        }
        self.carry.drain(..start);
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut impl Write) -> std::io::Result<()> {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if self.in_copy {
            if bare == b"\\." {
                self.in_copy = false;
            }
            return out.write_all(line);
        }
        if bare.starts_with(b"\\restrict ") || bare.starts_with(b"\\unrestrict ") {
            return Ok(());
        }
        if bare.starts_with(b"COPY ") && bare.ends_with(b" FROM stdin;") {
            self.in_copy = true;
        }
        out.write_all(line)
    }

    fn finish(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.carry);
        if !rest.is_empty() {
            self.line(&rest, out)?;
        }
        Ok(())
    }
}

/// psql knows `\restrict` from 13.22, 14.19, 15.14, 16.10, 17.6 and 18 on.
fn check_restrict(inst: &Instance) -> Result<(), DbEntityError> {
    let out = inst
        .command("psql")
        .arg("--version")
        .output()
        .map_err(|e| DbEntityError::Setup(format!("psql: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if psql_restricts(&text) {
        Ok(())
    } else {
        Err(DbEntityError::Setup(format!(
            "{} cannot load a plain dump safely: it has no \\restrict (PostgreSQL 13.22, 14.19, 15.14, 16.10, 17.6 or later), and a plain dump from the store could run shell commands through psql; update PostgreSQL or dump with -Fc / -Fd",
            text.trim()
        )))
    }
}

fn psql_restricts(version_line: &str) -> bool {
    let Some(v) = version_line
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
    else {
        return false;
    };
    let mut it = v.split('.').map(|p| {
        p.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
            .unwrap_or(0)
    });
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    match major {
        13 => minor >= 22,
        14 => minor >= 19,
        15 => minor >= 14,
        16 => minor >= 10,
        17 => minor >= 6,
        m => m >= 18,
    }
}

fn random_key() -> Result<String, DbEntityError> {
    let mut random = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| DbEntityError::Setup(format!("/dev/urandom: {e}")))?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(input: &[u8], cut: usize) -> String {
        let mut f = PlainFilter::default();
        let mut out = Vec::new();
        for piece in input.chunks(cut) {
            f.feed(piece, &mut out).unwrap();
        }
        f.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_filter_drops_restrict_lines_outside_copy_only() {
        let input = b"\\restrict abc\nSET x = 1;\nCOPY public.t (a) FROM stdin;\n\\restrict data\n\\.\n\\unrestrict abc\nSELECT 1;";
        for cut in [1, 3, 7, 1000] {
            assert_eq!(
                filtered(input, cut),
                "SET x = 1;\nCOPY public.t (a) FROM stdin;\n\\restrict data\n\\.\nSELECT 1;"
            );
        }
    }

    #[test]
    fn restrict_support_by_version() {
        assert!(psql_restricts(
            "psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        ));
        assert!(!psql_restricts("psql (PostgreSQL) 15.13"));
        assert!(psql_restricts("psql (PostgreSQL) 18.1"));
        assert!(!psql_restricts("psql (PostgreSQL) 12.20"));
        assert!(!psql_restricts("garbage"));
    }
}
