//! Putting one calendar or address book of a snapshot back through Cyrus' DAV server
//! ([`super::dav`] reads it): into a new collection `Restored-<date>-<name>` (the default:
//! MKCALENDAR or an extended MKCOL, then a PUT per item) or into the original collection,
//! adding what is missing and, on request, putting back items changed since and deleting items
//! created since. Everything goes through the server, so Cyrus' index, its `.dav` database and
//! the collection's sync-token move forward and clients fetch the change.
//!
//! Resumable: a rerun finds the collection it made and the items already there (a PUT with
//! `If-None-Match: *` answers 412), and goes on. Cyrus keeps one calendar object per UID and
//! user: an event still present in another calendar is not copied into the new one (reported
//! with where it is).

use super::dav::{url_escape, Collection, DavError, DavKind, Resource};
use super::dav_http::{Client, Response};
use std::collections::BTreeMap;

/// Where the items go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Into {
    /// A new collection named `label` (e.g. `Restored-2026-12-01-Default`).
    New { label: String },
    /// The collection of the same name: missing items added; with `replace_changed`, items
    /// that differ put back as they were; with `delete_newer`, items not in the snapshot
    /// (created after it) deleted.
    Original {
        replace_changed: bool,
        delete_newer: bool,
    },
}

/// What a collection's restore did (counts of items).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DavReport {
    pub kind: Option<DavKind>,
    pub collection: String,
    /// The collection written to (URL path).
    pub target: String,
    pub created_collection: bool,
    pub added: usize,
    pub replaced: usize,
    /// Already there with the same content (or put by an interrupted run).
    pub unchanged: usize,
    /// Differ from the snapshot and left as they are (no `--replace-changed`).
    pub changed_kept: usize,
    /// In the collection but not in the snapshot: kept (or deleted with `--delete-newer`).
    pub newer_kept: usize,
    pub deleted: usize,
    /// Calendar objects whose UID is in another of the user's calendars (where).
    pub elsewhere: Vec<String>,
    pub failed: Vec<String>,
}

/// Puts `items` of `coll` back as `into` says.
pub fn put_back(
    client: &Client,
    user: &super::user_id::User,
    coll: &Collection,
    items: &[Resource],
    into: &Into,
    dry_run: bool,
) -> Result<DavReport, DavError> {
    let home = client.path(&coll.kind.home(user));
    let target_name = match into {
        Into::New { label } => label.clone(),
        Into::Original { .. } => coll.name.clone(),
    };
    let target = format!("{home}{}/", url_escape(&target_name));
    let mut rep = DavReport {
        kind: Some(coll.kind),
        collection: coll.name.clone(),
        target: target.clone(),
        ..DavReport::default()
    };
    let present = list(client, &target)?;
    let present = match (present, into) {
        (Some(p), _) => p,
        (None, Into::New { .. }) => {
            if !dry_run {
                make_collection(client, coll, &target)?;
            }
            rep.created_collection = true;
            BTreeMap::new()
        }
        (None, Into::Original { .. }) => {
            return Err(DavError::Index(format!(
                "{target} is not on the server any more: restore into a new collection \
                 (without --into-original)"
            )))
        }
    };
    let mut in_snapshot = std::collections::HashSet::new();
    for it in items {
        in_snapshot.insert(it.name.clone());
        let href = format!("{target}{}", url_escape(&it.name));
        let etag = present.get(&it.name);
        let same = match etag {
            Some(_) => {
                let now = client.send("GET", &href, &[], b"")?;
                now.status == 200 && normalise(&now.body) == normalise(&it.body)
            }
            None => false,
        };
        if same {
            rep.unchanged += 1;
            continue;
        }
        let replace = matches!(
            into,
            Into::Original {
                replace_changed: true,
                ..
            }
        );
        if etag.is_some() && !replace {
            rep.changed_kept += 1;
            continue;
        }
        if dry_run {
            if etag.is_some() {
                rep.replaced += 1;
            } else {
                rep.added += 1;
            }
            continue;
        }
        let cond = match etag {
            Some(e) => ("If-Match", e.as_str()),
            None => ("If-None-Match", "*"),
        };
        let r = client.send(
            "PUT",
            &href,
            &[
                ("Content-Type", &it.content_type),
                cond,
                // The restore must not send invitations or replies to attendees.
                ("Schedule-Reply", "F"),
            ],
            &it.body,
        )?;
        match r.status {
            200..=299 if etag.is_some() => rep.replaced += 1,
            200..=299 => rep.added += 1,
            // Put by an interrupted run of the same restore.
            412 if etag.is_none() => rep.unchanged += 1,
            403 if String::from_utf8_lossy(&r.body).contains("unique-scheduling-object") => {
                let at = between(&r.body, "<D:href>", "</D:href>").unwrap_or_default();
                rep.elsewhere
                    .push(format!("{} (UID still in {at})", it.name));
            }
            s => rep
                .failed
                .push(format!("{}: PUT answered {s}{}", it.name, why(&r))),
        }
    }
    if let Into::Original { delete_newer, .. } = into {
        for (name, etag) in &present {
            if in_snapshot.contains(name) {
                continue;
            }
            if !delete_newer {
                rep.newer_kept += 1;
                continue;
            }
            if dry_run {
                rep.deleted += 1;
                continue;
            }
            let href = format!("{target}{}", url_escape(name));
            let r = client.send("DELETE", &href, &[("If-Match", etag)], b"")?;
            if (200..300).contains(&r.status) {
                rep.deleted += 1;
            } else {
                rep.failed
                    .push(format!("{name}: DELETE answered {}{}", r.status, why(&r)));
            }
        }
    }
    Ok(rep)
}

/// The items of a collection by name with their etags; None when it does not exist.
pub fn list(client: &Client, target: &str) -> Result<Option<BTreeMap<String, String>>, DavError> {
    let body = br#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>"#;
    let r = client.send(
        "PROPFIND",
        target,
        &[
            ("Depth", "1"),
            ("Content-Type", "application/xml; charset=utf-8"),
        ],
        body,
    )?;
    if r.status == 404 {
        return Ok(None);
    }
    if r.status != 207 {
        return Err(DavError::Index(format!(
            "PROPFIND {target} answered {}{}",
            r.status,
            why(&r)
        )));
    }
    let text = String::from_utf8_lossy(&r.body);
    let mut out = BTreeMap::new();
    for resp in text.split("<D:response>").skip(1) {
        let Some(href) = between(resp.as_bytes(), "<D:href>", "</D:href>") else {
            continue;
        };
        let Some(name) = href.strip_prefix(target) else {
            continue;
        };
        if name.is_empty() || name.contains('/') {
            continue;
        }
        let etag = between(resp.as_bytes(), "<D:getetag>", "</D:getetag>")
            .unwrap_or_default()
            .replace("&quot;", "\"");
        out.insert(percent_decode(name), etag);
    }
    Ok(Some(out))
}

/// MKCALENDAR, or MKCOL with an addressbook resource type, with the display name.
fn make_collection(client: &Client, coll: &Collection, target: &str) -> Result<(), DavError> {
    let shown = coll.display_name.as_deref().unwrap_or(&coll.name);
    let label = target
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let display = xml_escape(&format!("{shown} ({label})"));
    let (method, body) = match coll.kind {
        DavKind::Calendar => (
            "MKCALENDAR",
            format!(
                r#"<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:displayname>{display}</D:displayname></D:prop></D:set></C:mkcalendar>"#
            ),
        ),
        DavKind::AddressBook => (
            "MKCOL",
            format!(
                r#"<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype><D:displayname>{display}</D:displayname></D:prop></D:set></D:mkcol>"#
            ),
        ),
    };
    let r = client.send(
        method,
        target,
        &[("Content-Type", "application/xml; charset=utf-8")],
        body.as_bytes(),
    )?;
    if !(200..300).contains(&r.status) {
        return Err(DavError::Index(format!(
            "{method} {target} answered {}{}",
            r.status,
            why(&r)
        )));
    }
    Ok(())
}

/// Line endings and trailing blanks do not count as a change.
fn normalise(b: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(b);
    s.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

fn between(b: &[u8], a: &str, z: &str) -> Option<String> {
    let s = String::from_utf8_lossy(b);
    let i = s.find(a)? + a.len();
    let j = s[i..].find(z)? + i;
    Some(s[i..j].to_string())
}

fn why(r: &Response) -> String {
    let t = String::from_utf8_lossy(&r.body);
    let t = t.trim();
    if t.is_empty() || t.starts_with("<!DOCTYPE") {
        String::new()
    } else {
        format!(": {}", t.chars().take(300).collect::<String>())
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("x%2"), "x%2");
        assert_eq!(normalise(b"A\r\nB \r\n\r\n"), normalise(b"A\nB\n"));
        assert_eq!(
            between(b"<D:href>/x/</D:href>", "<D:href>", "</D:href>").as_deref(),
            Some("/x/")
        );
    }
}
