//! The one interface all store I/O goes through (write an immutable object atomically, read a byte
//! range, list, delete) and its first implementation: a local or NFS-mounted folder. An object
//! storage backend can be added by implementing [`Backend`]; nothing else in the crate touches files
//! of the store directly.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Prefix of temp objects: leftovers of interrupted writes, safe to delete when old.
pub const TEMP_PREFIX: &str = ".tmp-";

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
    fn delete(&self, key: &str) -> io::Result<()>;
    /// Moves an object to another key (repair sets damaged files aside, never deletes them).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// When the object was last written (repair only removes temp objects older than a margin).
    fn modified(&self, key: &str) -> io::Result<std::time::SystemTime>;
    /// Human-readable location of an object, for error messages.
    fn describe(&self, key: &str) -> String;
}

/// A store folder on a local or network file system.
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: &Path) -> Self {
        LocalBackend {
            root: root.to_path_buf(),
        }
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
        fs::create_dir_all(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            "{TEMP_PREFIX}{}-{}-{name}",
            std::process::id(),
            unique_suffix()
        ));
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
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
        let f = File::open(self.path(key))?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset)?;
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

    fn delete(&self, key: &str) -> io::Result<()> {
        fs::remove_file(self.path(key))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let dest = self.path(to);
        let dir = dest.parent().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "object key has no folder")
        })?;
        fs::create_dir_all(dir)?;
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
}
