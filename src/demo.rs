//! The demo scenario behind `bmbackup demo`: a folder of its own (replaced on a rerun, never a
//! folder the demo did not make), a generated mail spool and database dump, a new store, and two
//! backups through the real backup run with a generated day of mail in between. Front ends print
//! what it tells them and mount the store.

use crate::backup::run::{run_server, PlannedPart, RunError, RunObserver, RunPlan, RunStatus};
use crate::backup::{BackupOptions, PartSpec};
use crate::gen::{self, DayStats, SpoolSpec, SpoolStats};
use crate::repo::Repository;
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Marks a folder as made by the demo, so a rerun may safely replace it.
const MARKER: &str = ".bmbackup-demo";
/// The server address the demo's snapshots are filed under.
pub const HOST: &str = "10.0.0.5";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0} exists and was not made by `bmbackup demo`; give another folder")]
    NotOurs(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Gen(#[from] crate::gen::GenError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("backup {round} failed; see the errors above")]
    Failed { round: u32 },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DemoError {
    let path = path.display().to_string();
    move |source| DemoError::Io { what, path, source }
}

/// The demo's folders, all under one.
pub struct DemoPaths {
    pub spool: PathBuf,
    pub pgsql: PathBuf,
    pub store: PathBuf,
    pub cache: PathBuf,
    pub mnt: PathBuf,
}

/// What a generated day changed, for the front end to tell before the second backup.
pub struct DayChanges {
    pub mail: DayStats,
    pub dump_bytes_rewritten: u64,
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

/// Empties `dir` for a new demo (unmounting a previous demo's mount) and marks it as ours.
pub fn prepare(dir: &Path) -> Result<DemoPaths, DemoError> {
    if dir.exists() {
        let not_empty = std::fs::read_dir(dir)
            .map_err(io("cannot read", dir))?
            .next()
            .is_some();
        if !dir.join(MARKER).exists() && not_empty {
            return Err(DemoError::NotOurs(dir.display().to_string()));
        }
        let mnt = dir.join("mnt");
        if is_mounted(&mnt) || std::fs::metadata(&mnt).is_err() && mnt.exists() {
            let _ = Command::new("fusermount3").arg("-uz").arg(&mnt).status();
        }
        std::fs::remove_dir_all(dir).map_err(io("cannot clear", dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    std::fs::write(dir.join(MARKER), b"made by bmbackup demo\n")
        .map_err(io("cannot write in", dir))?;
    let dir = std::fs::canonicalize(dir).map_err(io("cannot resolve", dir))?;
    Ok(DemoPaths {
        spool: dir.join("spool"),
        pgsql: dir.join("pgsql"),
        store: dir.join("store"),
        cache: dir.join("cache"),
        mnt: dir.join("mnt"),
    })
}

/// Generates the spool and the dump, and creates the store (32 KiB chunks).
pub fn generate(p: &DemoPaths) -> Result<SpoolStats, DemoError> {
    let stats = gen::generate_spool(&p.spool, &SpoolSpec::demo())?;
    std::fs::create_dir_all(&p.pgsql).map_err(io("cannot create", &p.pgsql))?;
    gen::generate_db_dump(&p.pgsql.join("bluemind.dump"), 1, 8 << 20)?;
    Store::init(&p.store, crate::chunker::ChunkParams::DEFAULT)?;
    Ok(stats)
}

/// Backs up the spool and the dump twice, with a generated day of mail (told through `day`)
/// in between.
pub fn back_up_twice(
    p: &DemoPaths,
    observer: &dyn RunObserver,
    mut round_starts: impl FnMut(u32, Option<&DayChanges>),
) -> Result<(), DemoError> {
    let repo = Repository::open(&p.store, Some(&p.cache))?;
    let part = |name: &str, path: &Path| PlannedPart {
        spec: PartSpec {
            name: name.into(),
            path: path.to_path_buf(),
            compression_level: None,
        },
        pre: None,
        post: None,
    };
    let plan = RunPlan {
        parts: vec![part("mail/imap", &p.spool), part("bm/pgsql", &p.pgsql)],
        options: BackupOptions {
            host: HOST.into(),
            compression_level: crate::backup::DEFAULT_COMPRESSION_LEVEL,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            started_at_ns: None,
            one_file_system: false,
            lock_wait: Duration::ZERO,
        },
        store: p.store.clone(),
        lock_wait: Duration::ZERO,
        retention: None,
        // The demo never runs the vendor's post-backup script of the machine it runs on.
        post_backup_hook: Some(String::new()),
        metrics_dir: None,
        background: false,
    };
    for round in 1..=2 {
        if round == 2 {
            let day = gen::simulate_day(&p.spool, 1, 1)?;
            let rewritten = gen::mutate_db_dump(&p.pgsql.join("bluemind.dump"), 1, 1, 0.02)?;
            round_starts(
                round,
                Some(&DayChanges {
                    mail: day,
                    dump_bytes_rewritten: rewritten,
                }),
            );
            // Snapshot folders are named to the second.
            std::thread::sleep(Duration::from_millis(1100));
        } else {
            round_starts(round, None);
        }
        if run_server(&repo, &plan, observer)? == RunStatus::Failed {
            return Err(DemoError::Failed { round });
        }
    }
    Ok(())
}

/// Bytes of the files under `p`.
pub fn dir_size(p: &Path) -> u64 {
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
