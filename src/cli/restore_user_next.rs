//! What `restore-user` prints once the mail is back: where it went and why, and the Cyrus
//! commands that make it visible (writing the mailbox-list file they read).

use crate::cyrus::name::MboxName;
use crate::cyrus::{tool_display, ImapdConf};
use crate::restore::cyrus_folder::NewFolder;
use crate::restore::user::{finish, Destination, Plan, User, UserRestoreError};
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
    let sep = conf.map(ImapdConf::separator).unwrap_or('/');
    let c = conf.map(ImapdConf::c_flag).unwrap_or_default();
    let reconstruct = tool_display("reconstruct");
    match (dest, &plan.new_root) {
        (Destination::InPlace, _) => {
            // The folders hold the snapshot's index again: Cyrus checks them against its
            // mailbox list and caches before clients use them.
            crate::say!(
                "\nNext step, as root, so Cyrus checks the replaced folders:\n  \
                 {reconstruct}{c} -r {}",
                user.root().external(sep)
            );
        }
        (Destination::To(_), _) => {}
        (Destination::Beside, None) => crate::say!(
            "\nThe mail was restored as a new folder beside the user's live mail, not in place: \
             Cyrus' index files put back in place would rewind the mailbox's message UIDs, and \
             clients, which already saw those UIDs, would not show the restored mail. The \
             folder's cyrus.* files were left out so Cyrus builds fresh ones.\n\
             Next step, as the cyrus user, to make it visible as a subfolder:\n  \
             {reconstruct}{c} -r -f {}",
            user.root().external(sep)
        ),
        (Destination::Beside, Some(root)) => print_new(plan, root, done, conf, work, user)?,
    }
    Ok(())
}

fn print_new(
    plan: &Plan,
    root: &MboxName,
    done: &[(NewFolder, Vec<(String, String)>)],
    conf: Option<&ImapdConf>,
    work: &Path,
    user: &User,
) -> Result<(), UserRestoreError> {
    let steps = finish(plan, done, conf, work, user)?;
    crate::say!(
        "\nThe mail was restored as a new folder, {}, beside the live mail, not in place: Cyrus' \
         index files put back in place would rewind the mailbox's message UIDs, and clients, \
         which already saw those UIDs, would not show the restored mail. Each restored folder \
         has a new cyrus.header (new name and unique id) and keeps its index (flags).\n\
         Next step, as root (Cyrus' tools switch to the cyrus user), to make it visible:",
        root.external(conf.map(ImapdConf::separator).unwrap_or('/'))
    );
    for s in &steps {
        crate::say!("  {s}");
    }
    Ok(())
}
