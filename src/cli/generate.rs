//! `bmbackup generate …` (hidden): deterministic test data for the demo, tests and `bench/run`.

use super::EXIT_OK;
use crate::gen::{self, SpoolSpec};
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum GenerateCmd {
    /// A Cyrus-shaped mail spool.
    Spool {
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = Preset::Demo)]
        preset: Preset,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// One day of mail on an existing spool: new, deleted and moved messages.
    Day {
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        day: u32,
    },
    /// A database dump file.
    Dbdump {
        file: PathBuf,
        #[arg(long)]
        size: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Rewrite a fraction of a dump in place, as a day of database changes does.
    MutateDbdump {
        file: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        day: u32,
        #[arg(long, default_value_t = 0.02)]
        fraction: f64,
    },
    /// A tree with every file type (needs root for devices and owners).
    EveryType { dir: PathBuf },
    /// Many empty or tiny files, with one big folder (`bench/scale`).
    Many {
        dir: PathBuf,
        #[arg(long)]
        files: u64,
        /// Files of the one big folder (`DIR/big`), counted in --files.
        #[arg(long, default_value_t = 0)]
        big_folder: u64,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Preset {
    Demo,
    Quick,
    Full,
}

pub fn run(cmd: &GenerateCmd) -> anyhow::Result<i32> {
    match cmd {
        GenerateCmd::Spool { dir, preset, seed } => {
            let mut spec = match preset {
                Preset::Demo => SpoolSpec::demo(),
                Preset::Quick => SpoolSpec::quick(),
                Preset::Full => SpoolSpec::full(),
            };
            spec.seed = *seed;
            let stats = gen::generate_spool(dir, &spec)?;
            println!(
                "{}: {} users, {} files, {} bytes",
                dir.display(),
                stats.users,
                stats.files,
                stats.bytes
            );
        }
        GenerateCmd::Day { dir, seed, day } => {
            let s = gen::simulate_day(dir, *seed, *day)?;
            println!(
                "day {day}: {} new, {} deleted, {} moved, {} folders touched ({} with flag changes)",
                s.new_messages, s.deleted, s.moved, s.touched_folders, s.flagged_folders
            );
        }
        GenerateCmd::Dbdump { file, size, seed } => gen::generate_db_dump(file, *seed, *size)?,
        GenerateCmd::MutateDbdump {
            file,
            seed,
            day,
            fraction,
        } => {
            let n = gen::mutate_db_dump(file, *seed, *day, *fraction)?;
            println!("rewrote {n} bytes");
        }
        GenerateCmd::EveryType { dir } => gen::generate_tree_with_every_file_type(dir)?,
        GenerateCmd::Many {
            dir,
            files,
            big_folder,
        } => {
            let folders = gen::generate_many(dir, *files, *big_folder)?;
            println!("{}: {files} files in {folders} folders", dir.display());
        }
    }
    Ok(EXIT_OK)
}
