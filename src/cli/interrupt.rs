//! Ctrl-C and SIGTERM during `backup`, `restore`, `prune` (and the other commands that write):
//! say "interrupted", remove this process's lock and temp files
//! ([`crate::store::interrupt::clean_up`]) and exit 130 (SIGINT) or 143 (SIGTERM), as restic and
//! borg do. Without this the process died silently and left its lock files for the next run to
//! call stale. What was written before stays: packs and manifests are renamed into place whole,
//! so the next backup reuses the packs, and a restore run again keeps the files already written.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Write end of the self-pipe the handler writes the signal number to (-1: none yet).
static PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the byte.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// From now on, SIGINT and SIGTERM end `command` cleanly (see the module comment). Child
/// processes (hooks) get the default actions back when they exec. Failing to set it up only
/// loses the clean-up, so it is logged, not fatal.
pub fn watch(command: &'static str) {
    if let Err(e) = try_watch(command) {
        log::warn!("interrupts will not be cleaned up after: {e}");
    }
}

fn try_watch(command: &'static str) -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these descriptors; the write end lives as long as the process.
    let read = unsafe { File::from(OwnedFd::from_raw_fd(fds[0])) };
    // The read end blocks: the watcher thread waits on it.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fds[0], libc::F_SETFL, 0) };
    std::thread::Builder::new()
        .name("bmbackup-interrupt".into())
        .spawn(move || {
            let mut read = read;
            let mut b = [0u8; 1];
            if matches!(read.read(&mut b), Ok(1)) {
                stop(command, libc::c_int::from(b[0]));
            }
        })?;
    PIPE.store(fds[1], Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only does async-signal-safe work.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    Ok(())
}

/// Cleans up and exits with 128 + the signal's number; never returns.
fn stop(command: &str, sig: libc::c_int) {
    let name = if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    let cleaned = crate::store::interrupt::clean_up();
    // Past the progress line, which may be on the terminal's current line.
    eprintln!(
        "\nbmbackup {command}: interrupted ({name}); removed {} and {} of this run; what was written stays and the next run reuses it",
        super::errors::count(cleaned.locks as u64, "lock file", "lock files"),
        super::errors::count(cleaned.temps as u64, "temp file", "temp files"),
    );
    // SAFETY: ends the process at once, without running other threads' code or destructors
    // (they may hold what was just removed).
    unsafe { libc::_exit(128 + sig) };
}
