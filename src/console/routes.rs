//! Which handler answers which request. Static files, the login and ticketed downloads are
//! open; every `/api/` path needs a session token in the [`HEADER`] header (never a cookie:
//! see [`super::session`]). Every POST also needs a JSON body and, when the browser sends one,
//! an `Origin` of this very console.

use super::app::{App, Ctx};
use super::http::{error, json, read_json, split_url, Method, Request, Response};
use super::session::HEADER;
use super::{
    api_backup, api_browse, api_download, api_overview, api_restore, api_restore_run, api_runs,
};
use super::{assets, auth};
use crate::repo::Repository;
use std::sync::Arc;

pub fn handle(app: &Arc<App>, repo: &Repository, req: &Request) -> Response {
    let (path, query) = split_url(req.url());
    // HEAD is answered as GET (the listener leaves the body out).
    let method = match &req.method {
        Method::Head => Method::Get,
        m => m.clone(),
    };
    if method == Method::Get {
        if let Some(r) = assets::get(path) {
            return r;
        }
        if let Some(token) = path.strip_prefix("/download/") {
            return api_download::download(app, repo, token);
        }
    }
    if !path.starts_with("/api/") {
        return error(404, "no such page");
    }
    if !matches!(method, Method::Get | Method::Post) {
        return error(405, "only GET and POST are answered");
    }
    if method == Method::Post && !origin_ok(req) {
        return error(403, "cross-site request refused");
    }
    if method == Method::Post && path == "/api/login" {
        return login(app, req);
    }
    let token = req.header(HEADER);
    let Some(session) = app.sessions.get(token) else {
        return error(401, "log in first");
    };
    let ctx = Ctx {
        app,
        repo,
        who: session.label.clone(),
    };
    let segs: Vec<&str> = path["/api/".len()..].split('/').collect();
    match (method, segs.as_slice()) {
        (Method::Get, ["session"]) => json(
            200,
            &serde_json::json!({ "who": session.label, "host": app.settings.host }),
        ),
        (Method::Post, ["logout"]) => {
            app.sessions.remove(token);
            json(200, &serde_json::json!({ "ok": true }))
        }
        (Method::Get, ["overview"]) => api_overview::overview(&ctx),
        (Method::Get, ["snapshots"]) => api_overview::snapshots(&ctx),
        (Method::Get, ["policy"]) => api_backup::policy(&ctx),
        (Method::Get, ["ls", id, rest @ ..]) => api_browse::ls(&ctx, id, rest),
        (Method::Get, ["history", id, rest @ ..]) => api_browse::history(&ctx, id, rest),
        (Method::Post, ["download", id, rest @ ..]) => api_download::ticket(&ctx, id, rest),
        (Method::Get, ["downloads", ticket]) => api_download::status(&ctx, ticket),
        (Method::Get, ["runs"]) => api_runs::runs(&ctx),
        (Method::Post, ["check", "run"]) => match read_json(req) {
            Ok(body) => api_runs::run_check(&ctx, &body),
            Err(r) => r,
        },
        (Method::Get, ["kinds"]) => json(
            200,
            &serde_json::json!({
                "db": super::api_restore_db::kinds_json(&app.settings.config),
                "dav": super::api_restore_dav::configured(&ctx),
            }),
        ),
        (Method::Get, ["entities"]) => api_restore::entities(&ctx, &query),
        (Method::Get, ["dates"]) => api_restore::dates(&ctx, &query),
        (Method::Get, ["jobs"]) => json(200, &app.jobs.list_json()),
        (Method::Get, ["jobs", id]) => match id.parse::<u64>().ok().and_then(|i| app.jobs.get(i)) {
            Some(j) => json(200, &j.json()),
            None => error(404, "no such job"),
        },
        (Method::Post, ["restore", "plan"]) => match read_json(req) {
            Ok(body) => api_restore::plan(&ctx, &body),
            Err(r) => r,
        },
        (Method::Post, ["restore", "run"]) => match read_json(req) {
            Ok(body) => api_restore_run::run(&ctx, &body),
            Err(r) => r,
        },
        (Method::Post, ["backup", "run"]) => match read_json(req) {
            Ok(_) => api_backup::run(&ctx),
            Err(r) => r,
        },
        _ => error(404, "no such API call"),
    }
}

/// A POST's `Origin`, when sent, must be this console (the `Host` it was asked as).
fn origin_ok(req: &Request) -> bool {
    let Some(origin) = req.header("Origin") else {
        return true;
    };
    let host = req.header("Host").unwrap_or("");
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    bare == Some(host)
}

fn login(app: &Arc<App>, req: &Request) -> Response {
    let client = req.peer.ip();
    let body = match read_json(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let wait = match app.throttle.begin(client) {
        Ok(w) => w,
        Err(left) => {
            let secs = left.as_secs() + 1;
            let mut r = error(
                429,
                &format!("too many failed logins: wait {secs} s before trying again"),
            );
            r.add_header("Retry-After", &secs.to_string());
            return r;
        }
    };
    let password = body.get("password").and_then(|p| p.as_str()).unwrap_or("");
    if !auth::verify(&app.hash, password) {
        log::warn!(target: super::LOG_TARGET, "failed console login from {client} (next attempt allowed in {} s)", wait.as_secs());
        return error(401, "wrong password");
    }
    app.throttle.succeeded(client);
    let Some((token, session)) = app.sessions.create(client) else {
        return error(503, "no random source (/dev/urandom) for a session");
    };
    log::info!(target: super::LOG_TARGET, "{} logged in", session.label);
    json(
        200,
        &serde_json::json!({ "token": token, "who": session.label, "header": HEADER }),
    )
}
