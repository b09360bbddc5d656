//! What to do once a user's mail is back ([`super::user`]): why it went where it went, and the
//! Cyrus commands that make it visible (writing the mailbox-list file they read). Every front
//! end shows the same text: the CLI prints it, the console shows it with a copy button. With
//! `run_next_steps` in the config, [`run`] runs them instead and returns what they printed.

use super::cyrus_folder::NewFolder;
use super::user::{finish, Destination, Plan, User, UserRestoreError};
use crate::cyrus::name::MboxName;
use crate::cyrus::{tool_display, ImapdConf};
use std::path::Path;

/// The explanation (ending with the "Next step…:" line) and the commands to run, in order;
/// both empty when there is nothing to do (a restore `--to` a folder).
#[derive(Debug, Default, Clone)]
pub struct NextSteps {
    pub explain: String,
    pub commands: Vec<String>,
}

/// The next steps for `dest`; `done` are the new Cyrus mailboxes with their ACLs, `work` the
/// folder for the mailbox-list file.
pub fn next_steps(
    dest: &Destination,
    plan: &Plan,
    done: &[(NewFolder, Vec<(String, String)>)],
    conf: Option<&ImapdConf>,
    work: &Path,
    user: &User,
) -> Result<NextSteps, UserRestoreError> {
    let sep = conf.map(ImapdConf::separator).unwrap_or('/');
    let c = conf.map(ImapdConf::c_flag).unwrap_or_default();
    let reconstruct = tool_display("reconstruct");
    Ok(match (dest, &plan.new_root) {
        // The folders hold the snapshot's index again: Cyrus checks them against its mailbox
        // list and caches before clients use them.
        (Destination::InPlace, _) => NextSteps {
            explain: "Next step, as root, so Cyrus checks the replaced folders:".to_string(),
            commands: vec![format!("{reconstruct}{c} -r {}", user.root().external(sep))],
        },
        (Destination::To(_), _) => NextSteps::default(),
        (Destination::Beside, None) => NextSteps {
            explain: "The mail was restored as a new folder beside the user's live mail, not in \
                 place: Cyrus' index files put back in place would rewind the mailbox's message \
                 UIDs, and clients, which already saw those UIDs, would not show the restored \
                 mail. The folder's cyrus.* files were left out so Cyrus builds fresh ones.\n\
                 Next step, as the cyrus user, to make it visible as a subfolder:"
                .to_string(),
            commands: vec![format!(
                "{reconstruct}{c} -r -f {}",
                user.root().external(sep)
            )],
        },
        (Destination::Beside, Some(root)) => new_mailboxes(plan, root, done, conf, work, user)?,
    })
}

fn new_mailboxes(
    plan: &Plan,
    root: &MboxName,
    done: &[(NewFolder, Vec<(String, String)>)],
    conf: Option<&ImapdConf>,
    work: &Path,
    user: &User,
) -> Result<NextSteps, UserRestoreError> {
    let commands = finish(plan, done, conf, work, user)?;
    Ok(NextSteps {
        explain: format!(
            "The mail was restored as a new folder, {}, beside the live mail, not in place: \
             Cyrus' index files put back in place would rewind the mailbox's message UIDs, and \
             clients, which already saw those UIDs, would not show the restored mail. Each \
             restored folder has a new cyrus.header (new name and unique id) and keeps its \
             index (flags).\n\
             Next step, as root (Cyrus' tools switch to the cyrus user), to make it visible:",
            root.external(conf.map(ImapdConf::separator).unwrap_or('/'))
        ),
        commands,
    })
}

/// One command run by [`run`]: what it printed and whether it succeeded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRun {
    pub command: String,
    pub ok: bool,
    /// Its stdout and stderr, as printed.
    pub output: String,
}

/// Runs the commands in order with `sh -c` (they hold `-C imapd.conf` and `< file`), stopping
/// at the first that fails; the ones after it are not run (the caller prints them).
pub fn run(commands: &[String]) -> Vec<StepRun> {
    let mut out = Vec::new();
    for c in commands {
        let r = std::process::Command::new("sh")
            .arg("-c")
            .arg(c)
            .stdin(std::process::Stdio::null())
            .output();
        let (ok, output) = match r {
            Ok(o) => (
                o.status.success(),
                format!(
                    "{}{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr),
                    if o.status.success() {
                        String::new()
                    } else {
                        format!("({})\n", o.status)
                    }
                ),
            ),
            Err(e) => (false, format!("cannot run sh: {e}\n")),
        };
        out.push(StepRun {
            command: c.clone(),
            ok,
            output,
        });
        if !ok {
            break;
        }
    }
    out
}
