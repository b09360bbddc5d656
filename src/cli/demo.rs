//! `bmbackup demo [DIR]`: the README's first command. Generates a small mail spool and database
//! dump, backs them up twice with a day of mail in between, mounts the store and prints the tree.

use super::{format, EXIT_OK};
use crate::backup::{backup_part, BackupOptions, PartSpec, Progress};
use crate::gen::{self, SpoolSpec};
use crate::repo::Repository;
use crate::store::lock::{LockKind, StoreLock};
use crate::store::Store;
use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Marks a folder as made by the demo, so a rerun may safely replace it.
const MARKER: &str = ".bmbackup-demo";
const HOST: &str = "10.0.0.5";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the demo's spool, store and mount point.
    #[arg(default_value = "demo")]
    pub dir: PathBuf,
    /// Do not mount the store at the end.
    #[arg(long)]
    pub no_mount: bool,
}

fn is_mounted(path: &Path) -> bool {
    let Ok(canon) = std::fs::canonicalize(path) else {
        // A dead FUSE daemon leaves a mount point that cannot even be stat'ed.
        return std::fs::symlink_metadata(path).is_err() && path.exists();
    };
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(1) == Some(&*canon.to_string_lossy()))
        })
        .unwrap_or(false)
}

fn unmount(path: &Path) {
    let _ = Command::new("fusermount3").arg("-uz").arg(path).status();
}

fn prepare(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if !dir.join(MARKER).exists() && std::fs::read_dir(dir)?.next().is_some() {
            bail!(
                "{} exists and was not made by `bmbackup demo`; give another folder",
                dir.display()
            );
        }
        let mnt = dir.join("mnt");
        if is_mounted(&mnt) || std::fs::metadata(&mnt).is_err() && mnt.exists() {
            unmount(&mnt);
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(MARKER), b"made by bmbackup demo\n")?;
    Ok(())
}

pub fn run(a: &DemoArgs) -> anyhow::Result<i32> {
    let dir = &a.dir;
    prepare(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    let spool = dir.join("spool");
    let pgsql = dir.join("pgsql");
    let store_dir = dir.join("store");
    let cache = dir.join("cache");
    let mnt = dir.join("mnt");

    let stats = gen::generate_spool(&spool, &SpoolSpec::demo())?;
    std::fs::create_dir_all(&pgsql)?;
    gen::generate_db_dump(&pgsql.join("bluemind.dump"), 1, 8 << 20)?;
    println!(
        "generated a mail spool of {} users ({} files, {}) in {} and a database dump in {}",
        stats.users,
        stats.files,
        format::size(stats.bytes),
        spool.display(),
        pgsql.display()
    );

    Store::init(
        &store_dir,
        crate::chunker::ChunkParams::from_avg(32 << 10).map_err(anyhow::Error::msg)?,
    )?;
    let repo = Repository::open(&store_dir, Some(&cache))?;
    let parts = [
        PartSpec {
            name: "mail/imap".into(),
            path: spool.clone(),
        },
        PartSpec {
            name: "bm/pgsql".into(),
            path: pgsql.clone(),
        },
    ];
    let opts = BackupOptions {
        host: HOST.into(),
        compression_level: 3,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        started_at_ns: None,
    };
    for round in 1..=2 {
        if round == 2 {
            let day = gen::simulate_day(&spool, 1, 1)?;
            let rewritten = gen::mutate_db_dump(&pgsql.join("bluemind.dump"), 1, 1, 0.02)?;
            println!(
                "a day of mail: {} new, {} deleted, {} moved messages; {} of the dump rewritten",
                day.new_messages,
                day.deleted,
                day.moved,
                format::size(rewritten)
            );
            // Snapshot folders are named to the second.
            std::thread::sleep(Duration::from_millis(1100));
        }
        let lock = StoreLock::acquire(
            repo.store.shared_backend(),
            LockKind::Shared,
            "demo backup",
            Duration::ZERO,
        )?;
        for part in &parts {
            let r = backup_part(&repo, part, &opts, &Progress::default(), &lock)?;
            let m = &r.manifest;
            println!(
                "backup {round}: {HOST}/{}: {} files, {}, read {}, added {} to the store",
                m.part,
                m.files,
                format::size(m.bytes),
                format::size(m.bytes_read),
                format::size(m.bytes_added)
            );
        }
    }
    println!(
        "store: {} for {} of source data over two snapshots per part",
        format::size(dir_size(&store_dir)),
        format::size(2 * (dir_size(&spool) + dir_size(&pgsql)))
    );
    if a.no_mount {
        return Ok(EXIT_OK);
    }
    std::fs::create_dir_all(&mnt)?;
    let exe = std::env::current_exe()?;
    let status = Command::new(exe)
        .arg("mount")
        .arg(&store_dir)
        .arg(&mnt)
        .env("BMBACKUP_CACHE", &cache)
        .status()?;
    if !status.success() {
        bail!("mounting the store at {} failed", mnt.display());
    }
    println!("\nmounted the store at {}:", mnt.display());
    print_tree(&mnt, 0, 5)?;
    println!(
        "\nBrowse it: ls -l {0}/{HOST}/mail/imap/last/\n\
         Restore by copying: cp -a {0}/{HOST}/mail/imap/last/<domain>/user/<name> /tmp/\n\
         Unmount: fusermount3 -u {0}",
        mnt.display()
    );
    Ok(EXIT_OK)
}

fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
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
