//! `bmbackup restore-user USER --at WHEN [--what mail,archive,all] [--to DIR | --in-place]`.

use super::restore_shared::{host_or_default, PointInTime};
use super::Cli;
use crate::restore::user::{execute, plan, Destination, Item, Request, User, What};
use crate::timefmt;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RestoreUserArgs {
    /// The user, local@domain (e.g. jdoe@example.com).
    pub user: String,
    /// Host the user's data was backed up from [default: `host` of the config, else this
    /// machine's primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// What to restore: mail, archive, or all (a missing archive is then skipped).
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
    let user = User::parse(&a.user)?;
    let (what, lenient) = What::parse_list(&a.what)?;
    let host = host_or_default(a.host.as_deref(), &common);
    let dest = match (&a.to, a.in_place) {
        (Some(dir), _) => Destination::To(dir.clone()),
        (None, true) => Destination::InPlace,
        (None, false) => Destination::Beside,
    };
    let req = Request {
        user: &user,
        what: &what,
        lenient,
        host: &host,
        at: a.when.when()?,
        dest: &dest,
        overwrite: a.when.overwrite,
    };
    let plan = plan(&repo, &common.config.entities, &req)?;
    for s in &plan.skipped {
        eprintln!("skipped {s}");
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
        eprintln!(
            "restoring {user}'s {} ({}/{} of {} UTC, snapshot {}) into {}",
            item.what.name(),
            m.host,
            m.part,
            timefmt::display(m.started_ns),
            item.snapshot.id.short(),
            item.dest.display()
        );
    };
    let code = a.when.restore_each(
        &plan.items,
        |item| &item.dest,
        announce,
        |item, opts| execute(&repo, item, opts),
    )?;
    if dest == Destination::Beside && !dry_run && !plan.items.is_empty() {
        println!(
            "\nThe mail was restored as a new folder beside the user's live mail, not in place: \
             Cyrus' index files put back in place would rewind the mailbox's message UIDs, and \
             clients, which already saw those UIDs, would not show the restored mail. The \
             folder's cyrus.* files were left out so Cyrus builds fresh ones.\n\
             Next step, as the cyrus user, to make it visible as a subfolder:\n  \
             reconstruct -r -f user/{}@{}",
            user.local, user.domain
        );
    }
    Ok(code)
}
