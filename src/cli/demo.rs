//! `bmbackup demo [DIR]`: the README's first command. Generates a small mail spool and database
//! dump, backs them up twice with a day of mail in between ([`crate::demo`]), mounts the store
//! and prints the tree.

use super::{format, EXIT_OK};
use crate::backup::run::{RunEvent, RunObserver};
use crate::demo::{self, HOST};
use anyhow::bail;
use clap::Args;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the demo's spool, store and mount point.
    #[arg(default_value = "demo")]
    pub dir: PathBuf,
    /// Do not mount the store at the end.
    #[arg(long)]
    pub no_mount: bool,
}

/// Prints each part's backup as `backup ROUND: HOST/PART: …`, and errors.
struct Printer {
    round: Cell<u32>,
}

impl RunObserver for Printer {
    fn event(&self, event: RunEvent<'_>) {
        match event {
            RunEvent::PartDone { report, .. } => {
                let m = &report.manifest;
                println!(
                    "backup {}: {HOST}/{}: {}, {}, read {}, added {} to the store",
                    self.round.get(),
                    m.part,
                    super::errors::count(m.files, "file", "files"),
                    format::size(m.bytes),
                    format::size(m.bytes_read),
                    format::size(m.bytes_added)
                );
            }
            RunEvent::Error(e) => crate::tell!("bmbackup: error: {e}"),
            RunEvent::Warning(w) => crate::tell!("bmbackup: warning: {w}"),
            _ => {}
        }
    }
}

pub fn run(a: &DemoArgs) -> anyhow::Result<i32> {
    let paths = demo::prepare(&a.dir)?;
    let stats = demo::generate(&paths)?;
    println!(
        "generated a mail spool of {} users ({} files, {}) in {} and a database dump in {}",
        stats.users,
        stats.files,
        format::size(stats.bytes),
        paths.spool.display(),
        paths.pgsql.display()
    );
    let printer = Printer {
        round: Cell::new(0),
    };
    demo::back_up_twice(&paths, &printer, |round, day| {
        printer.round.set(round);
        if let Some(day) = day {
            println!(
                "a day of mail: {} new, {} deleted, {} moved messages; {} of the dump rewritten",
                day.mail.new_messages,
                day.mail.deleted,
                day.mail.moved,
                format::size(day.dump_bytes_rewritten)
            );
        }
    })?;
    println!(
        "store: {} for {} of source data over two snapshots per part",
        format::size(demo::dir_size(&paths.store)),
        format::size(2 * (demo::dir_size(&paths.spool) + demo::dir_size(&paths.pgsql)))
    );
    if a.no_mount {
        return Ok(EXIT_OK);
    }
    let mnt = &paths.mnt;
    std::fs::create_dir_all(mnt)?;
    let status = Command::new(std::env::current_exe()?)
        .arg("mount")
        .arg(&paths.store)
        .arg(mnt)
        .env("BMBACKUP_CACHE", &paths.cache)
        .status()?;
    if !status.success() {
        bail!("mounting the store at {} failed", mnt.display());
    }
    println!("\nmounted the store at {}:", mnt.display());
    print_tree(mnt, 0, 5)?;
    println!(
        "\nBrowse it: ls -l {0}/{HOST}/mail/imap/last/\n\
         Restore by copying: cp -a {0}/{HOST}/mail/imap/last/<domain>/user/<name> /tmp/\n\
         Unmount: fusermount3 -u {0}",
        mnt.display()
    );
    Ok(EXIT_OK)
}

/// Prints folders down to `max` levels, eliding long listings.
fn print_tree(p: &Path, depth: usize, max: usize) -> anyhow::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(p)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    let shown = if depth < 3 { names.len() } else { 3 };
    for name in names.iter().take(shown) {
        let child = p.join(name);
        let is_dir = std::fs::symlink_metadata(&child)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        println!(
            "{}{}{}",
            "  ".repeat(depth + 1),
            name.to_string_lossy(),
            if is_dir { "/" } else { "" }
        );
        if is_dir && depth + 1 < max {
            print_tree(&child, depth + 1, max)?;
        }
    }
    if names.len() > shown {
        println!("{}… {} more", "  ".repeat(depth + 1), names.len() - shown);
    }
    Ok(())
}
