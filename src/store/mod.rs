//! The store: a folder of immutable, self-describing files (format file, packs, snapshot
//! manifests) reached only through a [`Backend`]. This module owns the layout and the format
//! version; packs are in `pack.rs`, the I/O primitives in `backend.rs` (a local or NFS folder)
//! and `s3.rs` (a bucket: a location `s3://BUCKET/PREFIX`).

pub mod backend;
pub mod damage;
pub mod interrupt;
pub mod lock;
pub mod pack;
pub mod private;
pub mod s3;
pub mod s3http;
pub mod s3plan;
pub mod s3traffic;
pub mod sigv4;

use crate::chunker::ChunkParams;
use crate::id::{Digest, PackId, SnapshotId};
use crate::model::Manifest;
use backend::{Backend, LocalBackend, TEMP_PREFIX};
use pack::{parse_index, parse_trailer, IndexEntry, PackError, TRAILER_LEN};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the format file at the root of every store. Do not change.
pub const FORMAT_FILE: &str = "bmbackup-store.json";
pub const FORMAT_MAGIC: &str = "bmbackup-store";
/// Major version: a reader refuses other majors. Minor: newer readers read every older minor.
pub const FORMAT_MAJOR: u32 = 1;
/// 1.1: the format file records the chunk sizes (1.0 stores used [`ChunkParams::FORMAT_1_0`]).
/// 1.2: tree entries record their filesystem index, allocated blocks and inode flags (tree
/// version 2; version 1 trees are still read).
/// 1.3: folders of more than 4096 entries are paged: a tree index (tree version 3) lists pages
/// that are ordinary version 2 trees (`pages.rs`); smaller folders are encoded as in 1.2.
pub const FORMAT_MINOR: u32 = 3;
pub const PACKS_DIR: &str = "packs";
pub const SNAPSHOTS_DIR: &str = "snapshots";
pub const LOCKS_DIR: &str = "locks";
pub(crate) const MANIFEST_SUFFIX: &str = ".json";
pub(crate) const PACK_SUFFIX: &str = ".pack";

/// Errors of store access, each naming the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path} is not a bmbackup store ({detail}){hint}")]
    NotAStore {
        path: String,
        detail: String,
        hint: &'static str,
    },
    #[error("{path} is already a bmbackup store (format {major}.{minor}, id {id}); nothing to do")]
    AlreadyAStore {
        path: String,
        major: u32,
        minor: u32,
        id: String,
    },
    #[error("{path}: store format {major}.{minor} is not readable by this bmbackup (format {FORMAT_MAJOR}.{FORMAT_MINOR}); use a newer bmbackup")]
    Version {
        path: String,
        major: u32,
        minor: u32,
    },
    #[error("{path} is not empty; `bmbackup init` only creates a store in a new or empty folder")]
    NotEmpty { path: String },
    #[error(transparent)]
    S3(#[from] s3::S3Error),
    #[error("damaged {what} in {path}: {detail}; run `bmbackup check` to see which snapshots are affected")]
    Corrupt {
        what: String,
        path: String,
        detail: String,
    },
}

/// Why `root` holds no store. A store path that is missing or an empty folder is most often a
/// network share that is not mounted (the mount point's folder is empty): say so rather than
/// invite `init`, which would start a second, empty store there.
fn not_a_store(root: &Path, shown: String) -> StoreError {
    const UNMOUNTED: &str = " — is the NFS share mounted?";
    let empty = match std::fs::read_dir(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some("the folder does not exist"),
        Ok(mut rd) => rd.next().is_none().then_some("the folder is empty"),
        Err(_) => None,
    };
    let (detail, hint) = match empty {
        Some(why) => (why.to_string(), UNMOUNTED),
        None => (format!("no {FORMAT_FILE}"), ""),
    };
    StoreError::NotAStore {
        path: shown,
        detail,
        hint,
    }
}

impl StoreError {
    /// True for damage to data already in the store (as opposed to I/O or usage errors).
    pub fn is_corruption(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Contents of the format file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormatInfo {
    pub magic: String,
    pub format_major: u32,
    pub format_minor: u32,
    pub store_id: String,
    pub created_ns: i64,
    /// How files are cut into chunks; absent in format 1.0.
    #[serde(default = "format_1_0_chunking")]
    pub chunking: ChunkParams,
}

fn format_1_0_chunking() -> ChunkParams {
    ChunkParams::FORMAT_1_0
}

/// An opened store.
pub struct Store {
    backend: Arc<dyn Backend>,
    root: PathBuf,
    pub info: FormatInfo,
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn io_err(path: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

/// Warns (once per process) when others can read the store: made by an older bmbackup or
/// chmod'ed. `check` reports every such file; `repair --fix-modes` tightens them.
fn warn_if_loose(root: &Path) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Ok(Some((path, mode))) = private::top_is_loose(root) {
        WARNED.call_once(|| {
            log::warn!(
                "{} is open to other users (mode {mode:04o}): anyone on this machine may read the \
                 backed-up mail; run `bmbackup repair --fix-modes` to make the store private",
                path.display()
            )
        });
    }
}

impl Store {
    /// Creates a store in a new or empty folder, or under an unused prefix of a bucket
    /// (`s3://BUCKET/PREFIX`).
    pub fn init(root: &Path, chunking: ChunkParams) -> Result<Store> {
        let shown = root.display().to_string();
        if let Ok(existing) = Store::open(root) {
            return Err(StoreError::AlreadyAStore {
                path: shown,
                major: existing.info.format_major,
                minor: existing.info.format_minor,
                id: existing.info.store_id,
            });
        }
        let backend: Arc<dyn Backend> = if s3::is_s3(root) {
            let backend = s3::S3Backend::open(root)?;
            // Objects under the prefix: another store, or something else, is there.
            if !backend.list("").map_err(io_err(&shown))?.is_empty() {
                return Err(StoreError::NotEmpty { path: shown });
            }
            Arc::new(backend)
        } else {
            Self::init_folder(root, &shown)?;
            Arc::new(LocalBackend::new(root))
        };
        let info = FormatInfo {
            magic: FORMAT_MAGIC.to_string(),
            format_major: FORMAT_MAJOR,
            format_minor: FORMAT_MINOR,
            store_id: backend::unique_suffix() + &backend::unique_suffix(),
            created_ns: now_ns(),
            chunking,
        };
        let json = serde_json::to_vec_pretty(&info).map_err(|e| StoreError::Corrupt {
            what: "format file".into(),
            path: shown.clone(),
            detail: e.to_string(),
        })?;
        backend
            .write_atomic(FORMAT_FILE, &json)
            .map_err(io_err(backend.describe(FORMAT_FILE)))?;
        Ok(Store {
            backend,
            root: root.to_path_buf(),
            info,
        })
    }

    /// Makes the new or empty folder `root` a private store folder with its sub-folders.
    fn init_folder(root: &Path, shown: &str) -> Result<()> {
        match std::fs::read_dir(root) {
            Ok(mut rd) => {
                if rd.next().is_some() {
                    return Err(StoreError::NotEmpty {
                        path: shown.to_string(),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                private::create_dir_all(root).map_err(io_err(shown))?;
            }
            Err(e) => return Err(io_err(shown)(e)),
        }
        // An empty folder made for the store (a mount point, say) becomes the store: private.
        private::tighten(root).map_err(io_err(shown))?;
        for dir in [PACKS_DIR, SNAPSHOTS_DIR, LOCKS_DIR] {
            private::create_dir_all(&root.join(dir)).map_err(io_err(shown))?;
        }
        Ok(())
    }

    /// Opens the store at `root`: a folder, or `s3://BUCKET/PREFIX` (with the settings given
    /// to [`s3::configure`] and the `AWS_*` environment).
    pub fn open(root: &Path) -> Result<Store> {
        let shown = root.display().to_string();
        let s3 = s3::is_s3(root);
        let backend: Arc<dyn Backend> = if s3 {
            Arc::new(s3::S3Backend::open(root)?)
        } else {
            Arc::new(LocalBackend::new(root))
        };
        let bytes = match backend.read_all(FORMAT_FILE) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound && s3 => {
                return Err(StoreError::NotAStore {
                    path: shown,
                    detail: format!("no {FORMAT_FILE} under this prefix"),
                    hint: "",
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_a_store(root, shown));
            }
            Err(e) => return Err(io_err(backend.describe(FORMAT_FILE))(e)),
        };
        let info: FormatInfo = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: "format file".into(),
            path: backend.describe(FORMAT_FILE),
            detail: e.to_string(),
        })?;
        if info.magic != FORMAT_MAGIC {
            return Err(StoreError::NotAStore {
                path: shown,
                detail: format!("{FORMAT_FILE} has magic {:?}", info.magic),
                hint: "",
            });
        }
        if !info.chunking.is_valid() {
            return Err(StoreError::Corrupt {
                what: "format file".into(),
                path: backend.describe(FORMAT_FILE),
                detail: format!("impossible chunk sizes {:?}", info.chunking),
            });
        }
        if info.format_major != FORMAT_MAJOR {
            return Err(StoreError::Version {
                path: shown,
                major: info.format_major,
                minor: info.format_minor,
            });
        }
        if !s3 {
            warn_if_loose(root);
        }
        Ok(Store {
            backend,
            root: root.to_path_buf(),
            info,
        })
    }

    /// The store's folder on this machine; `None` for a store on object storage.
    pub fn local_root(&self) -> Option<&Path> {
        (!s3::is_s3(&self.root)).then_some(self.root.as_path())
    }

    /// Where the store is: its folder, or `s3://BUCKET/PREFIX`, as given (for messages).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    pub fn shared_backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }

    pub fn pack_key(id: &PackId) -> String {
        let hex = id.to_hex();
        format!("{PACKS_DIR}/{}/{hex}{PACK_SUFFIX}", &hex[..2])
    }

    pub fn manifest_key(id: &SnapshotId) -> String {
        format!("{SNAPSHOTS_DIR}/{}{MANIFEST_SUFFIX}", id.to_hex())
    }

    pub fn describe_pack(&self, id: &PackId) -> String {
        self.backend.describe(&Self::pack_key(id))
    }

    /// Writes a finished pack atomically.
    pub fn write_pack(&self, id: &PackId, bytes: &[u8]) -> Result<()> {
        let key = Self::pack_key(id);
        self.backend
            .write_atomic(&key, bytes)
            .map_err(io_err(self.backend.describe(&key)))
    }

    /// Every committed pack in the store (temp files excluded).
    pub fn list_packs(&self) -> Result<Vec<PackId>> {
        let names = self
            .backend
            .list_deep(PACKS_DIR)
            .map_err(io_err(self.backend.describe(PACKS_DIR)))?;
        Ok(names
            .iter()
            .filter_map(|n| n.split_once('/'))
            .filter(|(d, _)| d.len() == 2)
            .filter_map(|(_, name)| name.strip_suffix(PACK_SUFFIX))
            .filter_map(|hex| hex.parse::<Digest>().ok())
            .map(PackId)
            .collect())
    }

    /// Reads and checks a pack's index (trailer and index only, not the blobs).
    pub fn read_pack_index(&self, id: &PackId) -> Result<(u64, Vec<IndexEntry>)> {
        let key = Self::pack_key(id);
        let path = self.backend.describe(&key);
        let size = self.backend.size(&key).map_err(io_err(&path))?;
        let corrupt = |e: PackError| StoreError::Corrupt {
            what: "pack index".into(),
            path: path.clone(),
            detail: e.to_string(),
        };
        if size < TRAILER_LEN as u64 {
            return Err(corrupt(PackError::BadTrailer));
        }
        let tb = self
            .backend
            .read_range(&key, size - TRAILER_LEN as u64, TRAILER_LEN)
            .map_err(io_err(&path))?;
        let trailer = parse_trailer(&tb, size).map_err(corrupt)?;
        let index_len = (size - TRAILER_LEN as u64 - trailer.index_offset) as usize;
        let ib = self
            .backend
            .read_range(&key, trailer.index_offset, index_len)
            .map_err(io_err(&path))?;
        let entries = parse_index(&ib, &trailer).map_err(corrupt)?;
        Ok((size, entries))
    }

    /// Reads one blob and verifies it against its hash.
    pub fn read_blob(&self, pack: &PackId, entry: &IndexEntry) -> Result<Vec<u8>> {
        let frame = self.read_frame(pack, entry)?;
        if let Ok(blob) = pack::open_blob(&frame, entry) {
            return Ok(blob);
        }
        // Read through a kept handle, the bytes may be those of a damaged pack that has since
        // been replaced: judge the pack as it is now.
        self.backend.forget(&Self::pack_key(pack));
        let frame = self.read_frame(pack, entry)?;
        pack::open_blob(&frame, entry).map_err(|e| StoreError::Corrupt {
            what: format!("{} {}", entry.kind.name(), entry.id),
            path: self.describe_pack(pack),
            detail: e.to_string(),
        })
    }

    /// Reads a blob's stored (compressed) frame without decoding it.
    pub fn read_frame(&self, pack: &PackId, entry: &IndexEntry) -> Result<Vec<u8>> {
        let key = Self::pack_key(pack);
        self.backend
            .read_range(&key, entry.offset, entry.stored_len as usize)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    StoreError::Corrupt {
                        what: format!("{} {}", entry.kind.name(), entry.id),
                        path: self.backend.describe(&key),
                        detail: "pack is truncated".into(),
                    }
                } else {
                    io_err(self.backend.describe(&key))(e)
                }
            })
    }

    pub fn delete_pack(&self, id: &PackId) -> Result<()> {
        let key = Self::pack_key(id);
        self.backend
            .delete(&key)
            .map_err(io_err(self.backend.describe(&key)))
    }

    /// Writes a manifest; its id is the hash of its bytes, so damage is always detectable.
    pub fn write_manifest(&self, m: &Manifest) -> Result<SnapshotId> {
        let bytes = serde_json::to_vec_pretty(m).map_err(|e| StoreError::Corrupt {
            what: "manifest".into(),
            path: SNAPSHOTS_DIR.into(),
            detail: e.to_string(),
        })?;
        let id = SnapshotId::of(&bytes);
        let key = Self::manifest_key(&id);
        self.backend
            .write_atomic(&key, &bytes)
            .map_err(io_err(self.backend.describe(&key)))?;
        Ok(id)
    }

    pub fn list_manifests(&self) -> Result<Vec<SnapshotId>> {
        let names = self
            .backend
            .list(SNAPSHOTS_DIR)
            .map_err(io_err(self.backend.describe(SNAPSHOTS_DIR)))?;
        Ok(names
            .iter()
            .filter(|n| !n.starts_with(TEMP_PREFIX))
            .filter_map(|n| n.strip_suffix(MANIFEST_SUFFIX))
            .filter_map(|hex| hex.parse().ok())
            .collect())
    }

    pub fn read_manifest(&self, id: &SnapshotId) -> Result<Manifest> {
        let key = Self::manifest_key(id);
        let path = self.backend.describe(&key);
        let bytes = self.backend.read_all(&key).map_err(io_err(&path))?;
        if SnapshotId::of(&bytes) != *id {
            return Err(StoreError::Corrupt {
                what: "snapshot manifest".into(),
                path,
                detail: "content does not match its name (hash)".into(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: "snapshot manifest".into(),
            path,
            detail: e.to_string(),
        })
    }

    pub fn delete_manifest(&self, id: &SnapshotId) -> Result<()> {
        let key = Self::manifest_key(id);
        self.backend
            .delete(&key)
            .map_err(io_err(self.backend.describe(&key)))
    }
}
