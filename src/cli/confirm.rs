//! Asking before a command destroys data (`restore-user --in-place`): on a terminal the admin
//! types `yes` after reading what goes; without a terminal only `--yes` lets it run, so a cron
//! job or a script never removes a mailbox by accident.

use super::UsageError;
use std::io::{BufRead, IsTerminal, Write};

/// Ok when the admin agreed (or `yes` was given) to `action`, which removes `removed`.
pub fn destructive(action: &str, removed: &[String], yes: bool) -> anyhow::Result<()> {
    if yes || removed.is_empty() {
        return Ok(());
    }
    let list = removed.join("\n  ");
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "{action} removes:\n  {list}\nrun it on a terminal to confirm, or add --yes"
        ))
        .into());
    }
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "{action} removes:\n  {list}\nType yes to go on, anything else stops: "
    );
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        anyhow::bail!("stopped: nothing was removed")
    }
}
