//! Snapshot and path parameters of the URLs (`/api/ls/<snapshot>/<a>/<b>`): each path
//! component is percent-decoded on its own and must be a plain name, so no parameter can name
//! anything outside the snapshot (no `..` or `.`, no slash hidden as `%2F`, no NUL). The
//! pages that take a snapshot and a path (browse, history, download, restore) resolve them here, so they
//! answer a bad or missing one alike.

use super::app::Ctx;
use super::http::error;
use super::http::Response;
use crate::model::Snapshot;
use crate::repo::Repository;
use crate::restore::ls::{components, lookup, node_at, Node};

/// A snapshot id as the URLs carry it: its hex digits (a prefix of at least 8).
pub fn snapshot_id(s: &str) -> Result<&str, String> {
    if (8..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(format!("{s:?} is not a snapshot id"))
    }
}

/// The path inside a snapshot from the URL's remaining components, `/`-joined raw bytes.
pub fn inside_path(components: &[&str]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for raw in components {
        if raw.is_empty() {
            continue; // a trailing slash
        }
        let c = super::http::percent_decode(raw, false)
            .ok_or_else(|| format!("malformed escape in {raw:?}"))?;
        if c == b"." || c == b".." {
            return Err("a path cannot contain . or .. components".to_string());
        }
        if c.contains(&b'/') {
            return Err("a path component cannot contain a slash (%2F)".to_string());
        }
        if c.contains(&0) {
            return Err("a path cannot contain NUL".to_string());
        }
        if c.is_empty() {
            return Err("empty path component".to_string());
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// The snapshot `id` names (a hex prefix) and the path the other components name.
pub fn target(ctx: &Ctx<'_>, id: &str, rest: &[&str]) -> Result<(Snapshot, Vec<u8>), Response> {
    let id = snapshot_id(id).map_err(|e| error(400, &e))?;
    let path = inside_path(rest).map_err(|e| error(400, &e))?;
    let snap = ctx
        .repo
        .resolve(id)
        .map_err(|e| error(404, &e.to_string()))?;
    Ok((snap, path))
}

/// [`target`] and what its path names in the snapshot ([`node_in`]).
pub fn resolve_node(
    ctx: &Ctx<'_>,
    id: &str,
    rest: &[&str],
) -> Result<(Snapshot, Vec<u8>, Node), Response> {
    let (snap, path) = target(ctx, id, rest)?;
    let node = node_in(ctx.repo, &snap, &path)?;
    Ok((snap, path, node))
}

/// What `path` names in `snap`: 404 when nothing, 500 when the store cannot be read.
pub fn node_in(repo: &Repository, snap: &Snapshot, path: &[u8]) -> Result<Node, Response> {
    node_at(&mut |t, n| lookup(repo, t, n), snap.root, &components(path))
        .map_err(|e| error(500, &e.to_string()))?
        .ok_or_else(|| error(404, "no such file or folder in this snapshot"))
}

/// A path given in a JSON body or query (`/`-separated): the same rules per component.
pub fn plain_path(s: &str) -> Result<Vec<u8>, String> {
    if s.contains('\0') {
        return Err("a path cannot contain NUL".to_string());
    }
    let mut out = Vec::new();
    for c in s.split('/').filter(|c| !c.is_empty()) {
        if c == "." || c == ".." {
            return Err("a path cannot contain . or .. components".to_string());
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_stay_inside() {
        assert_eq!(inside_path(&["a", "b%20c", ""]).unwrap(), b"a/b c");
        assert_eq!(inside_path(&["caf%C3%A9"]).unwrap(), "café".as_bytes());
        for bad in [
            &["..", "etc"][..],
            &["a", "%2E%2E"],
            &["a%2Fb"],
            &["%2f"],
            &["a%00b"],
            &["."],
            &["a%2"],
        ] {
            assert!(inside_path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(plain_path("a/../b").is_err());
        assert!(plain_path("a\0").is_err());
        assert_eq!(plain_path("/a//b/").unwrap(), b"a/b");
        assert!(snapshot_id("0123abcd").is_ok());
        assert!(snapshot_id("../../x").is_err());
        assert!(snapshot_id("abc").is_err());
    }
}
