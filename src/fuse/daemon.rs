//! Process plumbing around a mount: daemonizing with a readiness pipe, turning SIGTERM/SIGINT
//! into an unmount, and clearing a stale FUSE mount left by a crashed daemon.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The child side of [`daemonize`]: tell the waiting parent the mount is up.
#[derive(Debug)]
pub struct Daemon {
    pipe: File,
}

impl Daemon {
    /// Lets the parent exit 0, then detaches from the terminal's stdout and cwd. Errors after
    /// this point only reach stderr and the log.
    pub fn ready(mut self) {
        if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
            use std::os::fd::AsRawFd;
            // stdin/stdout always go; stderr too when it is the caller's terminal or pipe (a
            // caller reading our output, `$(bmbackup mount …)`, would otherwise wait for the
            // daemon to exit). A log file or the journal's socket keeps receiving errors.
            let mut fds = vec![0, 1];
            if stderr_is_callers() {
                fds.push(2);
            }
            for fd in fds {
                // SAFETY: dup2 on valid descriptors replaces `fd` atomically.
                unsafe { libc::dup2(null.as_raw_fd(), fd) };
            }
        }
        let _ = std::env::set_current_dir("/");
        let _ = self.pipe.write_all(b"1");
    }
}

fn stderr_is_callers() -> bool {
    // SAFETY: isatty/fstat on fd 2 with a zeroed, correctly sized stat buffer.
    unsafe {
        if libc::isatty(2) == 1 {
            return true;
        }
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(2, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO
    }
}

/// Forks. Returns in the child, as leader of a new session; the parent waits until the child
/// calls [`Daemon::ready`] and exits 0, or exits non-zero if the child fails first (so
/// `bmbackup mount` in fstab returns only once the mount is up).
///
/// Call it before any thread is started or the repository (SQLite) is opened: only the
/// calling thread survives a fork. Paths should be absolute (the child later leaves its cwd).
pub fn daemonize() -> io::Result<Daemon> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these descriptors; each is owned exactly once.
    let (read, write) = unsafe {
        (
            File::from(OwnedFd::from_raw_fd(fds[0])),
            File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    };
    // SAFETY: the process is single-threaded here (documented precondition).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(read);
            // SAFETY: plain syscall; fails only if already a group leader, which a child is not.
            unsafe { libc::setsid() };
            Ok(Daemon { pipe: write })
        }
        child => {
            drop(write);
            std::process::exit(wait_ready(read, child))
        }
    }
}

fn wait_ready(mut read: File, child: libc::pid_t) -> i32 {
    let mut b = [0u8; 1];
    if matches!(read.read(&mut b), Ok(1)) && b[0] == b'1' {
        return 0;
    }
    // The child closed the pipe without being ready: it failed and said why on stderr.
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(child, &mut status, 0) } == child && libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        return if code == 0 { 1 } else { code };
    }
    1
}

/// Write end of the self-pipe the signal handler writes to (-1: none).
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the byte.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// Runs a callback (the unmount) on a thread when SIGTERM or SIGINT arrives. Dropping it
/// restores the default handlers and stops the thread.
pub struct SignalWatch {
    write: File,
    /// Kept open as long as the watch lives, also after the thread has run: a write into a
    /// pipe without reader raises SIGPIPE, which kills a process that (like `bmbackup`, for
    /// `| head`) restored its default action.
    _read: Arc<File>,
    thread: Option<JoinHandle<()>>,
}

pub fn on_termination(f: impl FnOnce() + Send + 'static) -> io::Result<SignalWatch> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these descriptors.
    let (read, write) = unsafe {
        (
            Arc::new(File::from(OwnedFd::from_raw_fd(fds[0]))),
            File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    };
    // A signal handler must never block: with the pipe full, an extra byte is just dropped.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fds[1], libc::F_GETFL);
        libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let reader = read.clone();
    let thread = std::thread::Builder::new()
        .name("bmbackup-signals".into())
        .spawn(move || {
            let mut b = [0u8; 1];
            // 1 = a signal arrived; 0 or EOF = the watch is dropped.
            if matches!((&*reader).read(&mut b), Ok(1)) && b[0] == 1 {
                f();
            }
        })?;
    SIGNAL_PIPE.store(fds[1], Ordering::SeqCst);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only does async-signal-safe work.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    Ok(SignalWatch {
        write,
        _read: read,
        thread: Some(thread),
    })
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        let fd = self.write.as_raw_fd();
        // Only the watch that installed the current pipe resets the handlers.
        if SIGNAL_PIPE
            .compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            for sig in [libc::SIGTERM, libc::SIGINT] {
                // SAFETY: restoring the default disposition.
                unsafe { libc::signal(sig, libc::SIG_DFL) };
            }
        }
        let _ = self.write.write_all(&[0]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A FUSE mount whose daemon died leaves "Transport endpoint is not connected" behind; mounting
/// over it fails, so detach it first.
pub fn clear_stale_mount(mountpoint: &Path) -> io::Result<()> {
    // `stat` may still be answered from the kernel's attribute cache; opening the folder
    // always reaches the (dead) server.
    let probe = std::fs::metadata(mountpoint).and_then(|_| std::fs::read_dir(mountpoint).map(drop));
    match probe {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            log::warn!(
                "mount: {} is a stale FUSE mount; detaching it",
                mountpoint.display()
            );
            lazy_unmount(mountpoint)
        }
        _ => Ok(()),
    }
}

/// `fusermount3 -uz`: detaches even while files are open.
pub fn lazy_unmount(mountpoint: &Path) -> io::Result<()> {
    let out = Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg("--")
        .arg(mountpoint)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "fusermount3 -uz {}: {}",
            mountpoint.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
