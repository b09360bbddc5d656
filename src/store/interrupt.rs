//! What this process must undo when it is interrupted (SIGINT, SIGTERM): the lock files it holds
//! and the temp files it is writing, in the store or in a restore's destination. Each registers
//! here while it exists; the command line's signal watcher calls [`clean_up`] and exits, so the
//! next run finds no lock to call stale and no half-written file. Whatever was already renamed
//! into place (packs, manifests, restored files) stays, and the next run reuses it.

use super::backend::Backend;
use parking_lot::Mutex;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Something to remove if the process is interrupted.
pub enum Leftover {
    /// A lock file: its backend and its current key (the heartbeat changes it).
    Lock(Arc<dyn Backend>, Arc<Mutex<String>>),
    /// A temp file being written.
    Path(PathBuf),
    /// A temp file being written, by name in a folder's descriptor (restore works from those).
    At(OwnedFd, String),
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static LEFTOVERS: Mutex<Vec<(u64, Leftover)>> = Mutex::new(Vec::new());
/// Set by [`clean_up`]: the process is about to exit, nothing new may be left behind.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Registers `l` until the returned guard is dropped (the lock released, the temp renamed).
/// Once [`clean_up`] has run, `l` is removed at once and the calling thread waits for the exit.
pub fn register(l: Leftover) -> Registered {
    let mut list = LEFTOVERS.lock();
    if STOPPING.load(Ordering::SeqCst) {
        drop(list);
        remove(&l);
        wait_for_exit();
    }
    let token = NEXT.fetch_add(1, Ordering::Relaxed);
    list.push((token, l));
    Registered(token)
}

/// Makes a temp file with `make` and registers it in one step, under the registry's lock: a
/// file is never made after [`clean_up`] ran nor left unregistered while it runs (a restore
/// interrupted between creating a partial file and registering it left that file behind).
/// `make` must not register anything itself.
pub fn create<T, E>(make: impl FnOnce() -> Result<(T, Leftover), E>) -> Result<(T, Registered), E> {
    let mut list = LEFTOVERS.lock();
    if STOPPING.load(Ordering::SeqCst) {
        drop(list);
        wait_for_exit();
    }
    let (made, l) = make()?;
    let token = NEXT.fetch_add(1, Ordering::Relaxed);
    list.push((token, l));
    Ok((made, Registered(token)))
}

/// The process exits on a signal: this thread must not go on writing meanwhile.
fn wait_for_exit() -> ! {
    loop {
        std::thread::park();
    }
}

/// Unregisters its leftover when dropped.
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        LEFTOVERS.lock().retain(|(t, _)| *t != self.0);
    }
}

/// What [`clean_up`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub locks: usize,
    pub temps: usize,
}

/// Removes every registered lock and temp file (for a process about to exit on a signal).
/// Bounded waits: an interrupted process must exit even if another thread holds a lock here.
pub fn clean_up() -> Cleaned {
    clean(None)
}

/// Removes the registered leftovers, or only those of `only` (the unit test: other tests of
/// the same process register their own temp files and locks meanwhile, which must stay).
fn clean(only: Option<&[u64]>) -> Cleaned {
    let mut done = Cleaned::default();
    let Some(list) = LEFTOVERS.try_lock_for(Duration::from_secs(2)) else {
        return done;
    };
    if only.is_none() {
        STOPPING.store(true, Ordering::SeqCst);
    }
    for (_, l) in list
        .iter()
        .filter(|(t, _)| only.is_none_or(|o| o.contains(t)))
    {
        match l {
            Leftover::Lock(..) => done.locks += usize::from(remove(l)),
            Leftover::Path(_) | Leftover::At(..) => done.temps += usize::from(remove(l)),
        }
    }
    done
}

/// Removes one leftover; whether it was there.
fn remove(l: &Leftover) -> bool {
    match l {
        Leftover::Lock(backend, key) => key
            .try_lock_for(Duration::from_secs(2))
            .is_some_and(|key| backend.delete(&key).is_ok()),
        Leftover::Path(p) => std::fs::remove_file(p).is_ok(),
        Leftover::At(dir, name) => {
            rustix::fs::unlinkat(dir, name.as_str(), rustix::fs::AtFlags::empty()).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_temps_are_removed_and_released_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let held = register(Leftover::Path(a.clone()));
        let released = register(Leftover::Path(b.clone()));
        let token = released.0;
        drop(released);
        let cleaned = clean(Some(&[held.0, token]));
        assert_eq!(cleaned.temps, 1);
        assert!(!a.exists() && b.exists());
    }
}
