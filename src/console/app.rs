//! What every request handler shares ([`App`]: settings, password hash, login throttle,
//! sessions, download tickets, jobs) and one request's context ([`Ctx`]). Handlers depend on
//! this module only, never on the server or the routes, so the console's modules import in
//! one direction: server → routes → handlers → app.

use super::auth::Throttle;
use super::downloads::Downloads;
use super::jobs::Jobs;
use super::session::Sessions;
use super::Settings;
use crate::repo::Repository;
use parking_lot::Mutex;
use std::sync::Arc;

/// What every worker shares.
pub struct App {
    pub settings: Settings,
    /// The password hash, read at start (set a new password, then restart the console).
    pub hash: String,
    pub throttle: Throttle,
    pub sessions: Sessions,
    pub downloads: Downloads,
    pub jobs: Jobs,
    /// Store-wide figures (they read every tree): computed in the background, kept here.
    pub stats: Mutex<Option<serde_json::Value>>,
}

impl App {
    /// A repository handle of its own (for a background job or a streamed download). Opening
    /// one beside the workers' is safe: the catalog's files are only ever opened by SQLite.
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
