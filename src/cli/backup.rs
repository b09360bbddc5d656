//! `bmbackup backup`: one snapshot per configured part, with progress on a terminal.

use super::{format, Cli, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL};
use crate::backup::{backup_part, BackupOptions, PartSpec, Progress};
use crate::model::SnapshotStatus;
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// This server's address as shown in the store [default: the primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// A part to back up, NAME=PATH (e.g. mail/imap=/var/spool/cyrus/data); repeatable.
    /// Overrides the parts of the config file.
    #[arg(long = "part", value_name = "NAME=PATH")]
    pub parts: Vec<String>,
    /// zstd level (1-19).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compression_level: Option<i32>,
    /// Threads reading and compressing files [default: number of CPUs].
    #[arg(long)]
    pub threads: Option<usize>,
}

fn parse_part(s: &str) -> anyhow::Result<PartSpec> {
    let (name, path) = s.split_once('=').ok_or_else(|| {
        anyhow::anyhow!("--part {s:?}: expected NAME=PATH, e.g. mail/imap=/var/spool/cyrus/data")
    })?;
    let name = name.trim_matches('/');
    if name.is_empty()
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || name == "last"
    {
        anyhow::bail!("--part {s:?}: invalid part name {name:?}");
    }
    Ok(PartSpec {
        name: name.to_string(),
        path: PathBuf::from(path),
    })
}

pub fn run(cli: &Cli, a: &BackupArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    let parts: Vec<PartSpec> = if a.parts.is_empty() {
        common
            .config
            .parts
            .iter()
            .filter(|(_, p)| p.enabled)
            .map(|(name, p)| PartSpec {
                name: name.trim_matches('/').to_string(),
                path: p.path.clone(),
            })
            .collect()
    } else {
        a.parts
            .iter()
            .map(|s| parse_part(s))
            .collect::<Result<_, _>>()?
    };
    if parts.is_empty() {
        anyhow::bail!("nothing to back up: give --part NAME=PATH or [parts] in the config file");
    }
    let host = a
        .host
        .clone()
        .or_else(|| common.config.host.clone())
        .unwrap_or_else(|| crate::hostaddr::primary_ipv4().to_string());
    let opts = BackupOptions {
        host,
        compression_level: a
            .compression_level
            .or(common.config.compression_level)
            .unwrap_or(3),
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
    };
    let mut code = EXIT_OK;
    for part in &parts {
        let progress = Progress::default();
        let started = Instant::now();
        let result = with_progress(&progress, &part.name, || {
            backup_part(&repo, part, &opts, &progress)
        });
        match result {
            Ok(r) => {
                let m = &r.manifest;
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{}/{}: snapshot {} {}: {} files, {}, read {}, added {} in {:.1}s ({:.0} MB/s read)",
                    m.host,
                    m.part,
                    r.id.short(),
                    m.status.as_str(),
                    m.files,
                    format::size(m.bytes),
                    format::size(m.bytes_read),
                    format::size(m.bytes_added),
                    secs,
                    m.bytes_read as f64 / 1e6 / secs.max(1e-9)
                );
                if m.status == SnapshotStatus::Partial {
                    eprintln!(
                        "{}/{}: {} file(s) not backed up:",
                        m.host,
                        m.part,
                        m.problems.len()
                    );
                    for p in m.problems.iter().take(20) {
                        eprintln!("  {}: {}", p.path, p.error);
                    }
                    if code == EXIT_OK {
                        code = EXIT_PARTIAL;
                    }
                }
            }
            Err(e) => {
                eprintln!("bmbackup: error: part {}: {e}", part.name);
                code = EXIT_ERROR;
            }
        }
    }
    Ok(code)
}

/// Runs `f` while a thread redraws a progress line on stderr, when stderr is a terminal.
fn with_progress<T>(progress: &Progress, name: &str, f: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return f();
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let read = progress.bytes_read.load(Ordering::Relaxed);
                eprint!(
                    "\r\x1b[K{name}: {} files, {} read ({:.0} MB/s)",
                    progress.files.load(Ordering::Relaxed),
                    format::size(read),
                    read as f64 / 1e6 / start.elapsed().as_secs_f64().max(1e-9)
                );
            }
            eprint!("\r\x1b[K");
        });
        let r = f();
        done.store(true, Ordering::Relaxed);
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        assert_eq!(parse_part("mail/imap=/x").unwrap().name, "mail/imap");
        assert_eq!(parse_part("/bm/pgsql/=/x").unwrap().name, "bm/pgsql");
        assert!(parse_part("mail/imap").is_err());
        assert!(parse_part("a/../b=/x").is_err());
        assert!(parse_part("=/x").is_err());
    }
}
