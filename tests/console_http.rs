//! The console's security over raw HTTP (tests/common/console.rs sends bytes as given): login
//! required and slowed down after failures, the password stored hashed in a 0600 file, the
//! session token in a header (no cookie) on every call, same-origin POSTs, the headers of every answer, path
//! parameters that cannot leave the snapshot, downloads as attachments, confirmation before an
//! in-place restore, and the audit log of what was started.

mod common;
use bmbackup::gen::{generate_spool, SpoolSpec};
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// A store with one backup of a generated spool (the config's part), and the console on it.
fn setup() -> (Env, Console, serde_json::Value) {
    let env = Env::new();
    let spool = env.path("spool");
    generate_spool(&spool, &SpoolSpec::demo()).unwrap();
    env.write_config(&format!(
        "[parts.\"mail/imap\"]\npath = \"{}\"\n",
        spool.display()
    ));
    env.ok(&["backup"]);
    let snap = env.snapshots().pop().unwrap();
    let console = env.console();
    (env, console, snap)
}

/// Waits for a job to finish; returns it.
fn wait_job(c: &Console, token: &str, id: u64) -> serde_json::Value {
    for _ in 0..600 {
        let j = c.get(token, &format!("/api/jobs/{id}")).json();
        if j["running"] == false {
            return j;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("job {id} did not finish");
}

#[test]
fn login_is_required_slowed_down_and_the_password_kept_hashed() {
    let (env, c, _) = setup();
    // The password file: 0600, and a hash, not the password.
    let pw = env.path("console-password");
    assert_eq!(pw.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    let stored = std::fs::read_to_string(&pw).unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(CONSOLE_PASSWORD));

    // The page is served with its security headers; the API needs a session.
    let page = c.request("GET", "/", &[], "");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert!(!page.text().contains("<script>"), "no inline script");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    for path in [
        "/api/overview",
        "/api/snapshots",
        "/api/session",
        "/api/policy",
    ] {
        assert_eq!(c.request("GET", path, &[], "").status, 401, "{path}");
    }
    let forged = c.request("GET", "/api/overview", &[(SESSION, "0123")], "");
    assert_eq!(forged.status, 401);

    // A form post (not JSON) is refused before any password check.
    let form = c.request(
        "POST",
        "/api/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "password=x",
    );
    assert_eq!(form.status, 415);
    // A wrong password: refused, and then even the right one must wait (doubling waits).
    let wrong = serde_json::json!({ "password": "guess" }).to_string();
    let right = serde_json::json!({ "password": CONSOLE_PASSWORD }).to_string();
    assert_eq!(c.request("POST", "/api/login", &[JSON], &wrong).status, 401);
    let busy = c.request("POST", "/api/login", &[JSON], &right);
    assert_eq!(busy.status, 429, "{}", busy.text());
    assert!(busy.header("retry-after").is_some());
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(c.request("POST", "/api/login", &[JSON], &wrong).status, 401);
    std::thread::sleep(Duration::from_millis(1100));
    // The second failure made the wait 2 s: still refused after 1.1 s.
    assert_eq!(c.request("POST", "/api/login", &[JSON], &right).status, 429);
    std::thread::sleep(Duration::from_millis(1000));
    let ok = c.request("POST", "/api/login", &[JSON], &right);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.header("set-cookie").is_none());
    let token = ok.json()["token"].as_str().unwrap().to_string();
    assert_eq!(c.get(&token, "/api/overview").status, 200);
    let log = std::fs::read_to_string(&c.log).unwrap();
    assert!(log.contains("failed console login from 127.0.0.1"), "{log}");
}

#[test]
fn every_call_needs_the_session_header_and_posts_a_same_origin() {
    let (_env, c, snap) = setup();
    let token = c.login();
    let plan = serde_json::json!({
        "kind": "folder", "object": "mail/imap", "path": "", "snapshot": snap["id"], "dest": "new"
    })
    .to_string();
    for path in [
        "/api/restore/plan",
        "/api/restore/run",
        "/api/backup/run",
        "/api/logout",
    ] {
        let none = c.request("POST", path, &[JSON], &plan);
        assert_eq!(
            none.status,
            401,
            "{path} without a session: {}",
            none.text()
        );
        let bad = c.request("POST", path, &[(SESSION, &token[1..]), JSON], &plan);
        assert_eq!(bad.status, 401, "{path} with a wrong token");
        // What a browser sends by itself (cookies, even one named like a session) is nothing.
        let cookie = format!("bmb_session={token}; X-Bmbackup-Session={token}");
        let jar = c.request("POST", path, &[("Cookie", &cookie), JSON], &plan);
        assert_eq!(jar.status, 401, "{path} with the token as a cookie");
        let cross = c.request(
            "POST",
            path,
            &[(SESSION, &token), JSON, ("Origin", "http://evil.example")],
            &plan,
        );
        assert_eq!(cross.status, 403, "{path} from another origin");
        let other_port = c.request(
            "POST",
            path,
            &[(SESSION, &token), JSON, ("Origin", "http://127.0.0.1:1")],
            &plan,
        );
        assert_eq!(other_port.status, 403, "{path} from another port");
    }
    let good = c.post(
        &token,
        "/api/restore/plan",
        &serde_json::from_str(&plan).unwrap(),
    );
    assert_eq!(good.status, 200, "{}", good.text());
    // Nothing was started by the refused requests.
    assert_eq!(c.get(&token, "/api/jobs").json(), serde_json::json!([]));
    // Logged out: the token is dead.
    assert_eq!(
        c.post(&token, "/api/logout", &serde_json::json!({})).status,
        200
    );
    assert_eq!(c.get(&token, "/api/jobs").status, 401);
}

#[test]
fn paths_cannot_leave_the_snapshot_and_downloads_are_attachments() {
    let (env, c, snap) = setup();
    let token = c.login();
    let id = snap["id"].as_str().unwrap();
    let spool = env.path("spool");
    let (local, domain) = users(&spool)[0].clone();
    let dir = format!("{domain}/user/{local}");
    // A secret beside the spool that no URL may reach.
    std::fs::write(env.path("secret"), "SECRET").unwrap();
    let get = |target: &str| {
        if let Some(rest) = target.strip_prefix("/api/download/") {
            return c.download(&token, rest);
        }
        c.get(&token, target)
    };
    for api in ["ls", "download", "history"] {
        for bad in [
            format!("/api/{api}/{id}/../../secret"),
            format!("/api/{api}/{id}/{dir}/../../../.."),
            format!("/api/{api}/{id}/%2E%2E/%2e%2e/secret"),
            format!("/api/{api}/{id}/{domain}%2Fuser"),
            format!("/api/{api}/{id}/..%2F..%2Fsecret"),
            format!("/api/{api}/{id}/{domain}%00"),
            format!("/api/{api}/{id}/./{domain}"),
            format!("/api/{api}/..%2F..%2F{id}/{domain}"),
            format!("/api/{api}/../../etc/passwd"),
        ] {
            // Refused as malformed (400), not merely looked up and not found.
            let a = get(&bad);
            assert_eq!(a.status, 400, "{bad}: {}", a.text());
            assert!(!a.text().contains("SECRET"), "{bad}");
        }
    }
    // A folder restore's path in a JSON body: the same rules, so its destination (computed
    // from the path) cannot leave the part's source either.
    for bad in ["../../etc", "acme.test/../../../tmp", "a\0b", "./x"] {
        let body = serde_json::json!({
            "kind": "folder", "object": "mail/imap", "path": bad, "snapshot": id, "dest": "new"
        });
        let a = c.post(&token, "/api/restore/plan", &body);
        assert_eq!(a.status, 400, "{bad:?}: {}", a.text());
    }
    // The same paths spelled plainly work.
    assert_eq!(get(&format!("/api/ls/{id}/{dir}")).status, 200);
    // A file: its bytes, as an attachment that the browser never renders.
    let name = std::fs::read_dir(spool.join(&dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("cyrus."))
        .min()
        .unwrap();
    let ticket = c.post(
        &token,
        &format!("/api/download/{id}/{dir}/{name}"),
        &serde_json::json!({}),
    );
    let url = ticket.json()["url"].as_str().unwrap().to_string();
    let f = c.request("GET", &url, &[], "");
    assert_eq!(f.status, 200);
    assert_eq!(
        f.header("content-length"),
        Some(f.body.len().to_string().as_str())
    );
    // A ticket works once.
    assert_eq!(c.request("GET", &url, &[], "").status, 410);
    let t = ticket.json()["ticket"].as_str().unwrap().to_string();
    assert_eq!(
        c.get(&token, &format!("/api/downloads/{t}")).json()["state"],
        "done"
    );
    assert_eq!(f.body, std::fs::read(spool.join(&dir).join(&name)).unwrap());
    assert_eq!(f.header("content-type"), Some("application/octet-stream"));
    assert!(f
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(f.header("x-content-type-options"), Some("nosniff"));
    // A folder: a tar of its files, streamed.
    let t = get(&format!("/api/download/{id}/{dir}"));
    assert_eq!(t.status, 200);
    assert!(t
        .header("content-disposition")
        .unwrap()
        .contains(&format!("{local}.tar")));
    let mut archive = tar::Archive::new(&t.body[..]);
    let out = env.path("untarred");
    archive.unpack(&out).unwrap();
    for p in walk(&spool.join(&dir)).into_iter().filter(|p| p.is_file()) {
        let rel = p.strip_prefix(spool.join(&dir)).unwrap();
        assert_eq!(
            std::fs::read(out.join(&local).join(rel)).unwrap(),
            std::fs::read(&p).unwrap(),
            "{}",
            rel.display()
        );
    }
}

#[test]
fn in_place_needs_its_confirmation_and_everything_started_is_logged() {
    let (env, c, snap) = setup();
    let token = c.login();
    let spool = env.path("spool");
    let (local, domain) = users(&spool)[1].clone();
    let dir = format!("{domain}/user/{local}");
    let live = spool.join(&dir);
    // The live folder changed since the backup: a file lost, one added.
    let victim = walk(&live).into_iter().find(|p| p.is_file()).unwrap();
    let kept = std::fs::read(&victim).unwrap();
    std::fs::remove_file(&victim).unwrap();
    std::fs::write(live.join("new-since-backup"), "x").unwrap();
    // And an earlier restore's folder, which an in-place restore removes too.
    std::fs::create_dir_all(live.join("Restored-earlier/sub")).unwrap();
    std::fs::write(live.join("Restored-earlier/1."), "m").unwrap();
    std::fs::write(live.join("Restored-earlier/sub/2."), "m").unwrap();
    let post = |path: &str, body: &serde_json::Value| c.post(&token, path, body);
    let mut body = serde_json::json!({
        "kind": "folder", "object": "mail/imap", "path": dir, "snapshot": snap["id"], "dest": "inplace"
    });
    let plan = post("/api/restore/plan", &body).json();
    let removes = plan["removes"].clone();
    // The confirmation names what goes, counted.
    assert_eq!(
        removes,
        serde_json::json!([format!(
            "{} (removed first; lost: 1 file newer than the snapshot (mail received since); \
             1 folder the snapshot does not have (Restored-earlier), 2 files in them)",
            live.display()
        )])
    );
    // Unconfirmed, or confirmed for something else: refused, nothing touched.
    let refused = post("/api/restore/run", &body);
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(refused.text().contains(&live.display().to_string()));
    body["confirm"] = serde_json::json!(["/somewhere/else"]);
    assert_eq!(post("/api/restore/run", &body).status, 409);
    assert!(live.join("new-since-backup").exists());
    // Confirmed: the folder is the snapshot's again (removed first, not merged).
    body["confirm"] = removes;
    let run = post("/api/restore/run", &body);
    assert_eq!(run.status, 200, "{}", run.text());
    let job = wait_job(&c, &token, run.json()["job"].as_u64().unwrap());
    assert_eq!(job["outcome"], "complete", "{job}");
    assert!(!live.join("new-since-backup").exists());
    assert_eq!(std::fs::read(&victim).unwrap(), kept);

    // A backup from the console; a second one while it runs is refused.
    let b = post("/api/backup/run", &serde_json::json!({}));
    assert_eq!(b.status, 200, "{}", b.text());
    let job = wait_job(&c, &token, b.json()["job"].as_u64().unwrap());
    assert_eq!(job["outcome"], "complete", "{job}");
    assert_eq!(env.snapshots().len(), 2);
    let log = std::fs::read_to_string(&c.log).unwrap();
    let who = "admin@127.0.0.1#";
    assert!(
        log.lines()
            .any(|l| l.contains(who) && l.contains("started a restore") && l.contains(&dir)),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(who) && l.contains("started a backup")),
        "{log}"
    );
}

#[test]
fn the_overview_warns_of_stale_backups_and_an_open_store() {
    let env = Env::new();
    let spool = env.path("spool");
    generate_spool(&spool, &SpoolSpec::demo()).unwrap();
    env.write_config(&format!(
        "[parts.\"mail/imap\"]\npath = \"{}\"\n",
        spool.display()
    ));
    env.ok(&["backup", "--simulate-time", "2d"]);
    let c = env.console();
    let token = c.login();
    let overview = |c: &Console| c.get(&token, "/api/overview").json();
    let o = overview(&c);
    let warnings = o["warnings"].to_string();
    assert!(
        warnings.contains("no complete backup for more than 26 h"),
        "{o}"
    );
    assert!(!warnings.contains("read by other users"), "{o}");
    assert_eq!(o["parts"][0]["last"]["status"], "complete");
    std::fs::set_permissions(env.store(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = overview(&c);
    assert!(
        o["warnings"]
            .to_string()
            .contains("may be read by other users"),
        "{o}"
    );
    // A fresh backup clears the stale warning; a passed check is recorded and warns of nothing.
    std::fs::set_permissions(env.store(), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.ok(&["backup"]);
    env.ok(&["check"]);
    let o = overview(&c);
    assert_eq!(o["warnings"], serde_json::json!([]), "{o}");
    assert_eq!(o["last_check"]["ok"], true, "{o}");
    // A check that failed is a warning until a check passes again.
    let pack = env.pack_files().pop().unwrap();
    flip(&pack, 100);
    assert!(!env.run(&["check", "--read-data"]).status.success());
    let o = overview(&c);
    let w = o["warnings"].to_string();
    assert!(
        w.contains("the last check") && w.contains(") failed: 1 "),
        "{o}"
    );
}

#[test]
fn a_second_restore_of_the_same_date_gets_its_own_folder_and_users_of_every_host_are_listed() {
    let (env, c, snap) = setup();
    let token = c.login();
    let spool = env.path("spool");
    let (local, domain) = users(&spool)[0].clone();
    let dir = format!("{domain}/user/{local}");
    let body = serde_json::json!({
        "kind": "folder", "object": "mail/imap", "path": dir, "snapshot": snap["id"], "dest": "new"
    });
    let mut made = Vec::new();
    for _ in 0..2 {
        let run = c.post(&token, "/api/restore/run", &body);
        assert_eq!(run.status, 200, "{}", run.text());
        let job = wait_job(&c, &token, run.json()["job"].as_u64().unwrap());
        assert_eq!(job["outcome"], "complete", "{job}");
        made.push(job["what"].as_str().unwrap().to_string());
    }
    let parent = spool.join(&domain).join("user");
    let restored: Vec<String> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("Restored-"))
        .collect();
    assert_eq!(restored.len(), 2, "{restored:?} {made:?}");
    assert!(restored.iter().any(|n| n.ends_with("-2")), "{restored:?}");
    // A second host's spool in the same store: its users are offered too, with their host.
    let other = env.path("spool2");
    generate_spool(&other, &SpoolSpec::demo()).unwrap();
    env.ok(&[
        "backup",
        "--host",
        "10.0.0.9",
        "--part",
        &format!("mail/imap={}", other.display()),
    ]);
    let e = c.get(&token, "/api/entities?kind=user").json();
    let hosts: std::collections::BTreeSet<&str> = e["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        ["10.0.0.5", "10.0.0.9"],
        "{e}"
    );
    let d = c.get(&token, "/api/dates?kind=user&host=10.0.0.9").json();
    assert_eq!(d.as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d[0]["status"], "complete");
    // A store without the mailbox part says why the list is empty.
    let env2 = Env::new();
    let files = env2.path("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("a"), "x").unwrap();
    env2.write_config(&format!(
        "[parts.\"files/data\"]\npath = \"{}\"\n",
        files.display()
    ));
    env2.ok(&["backup"]);
    let c2 = env2.console();
    let t2 = c2.login();
    let e = c2.get(&t2, "/api/entities?kind=user").json();
    assert!(
        e["why"]
            .as_str()
            .unwrap()
            .contains("no snapshot of the part mail/imap"),
        "{e}"
    );
}
