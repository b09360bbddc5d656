//! Starting the console: the password and the store are checked, the port is bound, and the
//! listener ([`super::listener`]) answers each request through [`super::routes`] with a
//! repository handle per worker thread (a catalog connection is not shared between threads).
//! Every answer gets the same security headers: a Content-Security-Policy that allows only the
//! console's own files (no inline script), `nosniff`, no framing, no referrer, no caching.

use super::app::App;
use super::auth::{PasswordFile, Throttle};
use super::downloads::Downloads;
use super::http::{Request, Response};
use super::jobs::Jobs;
use super::listener::{self, Limits};
use super::session::Sessions;
use super::{ConsoleError, Settings};
use crate::repo::Repository;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::Arc;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

thread_local! {
    /// Each worker's own repository handle, opened at its first request.
    static REPO: RefCell<Option<Repository>> = const { RefCell::new(None) };
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
    let socket = std::net::TcpListener::bind(addr).map_err(|e| ConsoleError::Listen {
        addr,
        detail: e.to_string(),
    })?;
    let limits = Limits::with_workers(settings.threads);
    let app = Arc::new(App {
        settings,
        hash,
        throttle: Throttle::default(),
        sessions: Sessions::default(),
        downloads: Downloads::default(),
        jobs: Jobs::default(),
        stats: Mutex::new(None),
    });
    app.refresh_stats();
    log::info!(target: super::LOG_TARGET, "console listening on http://{addr}/ ({} workers)", limits.workers);
    crate::tell!("bmbackup console: http://{addr}/");
    let handler = move |req: &Request| secured(answer(&app, req));
    listener::serve(socket, limits, Arc::new(handler)).map_err(|e| ConsoleError::Listen {
        addr,
        detail: e.to_string(),
    })
}

fn answer(app: &Arc<App>, req: &Request) -> Response {
    REPO.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            match app.open_repo() {
                Ok(r) => *slot = Some(r),
                Err(e) => {
                    return super::http::error(503, &format!("cannot open the store: {e}"));
                }
            }
        }
        match slot.as_ref() {
            Some(repo) => super::routes::handle(app, repo, req),
            None => super::http::error(503, "cannot open the store"),
        }
    })
}

/// Adds the headers every answer carries.
fn secured(mut r: Response) -> Response {
    for (k, v) in [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ] {
        r.add_header(k, v);
    }
    r
}
