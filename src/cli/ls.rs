//! `bmbackup ls SNAPSHOT[:PATH] [-l] [-R] [--json]`: a snapshot's folder listed without mounting
//! ([`crate::restore::ls`]).

use super::{Cli, EXIT_OK};
use crate::model::{Entry, EntryKind};
use crate::restore::ls::{ls, Listed};
use clap::Args;
use std::os::unix::ffi::OsStrExt;

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot id prefix, HOST/PART/DATE or HOST/PART/last, optionally followed by :PATH (a
    /// folder or file inside it).
    pub snapshot: std::ffi::OsString,
    /// Long listing: type and mode, owner and group ids, size, modification time (UTC).
    #[arg(short, long)]
    pub long: bool,
    /// Everything below the folder, not only its entries.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Print a JSON array, one object per entry (keys: path, type, mode, uid, gid, size, mtime,
    /// target).
    #[arg(long)]
    pub json: bool,
}

/// `SPEC[:PATH]` split at the first colon.
pub(crate) fn split_spec(raw: &[u8]) -> anyhow::Result<(&str, &[u8])> {
    let (spec, path) = match raw.iter().position(|&b| b == b':') {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, &b""[..]),
    };
    Ok((std::str::from_utf8(spec)?, path))
}

pub fn run(cli: &Cli, a: &LsArgs) -> anyhow::Result<i32> {
    let (_, repo) = cli.open_repo()?;
    let (spec, path) = split_spec(a.snapshot.as_bytes())?;
    let snap = repo.resolve(spec)?;
    let listed = ls(&repo, &snap, path, a.recursive)?;
    if a.json {
        let arr: Vec<serde_json::Value> = listed.iter().map(json).collect();
        crate::say!("{}", serde_json::to_string_pretty(&arr)?);
        return Ok(EXIT_OK);
    }
    for l in &listed {
        let mut name = String::from_utf8_lossy(&l.path).into_owned();
        if l.entry.kind == EntryKind::Dir {
            name.push('/');
        }
        if a.long {
            let e = &l.entry;
            let mut line = format!(
                "{} {:>6} {:>6} {:>12} {} {name}",
                mode_string(e),
                e.uid,
                e.gid,
                e.size,
                crate::timefmt::display(mtime_ns(e))
            );
            if e.kind == EntryKind::Symlink {
                line.push_str(" -> ");
                line.push_str(&String::from_utf8_lossy(&e.target));
            }
            crate::say!("{line}");
        } else {
            crate::say!("{name}");
        }
    }
    Ok(EXIT_OK)
}

fn mtime_ns(e: &Entry) -> i64 {
    e.mtime
        .sec
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(e.mtime.nsec))
}

pub(crate) fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Fifo => "fifo",
        EntryKind::CharDev => "chardev",
        EntryKind::BlockDev => "blockdev",
        EntryKind::Socket => "socket",
    }
}

fn json(l: &Listed) -> serde_json::Value {
    let e = &l.entry;
    serde_json::json!({
        "path": String::from_utf8_lossy(&l.path),
        "type": kind_name(e.kind),
        "mode": format!("{:04o}", e.mode),
        "uid": e.uid,
        "gid": e.gid,
        "size": e.size,
        "mtime": crate::timefmt::iso8601(mtime_ns(e)),
        "target": (e.kind == EntryKind::Symlink).then(|| String::from_utf8_lossy(&e.target)),
    })
}

/// `drwxr-xr-x`, as `ls -l` shows it (with s/S and t/T for setuid, setgid and sticky).
fn mode_string(e: &Entry) -> String {
    let kind = match e.kind {
        EntryKind::File => '-',
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Fifo => 'p',
        EntryKind::CharDev => 'c',
        EntryKind::BlockDev => 'b',
        EntryKind::Socket => 's',
    };
    let m = e.mode;
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let special = |x: bool, s: bool, lower: char, upper: char| match (s, x) {
        (true, true) => lower,
        (true, false) => upper,
        (false, true) => 'x',
        (false, false) => '-',
    };
    [
        kind,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(m & 0o100 != 0, m & 0o4000 != 0, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(m & 0o010 != 0, m & 0o2000 != 0, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(m & 0o001 != 0, m & 0o1000 != 0, 't', 'T'),
    ]
    .iter()
    .collect()
}
