//! A progress line redrawn on stderr while a long command runs, only when stderr is a terminal
//! (logs and cron mail stay clean).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Whether a progress line would be shown.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// Runs `f` while a thread redraws `line(seconds elapsed)` four times a second, if [`wanted`].
pub fn while_running<T>(line: impl Fn(f64) -> String + Sync, f: impl FnOnce() -> T) -> T {
    if !wanted() {
        return f();
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                super::tell_inline(&format!(
                    "\r\x1b[K{}",
                    line(start.elapsed().as_secs_f64().max(1e-9))
                ));
            }
            super::tell_inline("\r\x1b[K");
        });
        let r = f();
        done.store(true, Ordering::Relaxed);
        r
    })
}
