//! The closing report of a restore: a dry run's list, or what was written, what was already
//! there, and what failed; and the exit code it gives.

use super::errors::count;
use super::{format, EXIT_OK, EXIT_PARTIAL};
use crate::restore::RestoreReport;
use std::path::Path;

/// With `-q`: only the failures, and the exit code.
fn quiet_code(report: &RestoreReport, dry_run: bool) -> Option<i32> {
    if !super::output::quiet() || dry_run {
        return None;
    }
    for (p, e) in &report.failed {
        crate::tell!("bmbackup: not restored: {p}: {e}");
    }
    Some(exit_code(report))
}

/// 3 when some files were not restored, else 0.
pub fn exit_code(report: &RestoreReport) -> i32 {
    if report.failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    }
}

/// Prints a dry run's list or a restore's summary and failures; returns the exit code.
pub fn print_report(report: &RestoreReport, dest: &Path, dry_run: bool) -> i32 {
    if dry_run {
        for p in &report.planned {
            println!("{p}");
        }
        return EXIT_OK;
    }
    if let Some(code) = quiet_code(report, dry_run) {
        return code;
    }
    let mut what = vec![count(report.files, "file", "files")];
    if report.other > 0 {
        what.push(count(
            report.other,
            "symlink or special file",
            "symlinks and special files",
        ));
    }
    what.push(count(report.dirs, "folder", "folders"));
    let last = what.pop().unwrap_or_default();
    crate::say!(
        "restored {} and {last} ({}) into {}{}",
        what.join(", "),
        format::size(report.bytes),
        dest.display(),
        if report.skipped_identical > 0 {
            format!("; {} already there and identical", report.skipped_identical)
        } else {
            String::new()
        }
    );
    if !report.failed.is_empty() {
        crate::tell!(
            "{} not restored:",
            count(report.failed.len() as u64, "file", "files")
        );
        for (p, e) in &report.failed {
            crate::tell!("  {p}: {e}");
        }
        return EXIT_PARTIAL;
    }
    EXIT_OK
}
