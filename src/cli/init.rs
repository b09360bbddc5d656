//! `bmbackup init [STORE] [--chunk-avg SIZE]`: creates a new, empty store (where the other
//! commands look for it when STORE is not given).

use super::{Cli, EXIT_OK};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Folder to create the store in (must be new or empty), or `s3://BUCKET/PREFIX` (an
    /// unused prefix; endpoint and credentials from `[s3]` in the config file or `AWS_*`)
    /// [default: --store, BMBACKUP_STORE, else `store` of the config file].
    pub store_dir: Option<PathBuf>,
    /// Average chunk size (power of two, 4K to 4M; min is a quarter, max four times it).
    /// Small chunks keep daily growth low when big files change in scattered places
    /// (database dumps) or grow by appends (Cyrus cache files).
    #[arg(long, default_value = "32K", value_parser = parse_size)]
    pub chunk_avg: u32,
}

pub fn run(cli: &Cli, a: &InitArgs) -> anyhow::Result<i32> {
    let config = cli.load_config()?;
    let dir = a
        .store_dir
        .clone()
        .or_else(|| cli.store.clone())
        .or(config.store)
        .ok_or_else(|| {
            super::UsageError(
                "no store given: bmbackup init STORE, --store, BMBACKUP_STORE or `store` in the config file".into(),
            )
        })?;
    init(&dir, a.chunk_avg)
}

/// `64K`, `1M` or a number of bytes.
fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1u64 << 20),
        _ => (t, 1),
    };
    let v: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 64K or 1M"))?;
    u32::try_from(v * mult).map_err(|_| format!("{s:?} is too large"))
}

fn init(dir: &std::path::Path, chunk_avg: u32) -> anyhow::Result<i32> {
    let chunking =
        crate::chunker::ChunkParams::from_avg(chunk_avg).map_err(|e| anyhow::anyhow!(e))?;
    let store = crate::store::Store::init(dir, chunking)?;
    println!(
        "created store {} (format {}.{}, id {}, chunks {}–{} KiB, {} KiB on average)",
        dir.display(),
        store.info.format_major,
        store.info.format_minor,
        store.info.store_id,
        chunking.min >> 10,
        chunking.max >> 10,
        chunking.avg >> 10
    );
    Ok(EXIT_OK)
}
