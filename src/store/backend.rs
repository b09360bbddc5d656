//! The one interface all store I/O goes through (write an immutable object atomically, read a byte
//! range, list, delete) and its first implementation: a local or NFS-mounted folder. An object
//! storage backend can be added by implementing [`Backend`]; nothing else in the crate touches files
//! of the store directly.
//!
//! Reads keep a few objects open (packs are read blob by blob: a restore or a mount would
//! otherwise open and close a pack for every blob). Objects are immutable, so an open handle
//! reads the right bytes even after its object is deleted; handles are still closed when this
//! process deletes or renames the object, after [`HANDLE_TTL`] (so that space freed by a prune
//! elsewhere is not held), and reopened once when a read through them fails.

use lru::LruCache;
use parking_lot::Mutex;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prefix of temp objects: leftovers of interrupted writes, safe to delete when old.
pub const TEMP_PREFIX: &str = ".tmp-";

/// The temp name `name` is written under: `.tmp-<pid>+<host>+<unique>-<name>`, so that a later
/// run on the same host can tell a leftover of a killed writer (pid gone) from a write in
/// progress. (Older versions wrote `.tmp-<pid>-<unique>-<name>`: no host, so such leftovers
/// are left to `repair`.)
pub fn temp_name(name: &str, host: &str, pid: u32) -> String {
    format!(
        "{TEMP_PREFIX}{pid}+{}+{}-{name}",
        temp_host(host),
        unique_suffix()
    )
}

/// A host name as it appears in temp names: no `+` or `/`, at most 64 bytes.
fn temp_host(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// The host and pid that wrote a temp object, when its name says (see [`temp_name`]).
pub fn temp_writer(name: &str) -> Option<(String, u32)> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let (pid, rest) = rest.split_once('+')?;
    let (host, _) = rest.split_once('+')?;
    // Only what can be a process id: kill(2) reads 0 and negative numbers as process groups.
    let pid: u32 = pid
        .parse()
        .ok()
        .filter(|p| *p > 0 && *p <= i32::MAX as u32 && pid.bytes().all(|b| b.is_ascii_digit()))?;
    Some((host.to_string(), pid))
}

/// Whether a temp object was written on this host by a process that is gone: it can only be a
/// leftover of a killed writer (a live writer, or one on another host, is never judged).
pub fn temp_writer_is_gone(name: &str) -> bool {
    match temp_writer(name) {
        Some((host, pid)) => {
            host == temp_host(&super::lock::hostname()) && !super::lock::pid_alive(pid)
        }
        None => false,
    }
}

/// Storage for immutable objects named by relative keys such as `packs/ab/abcd….pack`.
pub trait Backend: Send + Sync {
    /// Writes `data` under `key` so that readers see either nothing or the whole object, durably.
    fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()>;
    /// Reads `len` bytes at `offset`; a short object is an `UnexpectedEof` error.
    fn read_range(&self, key: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    fn read_all(&self, key: &str) -> io::Result<Vec<u8>>;
    fn size(&self, key: &str) -> io::Result<u64>;
    /// Names of the objects directly under the folder `prefix` (no recursion, temp objects included).
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Paths (relative to `prefix`, `/`-separated) of every object under the folder `prefix`,
    /// at any depth: one listing on object storage instead of one per sub-folder.
    fn list_deep(&self, prefix: &str) -> io::Result<Vec<String>>;
    fn delete(&self, key: &str) -> io::Result<()>;
    /// Moves an object to another key (repair sets damaged files aside, never deletes them).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// When the object was last written (repair only removes temp objects older than a margin).
    fn modified(&self, key: &str) -> io::Result<std::time::SystemTime>;
    /// Human-readable location of an object, for error messages.
    fn describe(&self, key: &str) -> String;
    /// Forgets anything kept open for `key`: the next read sees the object as it is now.
    fn forget(&self, _key: &str) {}
    /// Closes objects kept open for longer than `older_than`.
    fn close_idle(&self, _older_than: Duration) {}
    /// Whether telling the backend the reads to come pays (object storage: each request costs
    /// a round trip), see [`Backend::plan_reads`].
    fn plans_reads(&self) -> bool {
        false
    }
    /// The `(key, offset, len)` reads to come, in the order they will be made (a restore's
    /// chunks): the backend may fetch each needed range once, several at a time. An empty
    /// list ends the plan.
    fn plan_reads(&self, _reads: Vec<(String, u64, usize)>) {}
    /// Bytes the store takes, when the backend knows it cheaply without a local walk (a local
    /// store's size is measured on disk by the caller).
    fn stored_bytes(&self) -> io::Result<Option<u64>> {
        Ok(None)
    }
    /// Files and folders of the store that other users may read, with their modes (a backend
    /// without Unix modes has none).
    fn loose_modes(&self) -> io::Result<Vec<(String, u32)>> {
        Ok(Vec::new())
    }
    /// Makes the store private again (see `store::private`); returns what it changed.
    fn tighten_modes(&self) -> io::Result<Vec<(String, u32)>> {
        Ok(Vec::new())
    }
}

/// How many objects a [`LocalBackend`] keeps open for reading.
const OPEN_HANDLES: usize = 64;
/// How long a handle is used before the object is opened again.
pub const HANDLE_TTL: Duration = Duration::from_secs(10);

/// A store folder on a local or network file system.
pub struct LocalBackend {
    root: PathBuf,
    /// Objects open for reading, with when they were opened.
    handles: Mutex<LruCache<String, (Arc<File>, Instant)>>,
}

impl LocalBackend {
    pub fn new(root: &Path) -> Self {
        LocalBackend {
            root: root.to_path_buf(),
            handles: Mutex::new(LruCache::new(
                NonZeroUsize::new(OPEN_HANDLES).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// How many objects are kept open (for tests).
    pub fn open_handles(&self) -> usize {
        self.handles.lock().len()
    }

    /// A kept handle for `key` younger than [`HANDLE_TTL`].
    fn cached(&self, key: &str) -> Option<Arc<File>> {
        let mut handles = self.handles.lock();
        match handles.get(key) {
            Some((f, at)) if at.elapsed() < HANDLE_TTL => Some(f.clone()),
            Some(_) => {
                handles.pop(key);
                None
            }
            None => None,
        }
    }

    fn open_kept(&self, key: &str) -> io::Result<Arc<File>> {
        let f = Arc::new(File::open(self.path(key))?);
        self.handles
            .lock()
            .put(key.to_string(), (f.clone(), Instant::now()));
        Ok(f)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Backend for LocalBackend {
    fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let path = self.path(key);
        let dir = path.parent().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "object key has no folder")
        })?;
        let created_dir = !dir.exists();
        super::private::create_dir_all(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(temp_name(
            &name,
            &super::lock::hostname(),
            std::process::id(),
        ));
        let result = (|| {
            // Made and registered in one step (see interrupt::create).
            let (mut f, _registered) = super::interrupt::create(|| {
                super::private::create_new(&tmp)
                    .map(|f| (f, super::interrupt::Leftover::Path(tmp.clone())))
            })?;
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &path)?;
            fsync_dir(dir)?;
            if created_dir {
                if let Some(parent) = dir.parent() {
                    fsync_dir(parent)?;
                }
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn read_range(&self, key: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        if let Some(f) = self.cached(key) {
            if f.read_exact_at(&mut buf, offset).is_ok() {
                return Ok(buf);
            }
            // The handle went bad (a share's stale handle, an object replaced by a shorter
            // one): what counts is the object as it is now.
            self.forget(key);
        }
        self.open_kept(key)?.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    fn read_all(&self, key: &str) -> io::Result<Vec<u8>> {
        let mut f = File::open(self.path(key))?;
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn size(&self, key: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.path(key))?.len())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let dir = self.path(prefix);
        let mut out = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for ent in rd {
            let ent = ent?;
            if let Some(name) = ent.file_name().to_str() {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    fn list_deep(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let dir = self.path(prefix).join(&rel);
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for ent in rd {
                let ent = ent?;
                let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let path = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if ent.file_type()?.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        // An open handle would keep the space of the deleted object allocated.
        self.forget(key);
        fs::remove_file(self.path(key))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let dest = self.path(to);
        let dir = dest.parent().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "object key has no folder")
        })?;
        super::private::create_dir_all(dir)?;
        self.forget(from);
        self.forget(to);
        fs::rename(self.path(from), &dest)?;
        fsync_dir(dir)?;
        if let Some(src_dir) = self.path(from).parent() {
            fsync_dir(src_dir)?;
        }
        Ok(())
    }

    fn modified(&self, key: &str) -> io::Result<std::time::SystemTime> {
        fs::symlink_metadata(self.path(key))?.modified()
    }

    fn describe(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    fn forget(&self, key: &str) {
        self.handles.lock().pop(key);
    }

    fn loose_modes(&self) -> io::Result<Vec<(String, u32)>> {
        let found = super::private::loose_modes(&self.root)?;
        Ok(found
            .into_iter()
            .map(|(p, m)| (p.display().to_string(), m))
            .collect())
    }

    fn tighten_modes(&self) -> io::Result<Vec<(String, u32)>> {
        let changed = super::private::tighten(&self.root)?;
        Ok(changed
            .into_iter()
            .map(|(p, m)| (p.display().to_string(), m))
            .collect())
    }

    fn close_idle(&self, older_than: Duration) {
        let mut handles = self.handles.lock();
        let old: Vec<String> = handles
            .iter()
            .filter(|(_, (_, at))| at.elapsed() >= older_than)
            .map(|(k, _)| k.clone())
            .collect();
        for k in old {
            handles.pop(&k);
        }
    }
}

/// A suffix unique within this process and unlikely to collide across hosts writing one store.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = blake3::hash(format!("{t}-{n}-{}", std::process::id()).as_bytes());
    h.to_hex()[..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.write_atomic("packs/ab/x.pack", b"hello world").unwrap();
        assert_eq!(b.read_range("packs/ab/x.pack", 6, 5).unwrap(), b"world");
        assert_eq!(b.size("packs/ab/x.pack").unwrap(), 11);
        assert_eq!(b.list("packs/ab").unwrap(), vec!["x.pack".to_string()]);
        assert!(b.read_range("packs/ab/x.pack", 8, 5).is_err());
        b.delete("packs/ab/x.pack").unwrap();
        assert!(b.list("packs/ab").unwrap().is_empty());
    }

    #[test]
    fn temp_names_tell_their_writer() {
        let name = temp_name("ab.pack", "mx1.example.org", 4242);
        assert!(
            name.starts_with(TEMP_PREFIX) && name.ends_with("-ab.pack"),
            "{name}"
        );
        assert_eq!(
            temp_writer(&name),
            Some(("mx1.example.org".to_string(), 4242))
        );
        let odd = temp_name("x.lock", "a+b/c d", 7);
        assert_eq!(temp_writer(&odd), Some(("a_b_c_d".to_string(), 7)));
        // Names of older versions, and anything else, have no writer.
        for other in [
            ".tmp-4242-0123456789ab-ab.pack",
            "ab.pack",
            ".tmp-+h+x",
            ".tmp-1 +h+x",
        ] {
            assert_eq!(temp_writer(other), None, "{other}");
            assert!(!temp_writer_is_gone(other));
        }
        let host = super::super::lock::hostname();
        assert!(!temp_writer_is_gone(&temp_name(
            "x",
            &host,
            std::process::id()
        )));
        // Above the kernel's PID_MAX_LIMIT: never a live process.
        let dead = 4_194_305;
        assert!(!temp_writer_is_gone(&temp_name("x", "elsewhere", dead)));
        assert!(temp_writer_is_gone(&temp_name("x", &host, dead)));
        assert_eq!(temp_writer(&temp_name("x", &host, 0)), None);
        assert_eq!(temp_writer(&temp_name("x", &host, u32::MAX)), None);
    }

    #[test]
    fn kept_handles_follow_the_objects() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        let key = "packs/ab/x.pack";
        b.write_atomic(key, b"hello world").unwrap();
        assert_eq!(b.read_range(key, 6, 5).unwrap(), b"world");
        assert_eq!(b.read_range(key, 0, 5).unwrap(), b"hello");
        assert_eq!(b.open_handles(), 1);
        // Replaced by a longer object: reading past the old end fails on the kept handle, so
        // the object is opened again and read as it is now.
        b.write_atomic(key, b"HELLO WORLD, again").unwrap();
        assert_eq!(b.read_range(key, 13, 5).unwrap(), b"again");
        assert_eq!(b.read_range(key, 6, 5).unwrap(), b"WORLD");
        // Deleted by someone else (prune in another process): once the handle is forgotten,
        // reading says NotFound, which makes readers re-sync the catalog.
        fs::remove_file(b.path(key)).unwrap();
        b.forget(key);
        let e = b.read_range(key, 0, 5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // Put back; deleting through the backend closes the handle at once.
        b.write_atomic(key, b"back").unwrap();
        assert_eq!(b.read_range(key, 0, 4).unwrap(), b"back");
        b.delete(key).unwrap();
        assert_eq!(b.open_handles(), 0);
        assert_eq!(
            b.read_range(key, 0, 4).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // Handles are bounded and closed when idle.
        for i in 0..(OPEN_HANDLES + 10) {
            let k = format!("packs/cd/{i}.pack");
            b.write_atomic(&k, b"x").unwrap();
            assert_eq!(b.read_range(&k, 0, 1).unwrap(), b"x");
        }
        assert_eq!(b.open_handles(), OPEN_HANDLES);
        b.close_idle(Duration::from_secs(3600));
        assert_eq!(b.open_handles(), OPEN_HANDLES);
        b.close_idle(Duration::ZERO);
        assert_eq!(b.open_handles(), 0);
    }
}
