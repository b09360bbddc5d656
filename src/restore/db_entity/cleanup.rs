//! Tearing a throwaway PostgreSQL down, whatever happens: on return, on error (the instance's
//! `Drop`) and on SIGINT, SIGTERM or SIGHUP (a handler that only writes the signal number to a
//! pipe; a watcher thread reads it, tears every registered instance down and then dies of the
//! same signal). The registry's lock is held for the whole teardown on both paths, so a signal
//! arriving while `Drop` is at work waits for it instead of exiting half-way. SIGPIPE is
//! ignored while an instance lives: a loader that dies must be an error, not our death.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// One live instance: its private folder and, once started, its postmaster (which leads the
/// process group every program of the instance runs in).
struct Live {
    id: u64,
    dir: PathBuf,
    postmaster: Option<i32>,
}

static REGISTRY: Mutex<Vec<Live>> = Mutex::new(Vec::new());
static NEXT_ID: Mutex<u64> = Mutex::new(0);
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
static INSTALL: Once = Once::new();

/// Registers a private folder to remove on a signal; returns its registration id.
pub fn register(dir: &Path) -> u64 {
    install();
    let id = {
        let mut n = NEXT_ID.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    };
    registry().push(Live {
        id,
        dir: dir.to_path_buf(),
        postmaster: None,
    });
    id
}

/// Records the pid of the process leading registration `id`'s process group (initdb, then
/// the postmaster), or None once it has been waited for: a pid that was reaped may be reused
/// by an unrelated process, which must never get our signals.
pub fn set_postmaster(id: u64, pid: Option<i32>) {
    if let Some(l) = registry().iter_mut().find(|l| l.id == id) {
        l.postmaster = pid;
    }
}

/// Forgets registration `id` without touching its folder (which is not ours).
pub fn forget(id: u64) {
    registry().retain(|l| l.id != id);
}

/// Tears registration `id` down (stops its postmaster, removes its folder) and forgets it.
pub fn teardown(id: u64) -> io::Result<()> {
    let mut reg = registry();
    let Some(i) = reg.iter().position(|l| l.id == id) else {
        return Ok(());
    };
    let live = reg.remove(i);
    // Held until the folder is gone: see the module comment.
    let result = stop_and_remove(&live);
    drop(reg);
    result
}

fn registry() -> std::sync::MutexGuard<'static, Vec<Live>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stops the postmaster (SIGQUIT: immediate shutdown, which still frees its shared memory),
/// kills what is left of its process group, then removes the folder.
fn stop_and_remove(live: &Live) -> io::Result<()> {
    if let Some(pid) = live.postmaster {
        // SAFETY: plain system calls on a pid we started; no memory is shared.
        unsafe { libc::kill(pid, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut status = 0;
            // SAFETY: as above; `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid || r < 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: the group is the one the postmaster leads (process_group(0) at spawn).
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let mut status = 0;
        // SAFETY: reaps the postmaster if SIGKILL was needed.
        unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    }
    // Processes just killed may still be closing files: a few tries.
    let mut last = Ok(());
    for _ in 0..20 {
        last = match std::fs::remove_dir_all(&live.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        if last.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    last
}

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; one byte from a local.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

fn install() {
    INSTALL.call_once(|| {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            log::warn!(
                "no cleanup on signals: pipe: {}",
                io::Error::last_os_error()
            );
            return;
        }
        PIPE_WRITE.store(fds[1], Ordering::Relaxed);
        let read_fd = fds[0];
        let spawned = std::thread::Builder::new()
            .name("db-entity-signals".into())
            .spawn(move || watch(read_fd));
        if let Err(e) = spawned {
            log::warn!("no cleanup on signals: {e}");
            return;
        }
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: installs a handler that only calls write(2).
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        // SAFETY: ignoring SIGPIPE so a dead loader is an EPIPE error, not our death.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    });
}

/// The watcher: on a signal, tear every instance down, then die of that signal.
fn watch(read_fd: i32) {
    loop {
        let mut b = 0u8;
        // SAFETY: reads one byte into a local from our own pipe.
        let n = unsafe { libc::read(read_fd, (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            let sig = libc::c_int::from(b);
            let mut reg = registry();
            for live in reg.drain(..) {
                eprintln!(
                    "bmbackup: signal {sig}: stopping the throwaway PostgreSQL and removing {}",
                    live.dir.display()
                );
                if let Err(e) = stop_and_remove(&live) {
                    eprintln!("bmbackup: could not remove {}: {e}", live.dir.display());
                }
            }
            // SAFETY: back to the default action, then the same signal: the usual exit status.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
            std::process::exit(128 + sig);
        }
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
    }
}
