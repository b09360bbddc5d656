//! `bmbackup restore-user USER --at WHEN [--shared] [--what mail,archive,calendar,contacts,all]
//! [--collection NAME] [--to DIR | --in-place]`.

use super::restore_shared::{host_or_default, PointInTime};
use super::Cli;
use super::EXIT_OK;
use crate::cyrus::ImapdConf;
use crate::restore::dav::{DavError, DavKind};
use crate::restore::dav_user::{restore_dav, DavRequest};
use crate::restore::user::{execute, plan_resuming, Destination, Item, Request, User, What};
use crate::restore::user_journal::{self, Journal};
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
    /// What to restore: mail, archive, calendar, contacts, or all (a missing archive, or
    /// calendars and contacts without [entities.dav], are then skipped), comma-separated; or a
    /// kind declared in the config's [db_entities] (from a database dump).
    #[arg(long, default_value = "mail")]
    pub what: String,
    /// Calendars and contacts: only the collection of this name (e.g. Default).
    #[arg(long, value_name = "NAME")]
    pub collection: Option<String>,
    /// Calendars and contacts: into the original collection (adding the items missing since)
    /// instead of a new Restored-<date>-<name> collection.
    #[arg(long)]
    pub into_original: bool,
    /// With --into-original: put back the items changed since as they were.
    #[arg(long, requires = "into_original")]
    pub replace_changed: bool,
    /// With --into-original: delete the items created after the snapshot (kept otherwise).
    #[arg(long, requires = "into_original")]
    pub delete_newer: bool,
    /// Calendars and contacts, Cyrus stopped: replace the collections' folders by the
    /// snapshot's (never merged), then reconstruct and dav_reconstruct. Sync-tokens go back.
    #[arg(long, conflicts_with = "into_original")]
    pub files: bool,
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
    let mail_what: Vec<What> = what.iter().copied().filter(|w| !w.is_dav()).collect();
    let dav_kinds: Vec<DavKind> = what
        .iter()
        .filter_map(|w| match w {
            What::Calendar => Some(DavKind::Calendar),
            What::Contacts => Some(DavKind::AddressBook),
            _ => None,
        })
        .collect();
    let mut code = EXIT_OK;
    if !mail_what.is_empty() {
        code = restore_mail(
            cli,
            a,
            &common,
            &repo,
            &user,
            &mail_what,
            lenient,
            &host,
            &dest,
            conf.as_ref(),
        )?;
    }
    if !dav_kinds.is_empty() {
        let c = restore_dav_kinds(
            a,
            &common,
            &repo,
            &user,
            &dav_kinds,
            lenient,
            &host,
            conf.as_ref(),
        )?;
        code = code.max(c);
    }
    Ok(code)
}

/// Calendars and contacts, through the server.
#[allow(clippy::too_many_arguments)]
fn restore_dav_kinds(
    a: &RestoreUserArgs,
    common: &super::common::Common,
    repo: &crate::repo::Repository,
    user: &User,
    kinds: &[DavKind],
    lenient: bool,
    host: &str,
    conf: Option<&ImapdConf>,
) -> anyhow::Result<i32> {
    let entities = &common.config.entities;
    if lenient && entities.dav.is_none() {
        eprintln!("skipped calendars and contacts: no [entities.dav] in the config");
        return Ok(EXIT_OK);
    }
    if a.files {
        return restore_dav_files(a, common, repo, user, kinds, host, conf);
    }
    let req = DavRequest {
        user,
        kinds,
        collection: a.collection.as_deref(),
        host,
        at: a.when.when()?,
        into_original: a.into_original,
        replace_changed: a.replace_changed,
        delete_newer: a.delete_newer,
        dry_run: a.when.dry_run,
        conf,
    };
    let t = std::time::Instant::now();
    let reports = match restore_dav(repo, entities, &req, &mut |l| eprintln!("{l}")) {
        Ok(r) => r,
        Err(e @ (DavError::NoCollections { .. } | DavError::NoMailboxList(_))) if lenient => {
            eprintln!("skipped calendars and contacts: {e}");
            return Ok(EXIT_OK);
        }
        Err(e) => return Err(e.into()),
    };
    let mut code = EXIT_OK;
    for r in &reports {
        let verb = if a.when.dry_run { " would be" } else { "" };
        let mut parts = vec![
            format!("{}{verb} added", r.added),
            format!("{}{verb} replaced", r.replaced),
            format!("{} already there", r.unchanged),
        ];
        if r.changed_kept > 0 {
            parts.push(format!(
                "{} changed since and kept (--replace-changed puts them back)",
                r.changed_kept
            ));
        }
        if r.newer_kept > 0 {
            parts.push(format!(
                "{} created after the snapshot and kept (--delete-newer removes them)",
                r.newer_kept
            ));
        }
        if r.deleted > 0 {
            parts.push(format!(
                "{} created after the snapshot{verb} deleted",
                r.deleted
            ));
        }
        crate::say!(
            "{}{} {}: {}",
            r.kind.map(DavKind::name).unwrap_or(""),
            if r.created_collection { " (new)" } else { "" },
            r.target,
            parts.join(", ")
        );
        if !r.elsewhere.is_empty() {
            crate::say!(
                "  {} event(s) not copied: Cyrus keeps one event per UID and user, and these are still in another calendar: {}",
                r.elsewhere.len(),
                r.elsewhere.join(", ")
            );
        }
        for f in &r.failed {
            eprintln!("error: {f}");
            code = super::EXIT_PARTIAL;
        }
    }
    let changed = reports
        .iter()
        .any(|r| r.added + r.replaced + r.deleted > 0 || r.created_collection);
    crate::say!(
        "calendars and contacts: {} collection(s) in {:.1} s; {}",
        reports.len(),
        t.elapsed().as_secs_f64(),
        match (a.when.dry_run, changed) {
            (true, _) => "nothing written (--dry-run)",
            (false, true) => "written through the server, which moved the sync-tokens forward: clients fetch the change",
            (false, false) => "nothing to change",
        }
    );
    Ok(code)
}

/// Calendars and contacts as files, for a stopped server (`--files`).
fn restore_dav_files(
    a: &RestoreUserArgs,
    common: &super::common::Common,
    repo: &crate::repo::Repository,
    user: &User,
    kinds: &[DavKind],
    host: &str,
    conf: Option<&ImapdConf>,
) -> anyhow::Result<i32> {
    let entities = &common.config.entities;
    let plan = crate::restore::dav_files::plan_files(
        repo,
        entities,
        host,
        &a.when.when()?,
        user,
        kinds,
        a.collection.as_deref(),
        conf,
    )?;
    let dry_run = a.when.dry_run;
    if !dry_run {
        let removed: Vec<String> = plan
            .items
            .iter()
            .map(|i| i.dest.display().to_string())
            .collect();
        super::confirm::destructive("restore-user --files", &removed, a.yes)?;
    }
    let mut code = a.when.restore_each(
        &plan.items,
        |item| &item.dest,
        |item| {
            eprintln!(
                "replacing {user}'s {} folder {} by its copy of {} UTC (Cyrus must be stopped)",
                item.what.name(),
                item.dest.display(),
                timefmt::display(item.snapshot.manifest.started_ns)
            )
        },
        |item, opts| execute(repo, item, opts).map(|d| d.report),
    )?;
    if dry_run {
        return Ok(code);
    }
    if entities.run_next_steps {
        crate::say!("\nRunning the Cyrus commands that rebuild them ([entities] run_next_steps):");
        let runs = crate::restore::next_steps::run(&plan.commands);
        for r in &runs {
            crate::say!("$ {}\n{}", r.command, r.output.trim_end());
        }
        if !runs.iter().all(|r| r.ok) {
            crate::say!("A command failed; fix its cause, then run it and the ones after it:");
            for c in plan.commands.iter().skip(runs.len() - 1) {
                crate::say!("  {c}");
            }
            code = code.max(super::EXIT_PARTIAL);
        }
    } else {
        crate::say!("\nNext step, as root, before starting Cyrus again:");
        for c in &plan.commands {
            crate::say!("  {c}");
        }
    }
    eprintln!("warning: {}", plan.warning);
    Ok(code)
}

/// Mail and archive: folders restored from the spool snapshot.
#[allow(clippy::too_many_arguments)]
fn restore_mail(
    cli: &Cli,
    a: &RestoreUserArgs,
    common: &super::common::Common,
    repo: &crate::repo::Repository,
    user: &User,
    what: &[What],
    lenient: bool,
    host: &str,
    dest: &Destination,
    conf: Option<&ImapdConf>,
) -> anyhow::Result<i32> {
    let entities = &common.config.entities;
    let req = Request {
        user,
        what,
        lenient,
        host,
        at: a.when.when()?,
        dest,
        overwrite: a.when.overwrite,
        conf,
        label_number: None,
    };
    let work = cli
        .cache_dir
        .clone()
        .or_else(|| common.config.cache_dir.clone())
        .unwrap_or_else(crate::catalog::default_cache_dir)
        .join("restore-user");
    // A run killed before the end left its journal: this one continues it.
    let journal = user_journal::load(&work, user);
    let plan = plan_resuming(repo, entities, &req, journal.as_ref())?;
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
        // Named with what goes, counted: mail received since the date and folders made since
        // (an earlier Restored- folder among them) are not in the snapshot.
        let mut removed = Vec::new();
        for i in plan.items.iter().filter(|i| i.remove_first) {
            let loss = crate::restore::inplace_loss::what_goes(
                repo,
                &i.snapshot,
                i.path.as_bytes(),
                &i.dest,
            )?;
            removed.push(format!("{} (lost: {})", i.dest.display(), loss.describe()));
        }
        if a.yes {
            for r in &removed {
                crate::tell!("removing {r}");
            }
        }
        super::confirm::destructive("restore-user --in-place", &removed, a.yes)?;
    }
    if !dry_run && !plan.items.is_empty() {
        user_journal::save(&work, user, &Journal::of(&plan))
            .map_err(|e| anyhow::anyhow!("{}: {e}", user_journal::path(&work, user).display()))?;
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
            let done = execute(repo, item, opts)?;
            new_folders.borrow_mut().extend(done.new_folder);
            Ok::<_, crate::restore::user::UserRestoreError>(done.report)
        },
    )?;
    if dry_run || plan.items.is_empty() {
        return Ok(code);
    }
    if code == EXIT_OK {
        user_journal::remove(&work, user);
    }
    let done = new_folders.borrow();
    let ok = super::restore_user_next::print(
        dest,
        &plan,
        &done,
        conf,
        &work,
        user,
        entities.run_next_steps,
    )?;
    Ok(if ok {
        code
    } else {
        code.max(super::EXIT_PARTIAL)
    })
}
