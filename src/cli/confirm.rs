//! Asking before a command destroys data (`restore-user --in-place`): on a terminal the admin
//! answers `y` or `yes` after reading what goes (as `forget SNAPSHOT` asks); without a terminal
//! only `--yes` lets it run, so a cron job or a script never removes a mailbox by accident.

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
        "{action} removes:\n  {list}\nThis cannot be undone. Go on? [y/N] "
    );
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        anyhow::bail!("stopped: nothing was removed")
    }
}
