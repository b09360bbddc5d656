//! `bmbackup console`: the admin web console, served by the binary itself. It shows the
//! backups (overview, timeline, browse, history), runs restores through a wizard and starts
//! backups, by calling the same engine functions as the CLI (never the `bmbackup` binary).
//!
//! The HTTP stack is the console's own small synchronous server ([`listener`]): one thread reads
//! request heads of every connection without blocking and a bounded pool of workers answers,
//! which fits the thread-based engines (no async runtime beside them) and bounds what any
//! client can hold (tiny_http, used before, held a thread and two descriptors per connection
//! and closed its listener for good when the file table filled). Modules, in import order:
//! - [`server`]: start-up and the security headers every answer gets;
//! - [`listener`]: connections, their limits and timeouts, the worker pool, writing answers;
//! - [`routes`]: which handler answers which method and path, and who may call it;
//! - [`app`]: what the handlers share ([`app::App`]) and one request's context;
//! - [`auth`]: the password file (argon2 hash, 0600) and the per-client login backoff;
//! - [`session`]: session tokens, sent in a header, never a cookie;
//! - [`downloads`]: single-use download tickets and how each transfer ended;
//! - [`owners`]: user and group names of owner ids, for browse;
//! - [`http`]: requests and answers (JSON, query strings, percent-decoding);
//! - [`paths`]: snapshot and path parameters, which cannot leave the snapshot;
//! - [`jobs`]: backups and restores running in the background, their progress and log;
//! - `api_*`: one module per page (`api_runs`: past runs and `check`); [`assets`]: the embedded HTML, CSS and JS.

mod api_backup;
mod api_browse;
mod api_download;
mod api_overview;
mod api_restore;
mod api_restore_dav;
mod api_restore_db;
mod api_restore_run;
mod api_runs;
mod app;
mod assets;
mod auth;
mod downloads;
mod http;
mod jobs;
mod listener;
mod owners;
mod paths;
mod routes;
mod server;
mod session;

pub use auth::{set_password, PasswordFile};
pub use server::serve;

use std::net::SocketAddr;
use std::path::PathBuf;

/// The log target of the console's audit lines (logins, backups and restores started, with
/// who and what): on at info level by default, so the journal keeps them.
pub const LOG_TARGET: &str = "bmbackup::console";

/// The default address: this machine only (a reverse proxy adds TLS for remote admins).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

/// The password file's default place when no config file is given.
pub const DEFAULT_PASSWORD_FILE: &str = "/etc/bmbackup/console-password";

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot listen on {addr}: {detail} (choose another with --listen ADDRESS:PORT)")]
    Listen { addr: SocketAddr, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Password(String),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
}

/// What the console serves and how: built by the CLI from its arguments and the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub password_file: PathBuf,
    pub store: PathBuf,
    pub cache_dir: Option<PathBuf>,
    pub config: crate::config::Config,
    /// The config file read (shown on the policy page), if any.
    pub config_path: Option<PathBuf>,
    /// This server's address as backups record it.
    pub host: String,
    /// Worker threads answering requests.
    pub threads: usize,
}

/// The password file for a config file at `config` (none: the default config's folder).
pub fn default_password_file(config: Option<&std::path::Path>) -> PathBuf {
    match config.and_then(std::path::Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("console-password"),
        Some(_) => PathBuf::from("console-password"),
        None => PathBuf::from(DEFAULT_PASSWORD_FILE),
    }
}
