//! The listener and its bounded pool of worker threads (each with its own repository handle:
//! the catalog connection is not shared between threads), and the headers every answer gets:
//! a Content-Security-Policy that allows only the console's own files (no inline script),
//! `nosniff`, no framing, no referrer, no caching.

use super::auth::{PasswordFile, Throttle};
use super::jobs::Jobs;
use super::session::Sessions;
use super::{ConsoleError, Settings};
use crate::repo::Repository;
use parking_lot::Mutex;
use std::net::IpAddr;
use std::sync::Arc;
use tiny_http::{Request, ResponseBox, Server};

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What every worker shares.
pub struct App {
    pub settings: Settings,
    /// The password hash, read at start (set a new password, then restart the console).
    pub hash: String,
    pub throttle: Throttle,
    pub sessions: Sessions,
    pub jobs: Jobs,
    /// Store-wide figures (they read every tree): computed in the background, kept here.
    pub stats: Mutex<Option<serde_json::Value>>,
}

impl App {
    /// A repository handle of its own (for a background job or a streamed download).
    pub fn open_repo(&self) -> Result<Repository, crate::repo::RepoError> {
        Repository::open(&self.settings.store, self.settings.cache_dir.as_deref())
    }

    /// Recomputes the store figures in the background (at start and after each backup).
    pub fn refresh_stats(self: &Arc<Self>) {
        let app = Arc::clone(self);
        std::thread::spawn(move || {
            let v = app
                .open_repo()
                .and_then(|r| crate::retention::stats::compute(&r));
            match v {
                Ok(s) => {
                    *app.stats.lock() = serde_json::to_value(&s.store).ok();
                }
                Err(e) => log::warn!("console: store figures not computed: {e}"),
            }
        });
    }
}

/// One request's context for the handlers.
pub struct Ctx<'a> {
    pub app: &'a Arc<App>,
    pub repo: &'a Repository,
    /// Who is logged in (for the logs), once the session is known.
    pub who: String,
}

/// Serves the console until the process is stopped.
pub fn serve(settings: Settings) -> Result<(), ConsoleError> {
    let hash = PasswordFile {
        path: settings.password_file.clone(),
    }
    .load()?;
    // Fails early, at start, on a store that cannot be opened.
    drop(Repository::open(
        &settings.store,
        settings.cache_dir.as_deref(),
    )?);
    let addr = settings.listen;
    let server = Server::http(addr).map_err(|e| ConsoleError::Listen {
        addr,
        detail: e.to_string(),
    })?;
    let server = Arc::new(server);
    let threads = settings.threads.clamp(1, 64);
    let app = Arc::new(App {
        settings,
        hash,
        throttle: Throttle::default(),
        sessions: Sessions::default(),
        jobs: Jobs::default(),
        stats: Mutex::new(None),
    });
    app.refresh_stats();
    log::info!(target: super::LOG_TARGET, "console listening on http://{addr}/ ({threads} workers)");
    crate::tell!("bmbackup console: http://{addr}/");
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let server = Arc::clone(&server);
            let app = Arc::clone(&app);
            std::thread::spawn(move || worker(&server, &app))
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn worker(server: &Server, app: &Arc<App>) {
    let mut repo: Option<Repository> = None;
    while let Ok(mut req) = server.recv() {
        if repo.is_none() {
            match app.open_repo() {
                Ok(r) => repo = Some(r),
                Err(e) => {
                    let _ = req.respond(secured(super::http::error(
                        503,
                        &format!("cannot open the store: {e}"),
                    )));
                    continue;
                }
            }
        }
        let Some(r) = repo.as_ref() else { continue };
        let resp = super::routes::handle(app, r, &mut req);
        let _ = req.respond(secured(resp));
    }
}

/// Adds the headers every answer carries.
fn secured(mut r: ResponseBox) -> ResponseBox {
    for (k, v) in [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ] {
        if let Some(h) = super::http::header(k, v) {
            r.add_header(h);
        }
    }
    r
}

/// The client's address (the peer; a proxy's own address behind a reverse proxy).
pub fn client_ip(req: &Request) -> IpAddr {
    req.remote_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}
