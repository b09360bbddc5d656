//! `bmbackup mount STORE MOUNTPOINT`: the read-only time-travel filesystem.

use super::{Cli, EXIT_OK};
use crate::fuse::{mount_store, MountOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct MountArgs {
    /// The store folder.
    pub store_dir: PathBuf,
    /// Where to show it (an existing, empty folder).
    pub mountpoint: PathBuf,
    /// Stay in the foreground (for systemd `Type=exec` and debugging); by default the command
    /// returns once the mount is ready and a daemon serves it.
    #[arg(long, short = 'f')]
    pub foreground: bool,
    /// Mount options, comma-separated: allow_other, cache_mib=N, threads=N, fsname=NAME;
    /// fstab-only options (_netdev, noauto, nofail, x-systemd.*) are accepted and ignored.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Memory for decompressed chunks, MiB.
    #[arg(long, default_value_t = 256)]
    pub cache_mib: usize,
    /// Threads serving the kernel's requests.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
}

pub fn run(cli: &Cli, a: &MountArgs) -> anyhow::Result<i32> {
    let opts = MountOptions {
        allow_other: false,
        cache_mib: a.cache_mib,
        threads: a.threads.max(1),
        options: a.options.clone(),
        source: None,
    };
    mount_store(
        &a.store_dir,
        cli.cache_dir.as_deref(),
        &a.mountpoint,
        a.foreground,
        &opts,
    )?;
    Ok(EXIT_OK)
}
