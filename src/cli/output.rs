//! Output that never kills a run: `say!`/`tell!` (stdout/stderr lines) and [`tell_inline`]
//! (a progress line), all ignoring write errors; and whether `-q` asked for errors only.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// `-q`: summaries and notes are not printed, only errors (and what a command exists to print,
/// such as a listing or `--json`).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `println!` that never panics or dies: a backup must finish even when whoever reads its output
/// (`bmbackup backup | head`, a closed cron pipe) went away.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Writes to stderr without a newline, ignoring errors (progress lines).
pub fn tell_inline(text: &str) {
    use std::io::Write as _;
    let mut err = std::io::stderr();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// `eprintln!` that never panics or dies, for the same reason as `say!`.
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
