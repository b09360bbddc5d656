//! The browse page: a snapshot's folder with each entry's metadata (from tree metadata, as
//! `bmbackup ls` reads it), and a file's history across its part's snapshots (as
//! `bmbackup history`). Names travel both as text to show and percent-encoded raw bytes to put
//! back in URLs, so names that are not UTF-8 still work.

use super::app::Ctx;
use super::http::Response;
use super::http::{error, json};
use super::paths::{resolve_node, target};
use crate::model::{Entry, EntryKind};
use crate::repo::named_snapshots;
use crate::restore::history::history as file_history;
use crate::restore::ls::{components, Node};
use serde_json::{json, Value};

/// Raw bytes percent-encoded for one URL path component.
pub fn encode(raw: &[u8]) -> String {
    raw.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn kind_name(kind: EntryKind) -> &'static str {
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

fn entry_json(e: &Entry) -> Value {
    json!({
        "name": String::from_utf8_lossy(&e.name),
        "enc": encode(&e.name),
        "kind": kind_name(e.kind),
        "mode": format!("{:04o}", e.mode),
        "uid": e.uid,
        "gid": e.gid,
        "owner": super::owners::user(e.uid),
        "group": super::owners::group(e.gid),
        "size": e.size,
        "mtime": crate::timefmt::iso8601(
            e.mtime.sec.saturating_mul(1_000_000_000).saturating_add(i64::from(e.mtime.nsec))
        ),
        "nlink": e.nlink,
        "xattrs": e.xattrs.len(),
        "target": (e.kind == EntryKind::Symlink).then(|| String::from_utf8_lossy(&e.target)),
    })
}

/// `GET /api/ls/<snapshot>/<path…>`: a folder's entries, or a file's own entry.
pub fn ls(ctx: &Ctx<'_>, id: &str, rest: &[&str]) -> Response {
    let (snap, path, node) = match resolve_node(ctx, id, rest) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let comps = components(&path);
    let m = &snap.manifest;
    let head = json!({
        "snapshot": snap.id.to_hex(), "host": m.host, "part": m.part,
        "started": crate::timefmt::iso8601(m.started_ns), "status": m.status.as_str(),
        "path": String::from_utf8_lossy(&path),
        "path_enc": comps.iter().map(|c| encode(c)).collect::<Vec<_>>().join("/"),
    });
    let tree = match &node {
        Node::Entry(e) if e.subtree().is_none() => {
            return json(200, &json!({ "at": head, "file": entry_json(e) }));
        }
        n => n.subtree(),
    };
    let entries = match tree.map(|t| ctx.repo.read_tree(t)) {
        Some(Ok(t)) => t.entries,
        Some(Err(e)) => return error(500, &e.to_string()),
        None => Vec::new(),
    };
    let list: Vec<Value> = entries.iter().map(entry_json).collect();
    json(200, &json!({ "at": head, "entries": list }))
}

/// `GET /api/history/<snapshot>/<path…>`: the path in every snapshot of the same part.
pub fn history(ctx: &Ctx<'_>, id: &str, rest: &[&str]) -> Response {
    let (snap, path) = match target(ctx, id, rest) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if components(&path).is_empty() {
        return error(400, "give a file or folder inside the part");
    }
    let all = match ctx.repo.snapshots() {
        Ok(a) => a,
        Err(e) => return error(500, &e.to_string()),
    };
    let snaps: Vec<_> = named_snapshots(&all)
        .into_iter()
        .filter(|(s, _)| {
            s.manifest.host == snap.manifest.host && s.manifest.part == snap.manifest.part
        })
        .collect();
    let rows = match file_history(ctx.repo, &snaps, &path) {
        Ok(r) => r,
        Err(e) => return error(404, &e.to_string()),
    };
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "snapshot": r.snapshot.id.to_hex(),
                "name": r.name,
                "date": crate::timefmt::iso8601(r.snapshot.manifest.started_ns),
                "state": r.state.as_str(),
                "kind": r.kind.map(kind_name),
                "size": r.kind.map(|_| r.size),
                "hash": r.hash.map(|h| h.to_hex()[..16].to_string()),
                "version": r.version,
            })
        })
        .collect();
    json(200, &Value::Array(list))
}
