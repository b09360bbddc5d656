//! What `restore-user` prints once the mail is back: where it went and why, and the Cyrus
//! commands that make it visible ([`crate::restore::next_steps`], which the console shows too).

use crate::cyrus::ImapdConf;
use crate::restore::cyrus_folder::NewFolder;
use crate::restore::next_steps::next_steps;
use crate::restore::user::{Destination, Plan, User, UserRestoreError};
use std::path::Path;

/// Prints the next step for `dest`; `done` are the new Cyrus mailboxes with their ACLs, `work`
/// the folder for the mailbox-list file.
pub fn print(
    dest: &Destination,
    plan: &Plan,
    done: &[(NewFolder, Vec<(String, String)>)],
    conf: Option<&ImapdConf>,
    work: &Path,
    user: &User,
) -> Result<(), UserRestoreError> {
    let steps = next_steps(dest, plan, done, conf, work, user)?;
    if steps.explain.is_empty() && steps.commands.is_empty() {
        return Ok(());
    }
    crate::say!("\n{}", steps.explain);
    for s in &steps.commands {
        crate::say!("  {s}");
    }
    Ok(())
}
