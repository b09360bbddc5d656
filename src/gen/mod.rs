//! Deterministic generated data for the demo, tests and benchmarks: a Cyrus-shaped mail spool and
//! its daily churn, a database dump mutated in place, and a tree holding every kind of file.
//!
//! Everything is a pure function of a seed: the same seed gives the same bytes *and* the same
//! metadata (modes, mtimes with nanoseconds, names), so a generated tree can be compared exactly
//! with a restored one, and a benchmark measures the same data on every machine. No wall-clock
//! time, no `HashMap` iteration order and no floating-point `exp`/`ln` ever reach the output.
//!
//! # Spool layout (one layout, chosen to match a BlueMind `data/` partition)
//!
//! ```text
//! <root>/<domain>/user/<local>/                 the user's INBOX folder (Cyrus keeps INBOX here)
//! <root>/<domain>/user/<local>/<uid>.           one file per INBOX message (number and a dot)
//! <root>/<domain>/user/<local>/cyrus.header     folder header (magic text, unique id, ACL)
//! <root>/<domain>/user/<local>/cyrus.index      binary: a 64-byte header + a 64-byte record per message
//! <root>/<domain>/user/<local>/cyrus.cache      binary: appended per message (cached headers)
//! <root>/<domain>/user/<local>/Sent/…           same shape for the `Sent` folder
//! <root>/<domain>/user/<local>/Archive/…        same shape for the `Archive` folder
//! ```
//!
//! so one user is restored with the path template `{domain}/user/{local}`. A message delivered
//! to several users is written as separate identical files (not hard-linked, as Cyrus'
//! single-instance store would do): that duplication is what the backup's dedup must catch.
//! Directories are 0700 and files 0600, owned by the generating user (no chown). The `cyrus.*` files
//! imitate Cyrus' roles and update patterns (index rewritten, cache appended) but not its exact
//! binary format; see `cyrus.rs`.
//!
//! # Presets (measured in release on a shared 2-core machine)
//!
//! | preset  | users | files  | bytes    | distinct message bytes | generation |
//! |---------|-------|--------|----------|------------------------|------------|
//! | `demo`  | 10    | 540    | 3.8 MiB  | 3.0 MiB                | ~0.3–0.5 s |
//! | `quick` | 60    | 5,041  | 76 MiB   | 55 MiB                 | ~3.5 s     |
//! | `full`  | 300   | 98,700 | 1.47 GiB | 1.04 GiB               | ~15 s      |
//!
//! A simulated day on `full` takes ~0.2 s. The demo spool is pinned by a test (counts and a
//! fingerprint of every name, mode, size, mtime and byte).
//!
//! # Database dump
//! [`generate_db_dump`] / [`mutate_db_dump`] stand in for `bm/pgsql`: a text dump rewritten ~2%
//! in place per day at scattered offsets; where it lives is the caller's choice.
//!
//! # Time
//! All dates count from [`BASE_EPOCH`] (2026-01-01T00:00:00Z): the initial spool covers the
//! `days` before it, and [`simulate_day`] day `n` happens on `BASE_EPOCH + n` days.

mod cyrus;
mod day;
mod dbdump;
mod every_type;
mod folder;
mod mail;
mod many;
mod rng;
mod spool;
#[cfg(test)]
mod tests;
mod words;

pub use day::{simulate_day, DayStats};
pub use dbdump::{generate_db_dump, mutate_db_dump};
pub use every_type::generate_tree_with_every_file_type;
pub use many::generate_many;
pub use rng::Rng;
pub use spool::{generate_spool, SpoolSpec, SpoolStats};

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// 2026-01-01T00:00:00Z, the "now" of a freshly generated spool. Do not change: it is in every
/// generated mtime and Date header.
pub const BASE_EPOCH: i64 = 1_767_225_600;

pub(crate) const DAY_SECS: i64 = 86_400;

/// Why generation failed; every variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not empty: generation needs an empty or missing directory")]
    NotEmpty { path: PathBuf },
    #[error("{path}: not a generated spool file: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
}

/// Attaches the operation and path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, GenError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, GenError> {
        self.map_err(|source| GenError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

pub(crate) fn c_path(path: &Path) -> Result<CString, GenError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| GenError::Io {
        op: "convert",
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

/// Sets atime and mtime of `path` (never following a symlink) to `sec.nsec`; negative seconds
/// (before 1970) are allowed. std's `File::set_times` cannot reach symlinks, hence libc.
pub(crate) fn set_times(path: &Path, sec: i64, nsec: u32) -> Result<(), GenError> {
    let c = c_path(path)?;
    let ts = libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: libc::c_long::from(nsec.min(999_999_999) as i32),
    };
    let times = [ts, ts];
    // SAFETY: `c` is a valid NUL-terminated path and `times` points to two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error()).ctx("set times of", path)
    }
}

/// Sets the permission bits explicitly, so the process umask never leaks into generated data.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), GenError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).ctx("chmod", path)
}

/// Creates `root` if missing and refuses a non-empty one: generating over old data would mix
/// two spools and break determinism.
pub(crate) fn prepare_empty_root(root: &Path) -> Result<(), GenError> {
    std::fs::create_dir_all(root).ctx("create", root)?;
    let mut entries = std::fs::read_dir(root).ctx("list", root)?;
    if entries.next().is_some() {
        return Err(GenError::NotEmpty {
            path: root.to_path_buf(),
        });
    }
    Ok(())
}
