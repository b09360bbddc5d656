//! What `restore-user` prints once the mail is back: where it went and why, and the Cyrus
//! commands that make it visible ([`crate::restore::next_steps`], which the console shows too).

use crate::cyrus::ImapdConf;
use crate::restore::cyrus_folder::NewFolder;
use crate::restore::next_steps::next_steps;
use crate::restore::user::{Destination, Plan, User, UserRestoreError};
use std::path::Path;

/// Prints the next step for `dest`, or with `run_them` runs it and prints what it printed;
/// `done` are the new Cyrus mailboxes with their ACLs, `work` the folder for the mailbox-list
/// file. False when a command run failed.
pub fn print(
    dest: &Destination,
    plan: &Plan,
    done: &[(NewFolder, Vec<(String, String)>)],
    conf: Option<&ImapdConf>,
    work: &Path,
    user: &User,
    run_them: bool,
) -> Result<bool, UserRestoreError> {
    let steps = next_steps(dest, plan, done, conf, work, user)?;
    if steps.explain.is_empty() && steps.commands.is_empty() {
        return Ok(true);
    }
    if run_them && !steps.commands.is_empty() {
        crate::say!(
            "\nRunning the Cyrus commands that make it visible ([entities] run_next_steps):"
        );
        let runs = crate::restore::next_steps::run(&steps.commands);
        for r in &runs {
            crate::say!("$ {}", r.command);
            if !r.output.is_empty() {
                crate::say!("{}", r.output.trim_end());
            }
        }
        if runs.iter().all(|r| r.ok) {
            crate::say!("done: the restored mail is visible in {user}'s mail client");
            return Ok(true);
        }
        crate::say!(
            "\nA command failed; fix its cause, then run it and the ones after it, as root:"
        );
        for s in steps.commands.iter().skip(runs.len() - 1) {
            crate::say!("  {s}");
        }
        return Ok(false);
    }
    crate::say!("\n{}", steps.explain);
    for s in &steps.commands {
        crate::say!("  {s}");
    }
    Ok(true)
}
