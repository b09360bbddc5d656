//! The console's one password: stored as an argon2 hash (a slow hash, salted) in a file that
//! only its owner may read (0600; the console refuses a looser file), and checked at login.
//! Failed logins are slowed down per client address: after a failure a client must wait
//! before it may try again, twice as long after each further failure; an attempt is counted
//! before its password is checked, so parallel attempts cannot share one turn.

use super::ConsoleError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Shorter passwords are refused by `--set-password`.
const MIN_LEN: usize = 8;
/// The longest wait between two attempts of one client.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The password file.
#[derive(Debug, Clone)]
pub struct PasswordFile {
    pub path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConsoleError + '_ {
    move |source| ConsoleError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Hashes `password` and writes it to `path` (0600, replaced atomically).
pub fn set_password(path: &Path, password: &str) -> Result<(), ConsoleError> {
    if password.chars().count() < MIN_LEN {
        return Err(ConsoleError::Password(format!(
            "the password is too short: give at least {MIN_LEN} characters"
        )));
    }
    let bytes = super::session::random_bytes::<16>().map_err(io(Path::new("/dev/urandom")))?;
    let salt = SaltString::encode_b64(&bytes)
        .map_err(|e| ConsoleError::Password(format!("cannot make a salt: {e}")))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| ConsoleError::Password(format!("cannot hash the password: {e}")))?
        .to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(format!("{hash}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl PasswordFile {
    /// The stored hash; refuses a missing file or one that others may read.
    pub fn load(&self) -> Result<String, ConsoleError> {
        let md = std::fs::metadata(&self.path).map_err(|e| {
            ConsoleError::Password(format!(
                "no console password at {} ({e}): set one with `bmbackup console --set-password`",
                self.path.display()
            ))
        })?;
        if md.permissions().mode() & 0o077 != 0 {
            return Err(ConsoleError::Password(format!(
                "{} may be read by others: `chmod 600` it (or set the password again)",
                self.path.display()
            )));
        }
        let text = std::fs::read_to_string(&self.path).map_err(io(&self.path))?;
        let hash = text.trim().to_string();
        PasswordHash::new(&hash).map_err(|e| {
            ConsoleError::Password(format!(
                "{} holds no password hash ({e}): set the password again",
                self.path.display()
            ))
        })?;
        Ok(hash)
    }
}

/// True when `password` matches the stored `hash`.
pub fn verify(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Failed logins per client address: how many in a row, and until when it must wait.
#[derive(Default)]
pub struct Throttle {
    clients: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    /// Starts a login attempt of `ip`: refused with the time left while it must wait;
    /// otherwise the attempt is counted as failed at once (and the next one made to wait)
    /// before the password is checked, so attempts sent in parallel cannot slip in between
    /// the check and the count: one is checked, the others wait their turn.
    /// [`Throttle::succeeded`] clears the record.
    pub fn begin(&self, ip: IpAddr) -> Result<Duration, Duration> {
        let now = Instant::now();
        let mut clients = self.clients.lock();
        if let Some(left) = clients
            .get(&ip)
            .and_then(|(_, until)| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
        {
            return Err(left);
        }
        if clients.len() > 10_000 {
            // Bounded memory: forget clients whose wait is over.
            clients.retain(|_, (_, until)| *until > now);
        }
        let e = clients.entry(ip).or_insert((0, now));
        e.0 = e.0.saturating_add(1);
        let wait = Duration::from_secs(1u64 << e.0.saturating_sub(1).min(16)).min(MAX_BACKOFF);
        e.1 = now + wait;
        Ok(wait)
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.clients.lock().remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_file_round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/console-password");
        assert!(set_password(&path, "short").is_err());
        set_password(&path, "correct horse").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let pf = PasswordFile { path: path.clone() };
        let hash = pf.load().unwrap();
        assert!(!hash.contains("correct horse"));
        assert!(verify(&hash, "correct horse"));
        assert!(!verify(&hash, "correct horsE"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(pf.load().is_err());
    }

    #[test]
    fn failures_double_the_wait() {
        let t = Throttle::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(t.begin(ip), Ok(Duration::from_secs(1)));
        // The first attempt's wait is not over: the next is refused, not checked.
        assert!(t.begin(ip).is_err());
        assert!(t.begin("10.0.0.2".parse().unwrap()).is_ok());
        t.clients.lock().get_mut(&ip).unwrap().1 = Instant::now();
        assert_eq!(t.begin(ip), Ok(Duration::from_secs(2)));
        t.clients.lock().get_mut(&ip).unwrap().1 = Instant::now();
        assert_eq!(t.begin(ip), Ok(Duration::from_secs(4)));
        t.succeeded(ip);
        assert_eq!(t.begin(ip), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn parallel_attempts_are_checked_one_at_a_time() {
        let t = std::sync::Arc::new(Throttle::default());
        let ip: IpAddr = "10.0.0.3".parse().unwrap();
        let admitted: usize = (0..16)
            .map(|_| {
                let t = std::sync::Arc::clone(&t);
                std::thread::spawn(move || usize::from(t.begin(ip).is_ok()))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(admitted, 1);
    }
}
