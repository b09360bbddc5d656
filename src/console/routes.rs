//! Which handler answers which request. Static files and the login are open; every `/api/`
//! path needs a session, and every POST also its CSRF token (`X-CSRF-Token`), a JSON body and,
//! when the browser sends one, an `Origin` of this very console.

use super::http::{error, json, read_json, request_header, split_url};
use super::server::{client_ip, App, Ctx};
use super::session::{clear_cookie, same, set_cookie};
use super::{api_backup, api_browse, api_download, api_overview, api_restore, api_restore_run};
use super::{assets, auth};
use crate::repo::Repository;
use std::sync::Arc;
use tiny_http::{Method, Request, ResponseBox};

pub fn handle(app: &Arc<App>, repo: &Repository, req: &mut Request) -> ResponseBox {
    let url = req.url().to_string();
    let (path, query) = split_url(&url);
    let method = req.method().clone();
    let client = client_ip(req);
    if method == Method::Get {
        if let Some(r) = assets::get(path) {
            return r;
        }
    }
    if !path.starts_with("/api/") {
        return error(404, "no such page");
    }
    if method == Method::Post && !origin_ok(req) {
        return error(403, "cross-site request refused");
    }
    if method == Method::Post && path == "/api/login" {
        return login(app, req, client);
    }
    let cookie = request_header(req, "Cookie").map(str::to_string);
    let Some(session) = app.sessions.get(cookie.as_deref()) else {
        return error(401, "log in first");
    };
    if method == Method::Post {
        let sent = request_header(req, "X-CSRF-Token").unwrap_or("");
        if !same(sent, &session.csrf) {
            log::warn!(target: super::LOG_TARGET, "{}: POST {path} without its CSRF token refused", session.label);
            return error(403, "missing or wrong CSRF token: reload the page");
        }
    }
    let ctx = Ctx {
        app,
        repo,
        who: session.label.clone(),
    };
    let segs: Vec<&str> = path["/api/".len()..].split('/').collect();
    match (method, segs.as_slice()) {
        (Method::Get, ["session"]) => json(
            200,
            &serde_json::json!({ "csrf": session.csrf, "who": session.label, "host": app.settings.host }),
        ),
        (Method::Post, ["logout"]) => {
            app.sessions.remove(cookie.as_deref());
            let mut r = json(200, &serde_json::json!({ "ok": true }));
            if let Some(h) = super::http::header("Set-Cookie", &clear_cookie()) {
                r.add_header(h);
            }
            r
        }
        (Method::Get, ["overview"]) => api_overview::overview(&ctx),
        (Method::Get, ["snapshots"]) => api_overview::snapshots(&ctx),
        (Method::Get, ["policy"]) => api_backup::policy(&ctx),
        (Method::Get, ["ls", id, rest @ ..]) => api_browse::ls(&ctx, id, rest),
        (Method::Get, ["history", id, rest @ ..]) => api_browse::history(&ctx, id, rest),
        (Method::Get, ["download", id, rest @ ..]) => api_download::download(&ctx, id, rest),
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
    let Some(origin) = request_header(req, "Origin") else {
        return true;
    };
    let host = request_header(req, "Host").unwrap_or("");
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    bare == Some(host)
}

fn login(app: &Arc<App>, req: &mut Request, client: std::net::IpAddr) -> ResponseBox {
    if let Some(wait) = app.throttle.wait(client) {
        let secs = wait.as_secs() + 1;
        let mut r = error(
            429,
            &format!("too many failed logins: wait {secs} s before trying again"),
        );
        if let Some(h) = super::http::header("Retry-After", &secs.to_string()) {
            r.add_header(h);
        }
        return r;
    }
    let body = match read_json(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let password = body.get("password").and_then(|p| p.as_str()).unwrap_or("");
    if !auth::verify(&app.hash, password) {
        let wait = app.throttle.failed(client);
        log::warn!(target: super::LOG_TARGET, "failed console login from {client} (next attempt allowed in {} s)", wait.as_secs());
        return error(401, "wrong password");
    }
    app.throttle.succeeded(client);
    let Some((token, session)) = app.sessions.create(client) else {
        return error(503, "no random source (/dev/urandom) for a session");
    };
    log::info!(target: super::LOG_TARGET, "{} logged in", session.label);
    let secure = request_header(req, "X-Forwarded-Proto") == Some("https");
    let mut r = json(
        200,
        &serde_json::json!({ "csrf": session.csrf, "who": session.label }),
    );
    if let Some(h) = super::http::header("Set-Cookie", &set_cookie(&token, secure)) {
        r.add_header(h);
    }
    r
}
