//! `mount_store STORE MOUNTPOINT [--foreground] [-o OPTS] [--cache-mib N]`: the mount command
//! as the CLI wires it, used by the real-mount tests until `bmbackup mount` exists.

use bmbackup::fuse::{mount_store, MountOptions};
use std::path::PathBuf;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let mut pos: Vec<PathBuf> = Vec::new();
    let mut foreground = false;
    let mut opts = MountOptions::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--foreground" | "-f" => foreground = true,
            "-o" => opts.options.extend(args.next()),
            "--cache-mib" => {
                opts.cache_mib = args.next().and_then(|n| n.parse().ok()).unwrap_or(256)
            }
            _ => pos.push(a.into()),
        }
    }
    let [store, mountpoint] = pos.as_slice() else {
        eprintln!("usage: mount_store STORE MOUNTPOINT [--foreground] [-o OPTS] [--cache-mib N]");
        std::process::exit(2);
    };
    let cache = std::env::var_os("BMBACKUP_CACHE").map(PathBuf::from);
    if let Err(e) = mount_store(store, cache.as_deref(), mountpoint, foreground, &opts) {
        eprintln!("bmbackup: error: {e}");
        std::process::exit(1);
    }
}
