//! Store locks that work on NFS and object storage: plain files in `locks/` naming the host, pid,
//! command and time, refreshed by a heartbeat. No fcntl locks (they do not span machines reliably).
//!
//! Backups and forget take *shared* locks (many may run at once); prune and repair take
//! *exclusive* locks. A lock may also carry a *scope*: two live locks with the same scope
//! conflict whatever their kind. A backup holds one scoped `HOST/PART` for each part while it
//! backs it up, so one part is never backed up twice at once, while other parts and hosts are. A lock whose heartbeat stopped for [`STALE_AFTER`] (or whose process is
//! gone, on the same host) is stale and may be removed. A holder checks its lock is still there
//! before it commits; if another process removed it as stale, the holder aborts instead.
//!
//! A lock file is never rewritten. Rewriting in place would race with a locker removing it as
//! stale: a holder thawing at that moment would check "still there", then its rewrite would
//! resurrect a lock the other process believes gone, and both would hold it. Instead the heartbeat
//! writes a *new* file (new name) and then deletes the old one: if that delete finds the old file
//! already gone, someone removed it as stale, so the holder deletes its new file and knows it lost
//! the lock. A locker whose stale-lock delete finds the file gone re-lists, and so sees the
//! refreshed file if the holder won.

use super::backend::{unique_suffix, Backend, TEMP_PREFIX};
use super::{now_ns, LOCKS_DIR};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);
const HEARTBEAT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Shared,
    Exclusive,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    pub kind: LockKind,
    pub command: String,
    pub host: String,
    pub pid: u32,
    pub started_ns: i64,
    pub refreshed_ns: i64,
    /// What only one holder at a time may do (`HOST/PART` for a backup of that part); absent
    /// in lock files of bmbackup before format 1.2, which ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl LockInfo {
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {} on {}, since {} UTC)",
            self.command,
            self.pid,
            self.host,
            crate::timefmt::display(self.started_ns)
        )
    }

    fn is_stale(&self, now: i64) -> bool {
        if now.saturating_sub(self.refreshed_ns) > STALE_AFTER.as_nanos() as i64 {
            return true;
        }
        self.host == hostname() && !pid_alive(self.pid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("store is busy: {0}; try again when it has finished")]
    Busy(String),
    #[error("lock file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("our lock {0} was removed by another process (it was thought stale); aborting without committing")]
    Lost(String),
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates on success.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A held lock; released (file deleted) on drop.
pub struct StoreLock {
    backend: Arc<dyn Backend>,
    /// Current lock file: changes at every heartbeat.
    key: Arc<parking_lot::Mutex<String>>,
    lost: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
    /// So that an interrupted process removes its lock file (see [`super::interrupt`]).
    _registered: super::interrupt::Registered,
}

/// Every lock in the store, with its key; unreadable lock files are reported as such.
pub fn list_locks(backend: &dyn Backend) -> Result<Vec<(String, Option<LockInfo>)>, LockError> {
    let names = backend
        .list(LOCKS_DIR)
        .map_err(|e| LockError::Io(backend.describe(LOCKS_DIR), e))?;
    let mut out = Vec::new();
    // Temp files are lock files being written (or left by a killed writer): never a lock.
    for n in names
        .into_iter()
        .filter(|n| n.ends_with(".lock") && !n.starts_with(TEMP_PREFIX))
    {
        let key = format!("{LOCKS_DIR}/{n}");
        match backend.read_all(&key) {
            Ok(b) => out.push((key, serde_json::from_slice(&b).ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LockError::Io(backend.describe(&key), e)),
        }
    }
    Ok(out)
}

impl StoreLock {
    /// Takes a lock of `kind` for `command`, waiting up to `wait` for conflicting holders.
    pub fn acquire(
        backend: Arc<dyn Backend>,
        kind: LockKind,
        command: &str,
        wait: Duration,
    ) -> Result<StoreLock, LockError> {
        Self::acquire_scoped(backend, kind, command, None, wait)
    }

    /// [`StoreLock::acquire`], and no other live lock of the same `scope` may be held.
    pub fn acquire_scoped(
        backend: Arc<dyn Backend>,
        kind: LockKind,
        command: &str,
        scope: Option<&str>,
        wait: Duration,
    ) -> Result<StoreLock, LockError> {
        let deadline = std::time::Instant::now() + wait;
        let now = now_ns();
        let info = LockInfo {
            kind,
            command: command.to_string(),
            host: hostname(),
            pid: std::process::id(),
            started_ns: now,
            refreshed_ns: now,
            scope: scope.map(str::to_string),
        };
        let key = lock_key(&info);
        loop {
            write_lock(backend.as_ref(), &key, &info)?;
            match conflicts(backend.as_ref(), &key, kind, scope)? {
                None => break,
                Some(holder) => {
                    let _ = backend.delete(&key);
                    if std::time::Instant::now() >= deadline {
                        return Err(LockError::Busy(holder));
                    }
                    // Random back-off so two exclusive lockers do not collide forever.
                    let jitter = u64::from_str_radix(&unique_suffix()[..4], 16).unwrap_or(0) % 500;
                    std::thread::sleep(Duration::from_millis(500 + jitter));
                }
            }
        }
        let lost = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let key = Arc::new(parking_lot::Mutex::new(key));
        let heartbeat = {
            let (backend, key, lost, stop) = (
                Arc::clone(&backend),
                Arc::clone(&key),
                Arc::clone(&lost),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || heartbeat_loop(backend, key, info, lost, stop))
        };
        let registered = super::interrupt::register(super::interrupt::Leftover::Lock(
            Arc::clone(&backend),
            Arc::clone(&key),
        ));
        Ok(StoreLock {
            _registered: registered,
            backend,
            key,
            lost,
            stop,
            heartbeat: Some(heartbeat),
        })
    }

    /// Fails if the lock was taken from us; call right before committing.
    pub fn check(&self) -> Result<(), LockError> {
        // Held across the stat so the heartbeat cannot rotate the file in between.
        let key = self.key.lock();
        let gone = match self.backend.size(&key) {
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(LockError::Io(self.backend.describe(&key), e)),
        };
        if gone || self.lost.load(Ordering::SeqCst) {
            self.lost.store(true, Ordering::SeqCst);
            return Err(LockError::Lost(self.backend.describe(&key)));
        }
        Ok(())
    }
}

fn lock_key(info: &LockInfo) -> String {
    format!(
        "{LOCKS_DIR}/{}-{}-{}.lock",
        info.host.replace('/', "_"),
        info.pid,
        unique_suffix()
    )
}

/// Refreshes a held lock by writing a new lock file and deleting the old one (never rewriting a
/// file, see the module doc). Returns false when the old file was already gone: the lock was
/// removed as stale and is lost (the new file is then deleted again).
fn refresh(
    backend: &dyn Backend,
    key: &parking_lot::Mutex<String>,
    info: &mut LockInfo,
) -> Result<bool, LockError> {
    info.refreshed_ns = now_ns();
    let new_key = lock_key(info);
    let mut key = key.lock();
    write_lock(backend, &new_key, info)?;
    match backend.delete(&key) {
        Ok(()) => {
            *key = new_key;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let _ = backend.delete(&new_key);
            Ok(false)
        }
        Err(e) => {
            let _ = backend.delete(&new_key);
            Err(LockError::Io(backend.describe(&key), e))
        }
    }
}

fn write_lock(backend: &dyn Backend, key: &str, info: &LockInfo) -> Result<(), LockError> {
    let json = serde_json::to_vec(info).unwrap_or_default();
    backend
        .write_atomic(key, &json)
        .map_err(|e| LockError::Io(backend.describe(key), e))
}

/// The first live lock that conflicts with taking `kind`; removes stale ones on the way.
fn conflicts(
    backend: &dyn Backend,
    own: &str,
    kind: LockKind,
    scope: Option<&str>,
) -> Result<Option<String>, LockError> {
    // Re-list after a stale lock vanished under us: its holder may have just refreshed it
    // under a new name, which the first listing did not show.
    for _ in 0..5 {
        match conflicts_once(backend, own, kind, scope)? {
            Conflict::Raced => continue,
            Conflict::None => return Ok(None),
            Conflict::Held(who) => return Ok(Some(who)),
        }
    }
    Ok(Some("a lock that keeps changing".into()))
}

enum Conflict {
    None,
    Held(String),
    Raced,
}

fn conflicts_once(
    backend: &dyn Backend,
    own: &str,
    kind: LockKind,
    scope: Option<&str>,
) -> Result<Conflict, LockError> {
    let now = now_ns();
    let mut raced = false;
    for (key, info) in list_locks(backend)? {
        if key == own {
            continue;
        }
        let Some(info) = info else {
            // Half-written or foreign: treat as held until it ages out.
            if backend.size(&key).is_ok() {
                return Ok(Conflict::Held(format!(
                    "unreadable lock {}",
                    backend.describe(&key)
                )));
            }
            continue;
        };
        if info.is_stale(now) {
            log::warn!("removing stale lock of {}", info.describe());
            // Always list again afterwards: its holder may have refreshed it under a new name
            // just before (on object storage a delete cannot tell whether the object was still
            // there at that instant; the holder can, as it looks before it deletes its old file).
            let _ = backend.delete(&key);
            raced = true;
            continue;
        }
        if kind == LockKind::Exclusive || info.kind == LockKind::Exclusive {
            return Ok(Conflict::Held(info.describe()));
        }
        if scope.is_some() && info.scope.as_deref() == scope {
            return Ok(Conflict::Held(info.describe()));
        }
    }
    Ok(if raced {
        Conflict::Raced
    } else {
        Conflict::None
    })
}

fn heartbeat_loop(
    backend: Arc<dyn Backend>,
    key: Arc<parking_lot::Mutex<String>>,
    mut info: LockInfo,
    lost: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    // Parked, not sleeping: dropping the lock unparks this thread, so releasing a lock takes no
    // time (a fixed 200 ms sleep made every backup of a part up to 0.2 s longer per lock).
    let mut last = std::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::park_timeout(HEARTBEAT.saturating_sub(last.elapsed()));
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if last.elapsed() < HEARTBEAT {
            continue;
        }
        last = std::time::Instant::now();
        match refresh(backend.as_ref(), &key, &mut info) {
            Ok(true) => {}
            Ok(false) => {
                log::error!(
                    "lock {} was removed by another process",
                    backend.describe(&key.lock())
                );
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => log::warn!("cannot refresh lock: {e}"),
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.heartbeat.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        if !self.lost.load(Ordering::SeqCst) {
            let _ = self.backend.delete(&self.key.lock());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::LocalBackend;

    #[test]
    fn shared_locks_coexist_and_exclusive_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        let s1 =
            StoreLock::acquire(Arc::clone(&b), LockKind::Shared, "backup", Duration::ZERO).unwrap();
        let s2 =
            StoreLock::acquire(Arc::clone(&b), LockKind::Shared, "backup", Duration::ZERO).unwrap();
        let err = StoreLock::acquire(Arc::clone(&b), LockKind::Exclusive, "prune", Duration::ZERO)
            .err()
            .unwrap();
        assert!(err.to_string().contains("backup (pid"), "{err}");
        drop(s1);
        drop(s2);
        let x = StoreLock::acquire(Arc::clone(&b), LockKind::Exclusive, "prune", Duration::ZERO)
            .unwrap();
        assert!(
            StoreLock::acquire(Arc::clone(&b), LockKind::Shared, "backup", Duration::ZERO).is_err()
        );
        x.check().unwrap();
        drop(x);
        assert!(list_locks(b.as_ref()).unwrap().is_empty());
    }

    #[test]
    fn releasing_a_lock_does_not_wait_for_the_heartbeat() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        // Each release used to wait for the heartbeat thread's 200 ms sleep to end; a backup
        // releases one lock per part and the store lock, so a night lost up to 0.2 s on each.
        for _ in 0..3 {
            let l = StoreLock::acquire(Arc::clone(&b), LockKind::Shared, "backup", Duration::ZERO)
                .unwrap();
            let t = std::time::Instant::now();
            drop(l);
            assert!(
                t.elapsed() < Duration::from_millis(150),
                "{:?}",
                t.elapsed()
            );
        }
        assert!(list_locks(b.as_ref()).unwrap().is_empty());
    }

    #[test]
    fn stale_lock_is_removed_and_its_holder_notices() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        let held =
            StoreLock::acquire(Arc::clone(&b), LockKind::Shared, "backup", Duration::ZERO).unwrap();
        // Age the lock as a frozen process would.
        let (key, info) = list_locks(b.as_ref()).unwrap().remove(0);
        let mut info = info.unwrap();
        info.refreshed_ns -= STALE_AFTER.as_nanos() as i64 + 1;
        write_lock(b.as_ref(), &key, &info).unwrap();
        let x = StoreLock::acquire(Arc::clone(&b), LockKind::Exclusive, "prune", Duration::ZERO)
            .unwrap();
        assert!(matches!(held.check(), Err(LockError::Lost(_))));
        drop(x);
        drop(held);
    }

    #[test]
    fn refresh_rotates_the_file_and_never_resurrects_a_removed_lock() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        let held =
            StoreLock::acquire(Arc::clone(&b), LockKind::Shared, "backup", Duration::ZERO).unwrap();
        let (old, info) = list_locks(b.as_ref()).unwrap().remove(0);
        let mut info = info.unwrap();
        assert!(refresh(b.as_ref(), &held.key, &mut info).unwrap());
        let now: Vec<String> = list_locks(b.as_ref())
            .unwrap()
            .into_iter()
            .map(|l| l.0)
            .collect();
        assert_eq!(now.len(), 1);
        assert_ne!(now[0], old, "a refresh writes a new file");
        held.check().unwrap();
        // Another process removes it as stale just before the holder thaws and refreshes.
        b.delete(&now[0]).unwrap();
        assert!(!refresh(b.as_ref(), &held.key, &mut info).unwrap());
        assert!(
            list_locks(b.as_ref()).unwrap().is_empty(),
            "not resurrected"
        );
        assert!(matches!(held.check(), Err(LockError::Lost(_))));
        drop(held);
    }

    /// A store whose deletes succeed whether or not the object is there (as S3 answers), and
    /// which runs `before_delete` once, right before the first delete: another process acting
    /// between a locker's listing and its delete.
    struct DeleteAlwaysSucceeds {
        inner: Arc<LocalBackend>,
        before_delete: parking_lot::Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    impl Backend for DeleteAlwaysSucceeds {
        fn write_atomic(&self, key: &str, data: &[u8]) -> std::io::Result<()> {
            self.inner.write_atomic(key, data)
        }
        fn read_range(&self, key: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            self.inner.read_range(key, offset, len)
        }
        fn read_all(&self, key: &str) -> std::io::Result<Vec<u8>> {
            self.inner.read_all(key)
        }
        fn size(&self, key: &str) -> std::io::Result<u64> {
            self.inner.size(key)
        }
        fn list(&self, prefix: &str) -> std::io::Result<Vec<String>> {
            self.inner.list(prefix)
        }
        fn list_deep(&self, prefix: &str) -> std::io::Result<Vec<String>> {
            self.inner.list_deep(prefix)
        }
        fn delete(&self, key: &str) -> std::io::Result<()> {
            if let Some(f) = self.before_delete.lock().take() {
                f();
            }
            match self.inner.delete(key) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
        fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
            self.inner.rename(from, to)
        }
        fn modified(&self, key: &str) -> std::io::Result<std::time::SystemTime> {
            self.inner.modified(key)
        }
        fn describe(&self, key: &str) -> String {
            self.inner.describe(key)
        }
    }

    #[test]
    fn a_lock_refreshed_while_removed_as_stale_still_holds_on_object_storage() {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalBackend::new(dir.path()));
        let held = StoreLock::acquire(
            Arc::clone(&local) as Arc<dyn Backend>,
            LockKind::Shared,
            "backup",
            Duration::ZERO,
        )
        .unwrap();
        // The holder froze: its lock looks stale to a prune.
        let (key, info) = list_locks(local.as_ref()).unwrap().remove(0);
        let mut info = info.unwrap();
        info.refreshed_ns -= STALE_AFTER.as_nanos() as i64 + 1;
        write_lock(local.as_ref(), &key, &info).unwrap();
        // It thaws and refreshes just after the prune listed the locks, before its delete;
        // the prune's delete then "succeeds" on the object already gone.
        let (holder_store, holder_key) = (Arc::clone(&local), Arc::clone(&held.key));
        let s3_like: Arc<dyn Backend> = Arc::new(DeleteAlwaysSucceeds {
            inner: Arc::clone(&local),
            before_delete: parking_lot::Mutex::new(Some(Box::new(move || {
                assert!(refresh(holder_store.as_ref(), &holder_key, &mut info).unwrap());
            }))),
        });
        let prune = StoreLock::acquire(s3_like, LockKind::Exclusive, "prune", Duration::ZERO);
        assert!(
            matches!(prune, Err(LockError::Busy(_))),
            "prune took the store while the backup holds its refreshed lock"
        );
        held.check().unwrap();
        drop(held);
    }

    #[test]
    fn dead_process_on_this_host_is_stale() {
        let info = LockInfo {
            kind: LockKind::Shared,
            command: "backup".into(),
            host: hostname(),
            pid: 999_999_999,
            started_ns: now_ns(),
            refreshed_ns: now_ns(),
            scope: None,
        };
        assert!(info.is_stale(now_ns()));
    }

    #[test]
    fn scoped_locks_exclude_only_their_own_scope() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        let take = |scope: Option<&str>| {
            StoreLock::acquire_scoped(
                Arc::clone(&b),
                LockKind::Shared,
                "backup of h/p",
                scope,
                Duration::ZERO,
            )
        };
        let a = take(Some("h/p")).unwrap();
        let err = take(Some("h/p")).err().unwrap();
        assert!(err.to_string().contains("backup of h/p (pid"), "{err}");
        // Other parts, other hosts and unscoped shared locks run beside it.
        let _other_part = take(Some("h/q")).unwrap();
        let _other_host = take(Some("g/p")).unwrap();
        let _plain = take(None).unwrap();
        drop(a);
        let _again = take(Some("h/p")).unwrap();
        // Lock files of older versions have no scope and still parse.
        let old = r#"{"kind":"shared","command":"backup","host":"x","pid":1,"started_ns":1,"refreshed_ns":1}"#;
        let info: LockInfo = serde_json::from_str(old).unwrap();
        assert_eq!(info.scope, None);
    }
}
