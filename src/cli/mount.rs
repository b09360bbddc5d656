//! `bmbackup mount [STORE] [MOUNTPOINT]`: the read-only time-travel filesystem. The store, the
//! catalog's cache folder and the mount point come from the command line, else the config file
//! like every other command's.

use super::{Cli, EXIT_OK};
use crate::fuse::{mount_store, MountOptions};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct MountArgs {
    /// With two arguments, the store folder and the mount point (the form fstab and
    /// mount.bmbackup use); with one, the mount point, the store coming from --store,
    /// BMBACKUP_STORE or `store` in the config file; with none, `mountpoint` of the config file
    /// is the mount point.
    #[arg(value_names = ["STORE", "MOUNTPOINT"], num_args = 0..=2)]
    pub paths: Vec<PathBuf>,
    /// Stay in the foreground (systemd `Type=notify`, debugging); by default the command
    /// returns once the mount is ready and a daemon serves it.
    #[arg(long, short = 'f')]
    pub foreground: bool,
    /// Mount options, comma-separated: allow_other, cache_mib=N, threads=N, fsname=NAME,
    /// nonempty, xattr (always show extended attributes), noxattr (never; the default
    /// xattr=auto shows none when no snapshot records any); fstab-only options (_netdev,
    /// noauto, nofail, x-systemd.*) are accepted and ignored.
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
    let config = cli.load_config()?;
    let (store, mountpoint) = match a.paths.as_slice() {
        [store, mountpoint] => (store.clone(), mountpoint.clone()),
        rest => {
            let store = cli.store.clone().or_else(|| config.store.clone()).context(
                "no store given: bmbackup mount STORE MOUNTPOINT, --store, BMBACKUP_STORE or `store` in the config file",
            )?;
            let mountpoint = match rest {
                [mountpoint] => mountpoint.clone(),
                _ => {
                    let mp = config.mountpoint.clone().context(
                        "no mount point given: bmbackup mount MOUNTPOINT, or `mountpoint` in the config file",
                    )?;
                    // The configured place is ours to make (as the unit's mkdir used to);
                    // a path typed on the command line must exist, as for mount(8).
                    if !mp.exists() && std::fs::symlink_metadata(&mp).is_err() {
                        std::fs::create_dir_all(&mp).with_context(|| {
                            format!("cannot create the mount point {}", mp.display())
                        })?;
                    }
                    mp
                }
            };
            (store, mountpoint)
        }
    };
    let cache = cli.cache_dir.clone().or_else(|| config.cache_dir.clone());
    let opts = MountOptions {
        allow_other: false,
        cache_mib: a.cache_mib,
        threads: a.threads.max(1),
        options: a.options.clone(),
        source: None,
    };
    mount_store(&store, cache.as_deref(), &mountpoint, a.foreground, &opts)?;
    Ok(EXIT_OK)
}
