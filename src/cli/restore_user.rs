//! `bmbackup restore-user USER --at WHEN [--shared] [--what mail,archive,all] [--to DIR | --in-place]`.

use super::restore_shared::{host_or_default, PointInTime};
use super::Cli;
use crate::cyrus::ImapdConf;
use crate::restore::user::{execute, plan, Destination, Item, Request, User, What};
use crate::timefmt;
use clap::Args;
use std::cell::RefCell;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RestoreUserArgs {
    /// The user, local@domain (e.g. jdoe@example.com; local alone without virtual domains), or
    /// with --shared a shared mailbox NAME@domain.
    pub user: String,
    /// USER is a shared mailbox (NAME@domain; NAME may have /-separated levels).
    #[arg(long)]
    pub shared: bool,
    /// Host the user's data was backed up from [default: `host` of the config, else this
    /// machine's primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// What to restore: mail, archive, or all (a missing archive is then skipped), or a kind
    /// declared in the config's [db_entities] (from a database dump).
    #[arg(long, default_value = "mail")]
    pub what: String,
    /// Restore into DIR/<local>@<domain>/<part>/ instead of beside the live mailbox.
    #[arg(long, value_name = "DIR", conflicts_with = "in_place")]
    pub to: Option<PathBuf>,
    /// Replace the user's live folders with the snapshot's (removed first, never merged). Asks
    /// for confirmation on a terminal; elsewhere needs --yes.
    #[arg(long)]
    pub in_place: bool,
    /// Do not ask before --in-place removes the live folders.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub when: PointInTime,
}

pub fn run(cli: &Cli, a: &RestoreUserArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    // A kind declared over a database part ([db_entities.NAME]) has its own engine.
    if let Some(kind) = common.config.db_entities.get(&a.what) {
        return super::restore_db_entity::run(&common, &repo, a, kind);
    }
    let user = if a.shared {
        User::parse_shared(&a.user)?
    } else {
        User::parse(&a.user)?
    };
    let (what, lenient) = What::parse_list(&a.what)?;
    let host = host_or_default(a.host.as_deref(), &common);
    let dest = match (&a.to, a.in_place) {
        (Some(dir), _) => Destination::To(dir.clone()),
        (None, true) => Destination::InPlace,
        (None, false) => Destination::Beside,
    };
    let entities = &common.config.entities;
    // The live server's settings (partitions, separator, hashing), when it runs here.
    let conf = match ImapdConf::read(&entities.cyrus_config) {
        Ok(c) => Some(c),
        Err(e) => {
            log::info!("{e}");
            None
        }
    };
    let req = Request {
        user: &user,
        what: &what,
        lenient,
        host: &host,
        at: a.when.when()?,
        dest: &dest,
        overwrite: a.when.overwrite,
        conf: conf.as_ref(),
    };
    let plan = plan(&repo, entities, &req)?;
    for s in &plan.skipped {
        eprintln!("skipped {s}");
    }
    if let Some(found) = &plan.found {
        crate::tell!("{user}'s mailboxes found by {found}");
    }
    for n in &plan.notes {
        crate::tell!("note: {n}");
    }
    let dry_run = a.when.dry_run;
    if !dry_run {
        let removed: Vec<String> = plan
            .items
            .iter()
            .filter(|i| i.remove_first)
            .map(|i| i.dest.display().to_string())
            .collect();
        super::confirm::destructive("restore-user --in-place", &removed, a.yes)?;
    }
    let announce = |item: &Item| {
        let m = &item.snapshot.manifest;
        if item.remove_first {
            eprintln!(
                "\n*** IN PLACE: {} {} and replaced by its copy of {} UTC. Mail received since then is gone from it, and IMAP clients may need to resync. ***\n",
                item.dest.display(),
                if dry_run { "WOULD BE REMOVED" } else { "IS REMOVED" },
                timefmt::display(m.started_ns)
            );
        }
        let folder = match &item.new_folder {
            Some(nf) => format!(" folder {} as {}", nf.src.name.legacy(), nf.name.legacy()),
            None => String::new(),
        };
        eprintln!(
            "restoring {user}'s {}{folder} ({}/{} of {} UTC, snapshot {}) into {}",
            item.what.name(),
            m.host,
            m.part,
            timefmt::display(m.started_ns),
            item.snapshot.id.short(),
            item.dest.display()
        );
    };
    let new_folders = RefCell::new(Vec::new());
    let code = a.when.restore_each(
        &plan.items,
        |item| &item.dest,
        announce,
        |item, opts| {
            let done = execute(&repo, item, opts)?;
            new_folders.borrow_mut().extend(done.new_folder);
            Ok::<_, crate::restore::user::UserRestoreError>(done.report)
        },
    )?;
    if dry_run || plan.items.is_empty() {
        return Ok(code);
    }
    let work = cli
        .cache_dir
        .clone()
        .or_else(|| common.config.cache_dir.clone())
        .unwrap_or_else(crate::catalog::default_cache_dir)
        .join("restore-user");
    let done = new_folders.borrow();
    super::restore_user_next::print(&dest, &plan, &done, conf.as_ref(), &work, &user)?;
    Ok(code)
}
