//! Command-line interface: argument definitions (clap) and dispatch to one small module per
//! command. Exit codes: 0 success, 1 error, 2 bad usage, 3 finished but some files were not
//! backed up or restored (the run's output lists them).

mod backup;
mod common;
pub(crate) use common::Common;
mod backup_json;
mod backup_printer;
mod confirm;
mod errors;
pub use errors::UsageError;
mod init;
mod json;
mod logging;
pub use logging::LIST_TARGET;
mod output;
pub use output::tell_inline;
mod demo;
mod docs;
pub(crate) mod format;
mod generate;
mod mount;
mod progress;
mod prune;
mod restore;
mod restore_report;
mod restore_shared;
mod snapshots;

mod forget;
mod forget_delete;
mod forget_json;
mod policy_args;
mod stats;

mod check;
mod console;
mod repair;

mod diff;
mod entities;
mod find;
mod history;
mod ls;
mod restore_db_entity;
mod restore_server;
mod restore_user;
mod restore_user_next;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_PARTIAL: i32 = 3;
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "bmbackup",
    version,
    about = "Deduplicating backups of mail servers, browsable as a time-travel filesystem"
)]
pub struct Cli {
    /// The store folder, or `s3://BUCKET/PREFIX` (or set BMBACKUP_STORE, or `store` in the config
    /// file).
    #[arg(long, global = true, env = "BMBACKUP_STORE")]
    pub store: Option<PathBuf>,
    /// Where the catalog (a rebuildable index of the store) is kept.
    #[arg(long, global = true, env = "BMBACKUP_CACHE")]
    pub cache_dir: Option<PathBuf>,
    /// Configuration file [default: /etc/bmbackup/bmbackup.toml when it exists].
    #[arg(long, global = true, env = "BMBACKUP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Say more: -v lists each file backup reads (A added, M changed) and notes; -vv debugs.
    /// RUST_LOG (e.g. RUST_LOG=debug or RUST_LOG=bmbackup::list=info) overrides -v and -q.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print errors only (no summaries, warnings or progress).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new, empty store.
    Init(init::InitArgs),
    /// Back up the configured parts of this server, one snapshot per part.
    Backup(backup::BackupArgs),
    /// List snapshots.
    Snapshots(snapshots::SnapshotsArgs),
    /// Restore a snapshot, or a folder or file of it, into a folder.
    Restore(restore::RestoreArgs),
    /// Delete data that no snapshot references any more (after `forget`).
    Prune(prune::PruneArgs),
    /// Show the store as a read-only filesystem: HOST/PART/DATE/… and HOST/PART/last/.
    Mount(mount::MountArgs),

    /// Apply a retention policy: forget (delete the manifests of) the snapshots it does not keep;
    /// or delete snapshots on purpose (SNAPSHOT..., or --host IP [--part NAME] --all).
    Forget(forget::ForgetArgs),
    /// Sizes: per snapshot, per part, and store-wide stored size, unique data and savings.
    Stats(stats::StatsArgs),

    /// Verify the store: packs, manifests, every snapshot's trees and chunks; exit 1 on damage.
    Check(check::CheckArgs),
    /// Rebuild the catalog, set damaged files aside, mark snapshots that lost data, remove leftovers.
    Repair(repair::RepairArgs),

    /// Demonstrate on generated data: back up a small mail spool twice and mount the store.
    Demo(demo::DemoArgs),
    /// Write man pages and shell completions into a folder (for installers).
    #[command(hide = true)]
    Docs(docs::DocsArgs),
    /// Generate deterministic test data (demo, tests, benchmarks).
    #[command(subcommand, hide = true)]
    Generate(generate::GenerateCmd),

    /// Restore one user's mail (and archived mail) at a point in time.
    RestoreUser(restore_user::RestoreUserArgs),
    /// List the users and shared mailboxes present in a snapshot of the mail spool.
    Entities(entities::EntitiesArgs),
    /// Restore every part of a server at a point in time to where it was backed up from.
    RestoreServer(restore_server::RestoreServerArgs),
    /// Serve the admin web console (overview, browse, restore wizard, backup now), or set its
    /// password with --set-password.
    Console(console::ConsoleArgs),
    /// Every version of a file or folder across a part's snapshots.
    History(history::HistoryArgs),
    /// Find files by name (glob) across snapshots.
    Find(find::FindArgs),
    /// List a snapshot's folder (or file) without mounting the store.
    Ls(ls::LsArgs),
    /// What changed between two snapshots: added, removed, changed entries with sizes.
    Diff(diff::DiffArgs),
}

/// Parses arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    let result = match &cli.command {
        Command::Init(a) => init::run(&cli, a),
        Command::Backup(a) => backup::run(&cli, a),
        Command::Snapshots(a) => snapshots::run(&cli, a),
        Command::Restore(a) => restore::run(&cli, a),
        Command::Prune(a) => prune::run(&cli, a),
        Command::Mount(a) => mount::run(&cli, a),

        Command::Forget(a) => forget::run(&cli, a),
        Command::Stats(a) => stats::run(&cli, a),

        Command::Check(a) => check::run(&cli, a),
        Command::Repair(a) => repair::run(&cli, a),

        Command::Demo(a) => demo::run(a),
        Command::Generate(c) => generate::run(c),
        Command::Docs(a) => docs::run(a),

        Command::RestoreUser(a) => restore_user::run(&cli, a),
        Command::Entities(a) => entities::run(&cli, a),
        Command::RestoreServer(a) => restore_server::run(&cli, a),
        Command::Console(a) => console::run(&cli, a),
        Command::History(a) => history::run(&cli, a),
        Command::Find(a) => find::run(&cli, a),
        Command::Ls(a) => ls::run(&cli, a),
        Command::Diff(a) => diff::run(&cli, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            logging::report(log::Level::Error, &errors::describe(&e));
            errors::exit_code(&e)
        }
    }
}
