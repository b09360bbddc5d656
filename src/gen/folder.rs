//! One mail folder on disk (its `<uid>.` message files and `cyrus.*` files) and a user's
//! mailbox of folders: what both the initial spool and the daily churn write through.

use super::cyrus::{self, FolderIndex, IndexRecord};
use super::mail::Composed;
use super::rng::Rng;
use super::spool::label;
use super::{set_mode, set_times, GenError, IoContext};
use std::fs::{File, FileTimes, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) const INBOX: usize = 0;

/// One folder being written: its directory, index and not-yet-appended cache records.
pub(crate) struct Folder {
    pub name: String,
    pub dir: PathBuf,
    pub index: FolderIndex,
    pub cache_len: u64,
    pub pending_cache: Vec<u8>,
    pub touched: bool,
    /// A message file was added or removed: the directory's mtime changes with the index.
    pub names_changed: bool,
}

impl Folder {
    /// Creates the directory and `cyrus.header` / empty `cyrus.cache`.
    pub fn create(
        dir: PathBuf,
        name: String,
        mailbox: &str,
        owner: &str,
        seed: u64,
    ) -> Result<Self, GenError> {
        std::fs::create_dir_all(&dir).ctx("create", &dir)?;
        set_mode(&dir, 0o700)?;
        let unique_id = Rng::derive(seed, label(mailbox)).next_u64();
        write_file(
            &dir.join(cyrus::HEADER_FILE),
            &cyrus::header_bytes(mailbox, owner, unique_id),
            None,
        )?;
        let cache = cyrus::cache_file_header();
        write_file(&dir.join(cyrus::CACHE_FILE), &cache, None)?;
        Ok(Folder {
            name,
            dir,
            index: FolderIndex {
                generation: 1,
                ..FolderIndex::default()
            },
            cache_len: cache.len() as u64,
            pending_cache: Vec::new(),
            touched: true,
            names_changed: true,
        })
    }

    /// Loads an existing folder (for the daily churn).
    pub fn open(dir: PathBuf, name: String) -> Result<Self, GenError> {
        let index = FolderIndex::read(&dir.join(cyrus::INDEX_FILE))?;
        let cache_path = dir.join(cyrus::CACHE_FILE);
        let cache_len = std::fs::metadata(&cache_path)
            .ctx("stat", &cache_path)?
            .len();
        Ok(Folder {
            name,
            dir,
            index,
            cache_len,
            pending_cache: Vec::new(),
            touched: false,
            names_changed: false,
        })
    }

    pub fn message_path(&self, uid: u32) -> PathBuf {
        self.dir.join(format!("{uid}."))
    }

    fn next_uid(&mut self) -> u32 {
        self.index.last_uid += 1;
        self.index.last_uid
    }

    /// Adds a record (and its cache entry) for a message whose file is already in place.
    pub fn add_record(&mut self, mut record: IndexRecord, cache_payload: &[u8]) {
        record.cache_offset = (self.cache_len + self.pending_cache.len() as u64) as u32;
        self.pending_cache
            .extend_from_slice(&cyrus::cache_record(cache_payload));
        self.index.last_updated = self.index.last_updated.max(record.last_updated);
        self.index.records.push(record);
        self.touched = true;
        self.names_changed = true;
    }

    /// Reserves a uid for a message moved in from another folder.
    pub fn reserve_uid(&mut self) -> u32 {
        self.next_uid()
    }

    /// Writes one message file and records it.
    pub fn deliver(
        &mut self,
        msg: &Composed,
        guid: [u8; 20],
        date: i64,
        flags: u32,
    ) -> Result<u64, GenError> {
        let uid = self.next_uid();
        write_file(&self.message_path(uid), &msg.bytes, Some(date))?;
        let record = IndexRecord {
            uid,
            internal_date: date,
            size: msg.bytes.len() as u32,
            header_size: msg.header_size,
            cache_offset: 0,
            flags,
            last_updated: date,
            guid,
        };
        self.add_record(record, &msg.cache);
        Ok(msg.bytes.len() as u64)
    }

    /// Rewrites `cyrus.index`, appends the pending cache records and stamps the folder's files
    /// and directory with `mtime`, as the last change Cyrus made to them.
    pub fn flush(&mut self, mtime: i64) -> Result<(), GenError> {
        if !self.touched {
            return Ok(());
        }
        self.index.last_updated = self.index.last_updated.max(mtime);
        let index_path = self.dir.join(cyrus::INDEX_FILE);
        write_file(&index_path, &self.index.encode(), Some(mtime))?;
        // A flag change rewrites the index alone; the cache and the directory change with the
        // message files (added, moved or removed).
        if !self.pending_cache.is_empty() || self.names_changed {
            let cache_path = self.dir.join(cyrus::CACHE_FILE);
            let mut cache = OpenOptions::new()
                .append(true)
                .open(&cache_path)
                .ctx("open", &cache_path)?;
            cache
                .write_all(&self.pending_cache)
                .ctx("append to", &cache_path)?;
            drop(cache);
            self.cache_len += self.pending_cache.len() as u64;
            self.pending_cache.clear();
            set_times(&cache_path, mtime, 0)?;
        }
        if self.names_changed {
            set_times(&self.dir, mtime, 0)?;
        }
        self.touched = false;
        self.names_changed = false;
        Ok(())
    }
}

/// A user's mailbox: address, and folders (INBOX first).
pub(crate) struct Mailbox {
    pub display: String,
    pub address: String,
    pub folders: Vec<Folder>,
}

impl Mailbox {
    pub fn folder(&self, name: &str) -> Option<usize> {
        self.folders.iter().position(|f| f.name == name)
    }
}

/// Writes a whole file with mode 0600 and, if given, its atime/mtime.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mtime: Option<i64>) -> Result<(), GenError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .ctx("create", path)?;
    f.write_all(bytes).ctx("write", path)?;
    stamp(&f, path, mtime)
}

fn stamp(f: &File, path: &Path, mtime: Option<i64>) -> Result<(), GenError> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .ctx("chmod", path)?;
    if let Some(t) = mtime {
        let t = system_time(t);
        f.set_times(FileTimes::new().set_accessed(t).set_modified(t))
            .ctx("set times of", path)?;
    }
    Ok(())
}

fn system_time(unix: i64) -> SystemTime {
    if unix >= 0 {
        UNIX_EPOCH + Duration::from_secs(unix as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    }
}
