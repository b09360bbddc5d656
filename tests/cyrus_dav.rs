//! Calendars and contacts against a real Cyrus 3.6 with CalDAV/CardDAV (Debian's
//! `cyrus-caldav`: httpd on 127.0.0.1 in a private instance, see `tests/cyrus/mod.rs`):
//! events and vCards created over CalDAV/CardDAV, spool and config directory backed up (D),
//! then items deleted, changed and added and a calendar deleted; `restore-user --what
//! calendar|contacts` as of D, checked over CalDAV/CardDAV (every item of D back with its UID
//! and body, items made after D still there); `entities` lists the collections; a mail restore
//! leaves the DAV collections alone; a rerun (as after kill -9) exits 0 with the same result.

mod common;
mod cyrus;

use common::{show, Env};
use cyrus::{Cyrus, Layout};
use serde_json::Value;
use std::fs;
use std::process::{Command, Output};
use std::time::Instant;

const HOST: &str = "10.7.7.8";
const USER: &str = "alice@example.org";

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bmbackup//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261201T000000Z\r\nDTSTART:20261210T100000Z\r\nDTEND:20261210T110000Z\r\n\
         SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn card(uid: &str, name: &str) -> String {
    format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\nEND:VCARD\r\n")
}

/// A DAV request as alice (curl, Basic auth); returns status and body.
fn dav(srv: &Cyrus, method: &str, path: &str, ctype: &str, body: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-u",
            "alice@example.org:alicepw",
            "-X",
            method,
        ])
        .args(["-H", &format!("Content-Type: {ctype}"), "-H", "Depth: 1"])
        .args(["--data-binary", body])
        .arg(format!("http://127.0.0.1:{}{path}", srv.http))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn put(srv: &Cyrus, path: &str, ctype: &str, body: &str) {
    let (code, text) = dav(srv, "PUT", path, ctype, body);
    assert!((200..300).contains(&code), "PUT {path}: {code} {text}");
}

/// Deletes an item over DAV, as a user's client does.
fn delete(srv: &Cyrus, path: &str) {
    let (code, text) = dav(srv, "DELETE", path, "text/plain", "");
    assert_eq!(code, 204, "DELETE {path}: {text}");
}

/// The admin's password file for `[entities.dav]` (0600: bmbackup refuses a looser one).
fn dav_secret(dir: &std::path::Path) -> std::path::PathBuf {
    let secret = dir.join("dav.secret");
    fs::write(&secret, "secret\n").unwrap();
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    secret
}

fn cal(c: &str) -> String {
    format!("/dav/calendars/user/{USER}/{c}/")
}

fn book(c: &str) -> String {
    format!("/dav/addressbooks/user/{USER}/{c}/")
}

/// The items of a collection (REPORT with their data): UID → body, over CalDAV/CardDAV.
fn items(srv: &Cyrus, coll: &str, calendar: bool) -> std::collections::BTreeMap<String, String> {
    let q = if calendar {
        r#"<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>"#
    } else {
        r#"<?xml version="1.0"?><C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data/></D:prop></C:addressbook-query>"#
    };
    let (code, text) = dav(srv, "REPORT", coll, "application/xml", q);
    assert_eq!(code, 207, "REPORT {coll}: {text}");
    let mut out = std::collections::BTreeMap::new();
    for part in text.split("UID:").skip(1) {
        let uid = part.split(['\r', '\n']).next().unwrap().to_string();
        let summary = part
            .split("SUMMARY:")
            .nth(1)
            .or_else(|| part.split("FN:").nth(1))
            .map(|s| s.split(['\r', '\n']).next().unwrap().to_string())
            .unwrap_or_default();
        out.insert(uid, summary);
    }
    out
}

fn run(env: &Env, args: &[&str]) -> Output {
    env.cmd(args).output().unwrap()
}

fn ok(env: &Env, args: &[&str]) -> (String, String) {
    let out = run(env, args);
    assert!(out.status.success(), "{args:?} failed: {}", show(&out));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn restore(env: &Env, extra: &[&str]) -> (String, String, f64) {
    let mut args = vec!["restore-user", USER, "--host", HOST, "--at", "last"];
    args.extend(extra);
    let t = Instant::now();
    let (o, e) = ok(env, &args);
    let secs = t.elapsed().as_secs_f64();
    eprintln!("restore-user {extra:?}: {secs:.2} s\n{o}{e}");
    (o, e, secs)
}

#[test]
fn calendars_and_contacts_through_the_server_uuid_folders() {
    scenario(false);
}

#[test]
fn calendars_and_contacts_through_the_server_legacy_folders() {
    scenario(true);
}

fn scenario(legacy: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Cyrus::start_with_dav(
        &tmp.path().join("cyrus"),
        Layout {
            legacy,
            virtdomains: true,
            fulldirhash: false,
        },
    );
    srv.add_user(USER, "alicepw");
    let imap = srv.imap_port();
    srv.tool(&["create", &imap, "user/alice@example.org"]);
    srv.tool(&["deliver", &srv.lmtp_port(), USER, "2", "alice-seed"]);
    // The home collections are made on first use; a second calendar beside the default one.
    dav(&srv, "PROPFIND", &cal(""), "application/xml", "");
    dav(&srv, "PROPFIND", &book(""), "application/xml", "");
    let (code, text) = dav(&srv, "MKCALENDAR", &cal("work"), "application/xml", "");
    assert_eq!(code, 201, "MKCALENDAR: {text}");
    for i in 1..=3 {
        put(
            &srv,
            &format!("{}ev{i}.ics", cal("Default")),
            "text/calendar",
            &event(&format!("ev{i}@t"), &format!("event {i}")),
        );
        put(
            &srv,
            &format!("{}c{i}.vcf", book("Default")),
            "text/vcard",
            &card(&format!("c{i}@t"), &format!("Card{i}")),
        );
    }
    put(
        &srv,
        &format!("{}ev4.ics", cal("work")),
        "text/calendar",
        &event("ev4@t", "work 4"),
    );
    let cal_at_d = items(&srv, &cal("Default"), true);
    let book_at_d = items(&srv, &book("Default"), false);
    assert_eq!(cal_at_d.len(), 3, "{cal_at_d:?}");
    assert_eq!(book_at_d.len(), 3);

    // D: spool and config directory (mailboxes.db, annotations.db, the user's .dav index).
    let env = Env::new();
    let secret = dav_secret(tmp.path());
    fs::write(
        env.config(),
        format!(
            "post_backup_hook = \"\"\n[entities]\ncyrus_config = \"{}\"\n[entities.dav]\nurl = \"http://127.0.0.1:{}\"\nadmin = \"cyrus\"\npassword_file = \"{}\"\n",
            srv.conf().display(),
            srv.http,
            secret.display()
        ),
    )
    .unwrap();
    let spool = format!("mail/imap={}", srv.root.join("spool").display());
    let conf = format!("mail/imap-meta={}", srv.root.join("conf").display());
    ok(
        &env,
        &["backup", "--host", HOST, "--part", &spool, "--part", &conf],
    );

    // entities lists the collections beside the mailboxes.
    let (o, _) = ok(&env, &["entities", "--host", HOST, "--json"]);
    let v: Value = serde_json::from_str(&o).unwrap();
    let colls = v["collections"][USER]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"));
    let names: Vec<String> = colls
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        ["addressbook Default", "calendar Default", "calendar work"],
        "{v}"
    );
    assert_eq!(
        v["users"][0]["folders"], 1,
        "DAV collections are not mail folders: {v}"
    );
    // cyr_dbtool reads the mailbox list without a DBERROR line for the live syslog (it logs one
    // when the temporary config folder has no db/skipstamp), seen with strace.
    let trace = tmp.path().join("strace.out");
    let out = env
        .command("strace")
        .args(["-f", "-e", "trace=execve,openat,connect", "-o"])
        .arg(&trace)
        .args([common::BIN, "entities", "--host", HOST, "--json"])
        .output()
        .expect("strace (apt-get install strace)");
    assert!(out.status.success(), "{}", show(&out));
    let trace = fs::read_to_string(&trace).unwrap();
    assert!(trace.contains("cyr_dbtool"), "cyr_dbtool not run");
    assert!(!trace.contains("skipstamp\", O_RDONLY) = -1"), "{trace}");
    assert!(!trace.contains("\"/dev/log\""), "something wrote to syslog");

    // After D: an event deleted, one changed, one added; the work calendar deleted; a card
    // deleted and one added.
    delete(&srv, &format!("{}ev1.ics", cal("Default")));
    put(
        &srv,
        &format!("{}ev2.ics", cal("Default")),
        "text/calendar",
        &event("ev2@t", "changed 2"),
    );
    put(
        &srv,
        &format!("{}ev5.ics", cal("Default")),
        "text/calendar",
        &event("ev5@t", "after D"),
    );
    // (Cyrus 3.6 answers 404 to the DELETE of a collection it did delete.)
    dav(&srv, "DELETE", &cal("work"), "text/plain", "");
    assert_eq!(
        dav(&srv, "PROPFIND", &cal("work"), "application/xml", "").0,
        404
    );
    delete(&srv, &format!("{}c1.vcf", book("Default")));
    put(
        &srv,
        &format!("{}c4.vcf", book("Default")),
        "text/vcard",
        &card("c4@t", "Card4"),
    );

    // Calendars into new collections (the default).
    let (o, e, _) = restore(&env, &["--what", "calendar"]);
    assert!(
        !e.contains("is not in the backup"),
        "the .dav index was not found: {e}"
    );
    let day = o
        .split("Restored-")
        .nth(1)
        .map(|s| s[..10].to_string())
        .unwrap_or_else(|| panic!("{o}"));
    let work = items(&srv, &cal(&format!("Restored-{day}-work")), true);
    assert_eq!(
        work.get("ev4@t").map(String::as_str),
        Some("work 4"),
        "{work:?}"
    );
    let back = items(&srv, &cal(&format!("Restored-{day}-Default")), true);
    // Cyrus keeps one event per UID and user: only the deleted one is copied.
    assert_eq!(
        back.get("ev1@t").map(String::as_str),
        Some("event 1"),
        "{back:?}"
    );
    assert!(o.contains("2 event(s) not copied"), "{o}");

    // Into the original calendar, changed items put back; items after D kept.
    restore(
        &env,
        &[
            "--what",
            "calendar",
            "--collection",
            "Default",
            "--into-original",
            "--replace-changed",
        ],
    );
    let now = items(&srv, &cal("Default"), true);
    assert_eq!(
        now.get("ev2@t").map(String::as_str),
        Some("event 2"),
        "{now:?}"
    );
    assert_eq!(now.get("ev3@t").map(String::as_str), Some("event 3"));
    assert_eq!(
        now.get("ev5@t").map(String::as_str),
        Some("after D"),
        "made after D: kept"
    );

    // Contacts into the original address book: the deleted card back, the new one kept.
    let (o, _, _) = restore(&env, &["--what", "contacts", "--into-original"]);
    assert!(o.contains("1 created after the snapshot and kept"), "{o}");
    let cards = items(&srv, &book("Default"), false);
    for (uid, name) in &book_at_d {
        assert_eq!(cards.get(uid), Some(name), "{uid}: {cards:?}");
    }
    assert!(cards.contains_key("c4@t"));

    // A rerun (as after an interrupted run) exits 0 and changes nothing.
    let (o, _, _) = restore(&env, &["--what", "contacts", "--into-original"]);
    assert!(o.contains("0  added") || o.contains(": 0 added"), "{o}");
    let (o, _, _) = restore(&env, &["--what", "calendar"]);
    assert!(o.contains(": 0 added"), "{o}");

    // A mail restore leaves the DAV collections alone and registers mail folders only; with
    // run_next_steps it runs the Cyrus commands itself and the mail is visible over IMAP.
    let cfg = fs::read_to_string(env.config()).unwrap();
    fs::write(
        env.config(),
        cfg.replacen("[entities]\n", "[entities]\nrun_next_steps = true\n", 1),
    )
    .unwrap();
    let (o, e, _) = restore(&env, &[]);
    assert!(o.contains("$ ") && o.contains("ctl_mboxlist"), "{o}");
    assert!(o.contains("the restored mail is visible"), "{o}");
    let restored = format!("user/alice/Restored-{day}@example.org");
    let dump = srv.tool(&["dump", &imap, &restored]);
    assert_eq!(
        dump[&restored]["messages"].as_array().map(Vec::len),
        Some(2),
        "{dump}"
    );
    assert!(
        !o.contains("#calendars") && !e.contains("#calendars"),
        "{o}{e}"
    );
    assert!(
        !o.contains("#addressbooks") && !e.contains("#addressbooks"),
        "{o}{e}"
    );
    assert!(
        e.contains("left out of the mail restore") || o.contains("left out of the mail restore"),
        "{o}{e}"
    );

    // Cyrus stopped: --files replaces the address book's folder by the snapshot's (never
    // merged), then reconstruct and dav_reconstruct run (run_next_steps); the card made after
    // D is gone, and the output warns that the sync-token went back.
    srv.stop();
    let (o, e, _) = restore(
        &env,
        &[
            "--what",
            "contacts",
            "--collection",
            "Default",
            "--files",
            "--yes",
        ],
    );
    assert!(e.contains("sync-tokens went back"), "{e}");
    assert!(o.contains("dav_reconstruct"), "{o}");
    srv.restart();
    assert_eq!(items(&srv, &book("Default"), false), book_at_d, "{o}{e}");
}

/// The console's wizard puts a deleted event back into the user's own calendar through the
/// server, as an admin clicks it: kind `calendar`, the user, the date, "in place".
#[test]
fn the_console_restores_a_calendar_through_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Cyrus::start_with_dav(
        &tmp.path().join("cyrus"),
        Layout {
            legacy: false,
            virtdomains: true,
            fulldirhash: false,
        },
    );
    srv.add_user(USER, "alicepw");
    let imap = srv.imap_port();
    srv.tool(&["create", &imap, "user/alice@example.org"]);
    dav(&srv, "PROPFIND", &cal(""), "application/xml", "");
    for i in 1..=2 {
        put(
            &srv,
            &format!("{}ev{i}.ics", cal("Default")),
            "text/calendar",
            &event(&format!("ev{i}@t"), &format!("event {i}")),
        );
    }
    let env = Env::new();
    let secret = dav_secret(tmp.path());
    let spool = srv.root.join("spool");
    let meta = srv.root.join("conf");
    fs::write(
        env.config(),
        format!(
            "post_backup_hook = \"\"\nhost = \"{HOST}\"\npriority = \"normal\"\n\
             [parts.\"mail/imap\"]\npath = \"{}\"\n[parts.\"mail/imap-meta\"]\npath = \"{}\"\n\
             [entities]\ncyrus_config = \"{}\"\n[entities.dav]\nurl = \"http://127.0.0.1:{}\"\nadmin = \"cyrus\"\npassword_file = \"{}\"\n",
            spool.display(),
            meta.display(),
            srv.conf().display(),
            srv.http,
            secret.display()
        ),
    )
    .unwrap();
    ok(&env, &["backup"]);
    delete(&srv, &format!("{}ev1.ics", cal("Default")));
    put(
        &srv,
        &format!("{}ev3.ics", cal("Default")),
        "text/calendar",
        &event("ev3@t", "after D"),
    );
    let c = env.console();
    let token = c.login();
    let kinds = c.get(&token, "/api/kinds").json();
    assert_eq!(kinds["dav"], true, "{kinds}");
    let users = c.get(&token, "/api/entities?kind=calendar").json();
    assert!(users.to_string().contains(USER), "{users}");
    let dates = c
        .get(&token, &format!("/api/dates?kind=calendar&host={HOST}"))
        .json();
    let snap = dates[0]["id"].as_str().unwrap().to_string();
    let body = serde_json::json!({
        "kind": "calendar", "object": USER, "snapshot": snap, "dest": "inplace",
    });
    let plan = c.post(&token, "/api/restore/plan", &body);
    assert_eq!(plan.status, 200, "{}", plan.text());
    assert!(plan.text().contains("calendar Default"), "{}", plan.text());
    let t = Instant::now();
    let run = c.post(&token, "/api/restore/run", &body);
    assert_eq!(run.status, 200, "{}", run.text());
    let id = run.json()["job"].as_u64().unwrap();
    let mut job = Value::Null;
    for _ in 0..600 {
        job = c.get(&token, &format!("/api/jobs/{id}")).json();
        if job["running"] == false {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!(
        "console calendar restore: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(job["outcome"], "complete", "{job}");
    // Over CalDAV: the deleted event is back, the one made since is still there.
    let now = items(&srv, &cal("Default"), true);
    let uids: Vec<&str> = now.keys().map(String::as_str).collect();
    assert_eq!(uids, ["ev1@t", "ev2@t", "ev3@t"], "{now:?} {job}");
    assert_eq!(now["ev1@t"], "event 1");
}
