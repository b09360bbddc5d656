//! Log lines and how much is said: `-v` (info: each file backup reads, as borg's `--list`),
//! `-vv` (debug), `-q` (errors only), RUST_LOG overriding both. Under systemd (stderr not a
//! terminal and JOURNAL_STREAM set) every line starts with its syslog priority (`<3>` error,
//! `<4>` warning, `<6>` info, `<7>` debug), which journald strips and records, so
//! `journalctl -p warning` shows the problems of a run.

use log::Level;
use std::io::{IsTerminal, Write};

/// The log target of backup's file list (`A path` added, `M path` changed), printed bare.
pub const LIST_TARGET: &str = "bmbackup::list";

/// True when stderr is the journal's stream: systemd puts its `device:inode` in JOURNAL_STREAM,
/// and a child whose stderr was redirected elsewhere inherits the variable, so it is compared.
fn journal() -> bool {
    if std::io::stderr().is_terminal() {
        return false;
    }
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    // SAFETY: fstat on fd 2 into a zeroed stat buffer we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

/// The `<N>` prefix of a line of `level` when writing to the journal, else nothing.
pub fn priority(level: Level) -> &'static str {
    if !journal() {
        return "";
    }
    match level {
        Level::Error => "<3>",
        Level::Warn => "<4>",
        Level::Info => "<6>",
        Level::Debug | Level::Trace => "<7>",
    }
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// Sets up logging for `-v` given `verbose` times, or `-q`.
pub fn init(verbose: u8, quiet: bool) {
    super::output::set_quiet(quiet);
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(default);
    // fuser warns about an unmount the admin already did with fusermount3 -u.
    builder.filter_module("fuser::session", log::LevelFilter::Error);
    // The console's audit lines (who started which backup or restore) are always kept.
    if !quiet {
        builder.filter_module(crate::console::LOG_TARGET, log::LevelFilter::Info);
    }
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    // The HTTP client's debug lines show requests and their headers; a store on S3 signs in
    // the Authorization header, which whoever reads it could replay (same request, same body)
    // for a few minutes. Never below warn.
    builder.filter_module("ureq", log::LevelFilter::Warn);
    builder.format(|buf, record| {
        let prefix = priority(record.level());
        if record.target() == LIST_TARGET {
            writeln!(buf, "{prefix}{}", record.args())
        } else {
            writeln!(
                buf,
                "{prefix}bmbackup: {}: {}",
                level_word(record.level()),
                record.args()
            )
        }
    });
    let _ = builder.try_init();
}

/// Prints `bmbackup: error: MESSAGE` (or warning) on stderr, with its priority in the journal.
pub fn report(level: Level, message: &str) {
    crate::tell!(
        "{}bmbackup: {}: {message}",
        priority(level),
        level_word(level)
    );
}
