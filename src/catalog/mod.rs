//! The SQLite catalog: an index of which pack holds each blob and of every snapshot, kept in a
//! local cache folder (SQLite is unsafe on NFS, where stores often live). It holds nothing the
//! store does not: `sync` brings it up to date with the store, and deleting it loses nothing.

pub mod diskset;

use crate::id::{Digest, PackId, SnapshotId, TreeId};
use crate::model::{Manifest, Snapshot};
use crate::store::pack::{BlobKind, IndexEntry};
use crate::store::{private, Store, StoreError};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Bump when the schema changes; an older catalog is then dropped and rebuilt from the store.
const SCHEMA_VERSION: i64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog {path}: {source}")]
    Sql {
        path: String,
        source: rusqlite::Error,
    },
    #[error("catalog folder {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, CatalogError>;

/// What `sync` found, so callers can tell whether anything changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    pub packs_added: usize,
    pub packs_removed: usize,
    pub snapshots_added: usize,
    pub snapshots_removed: usize,
    pub damaged: usize,
}

impl SyncReport {
    pub fn snapshots_changed(&self) -> bool {
        self.snapshots_added + self.snapshots_removed > 0
    }
}

pub struct Catalog {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// The default cache folder: `/var/cache/bmbackup` for root, else `$XDG_CACHE_HOME/bmbackup` or
/// `~/.cache/bmbackup`.
pub fn default_cache_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/cache/bmbackup");
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(x).join("bmbackup");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache/bmbackup");
    }
    PathBuf::from("/tmp/bmbackup-cache")
}

fn pack_of(bytes: Vec<u8>) -> Option<PackId> {
    Digest::from_slice(&bytes).map(PackId)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::DatabaseBusy || f.code == rusqlite::ErrorCode::DatabaseLocked)
}

fn is_gone(store: &Store, key: &str) -> bool {
    matches!(store.backend().size(key), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// A pack's index and the frames of its trees, read from the store.
type PackForCatalog = (u64, Vec<IndexEntry>, Vec<(IndexEntry, Vec<u8>)>);

fn read_pack_for_catalog(
    store: &Store,
    id: &PackId,
) -> std::result::Result<PackForCatalog, StoreError> {
    let (size, entries) = store.read_pack_index(id)?;
    let mut trees = Vec::new();
    for e in entries.iter().filter(|e| e.kind == BlobKind::Tree) {
        trees.push((*e, store.read_frame(id, e)?));
    }
    Ok((size, entries, trees))
}

impl Catalog {
    /// Opens (creating if needed) the catalog of `store` inside `cache_dir`.
    pub fn open(cache_dir: &Path, store_id: &str) -> Result<Catalog> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| CatalogError::Io { path, source }
        };
        // The catalog lists every file name of every user: as private as the store. A folder
        // we create is 0700; one given to us (even /tmp) keeps its mode, the files are 0600.
        private::create_dir_all(cache_dir).map_err(io(cache_dir))?;
        let path = cache_dir.join(format!("catalog-{store_id}.sqlite"));
        // SQLite gives its -wal and -shm files the mode of the database file: create that one
        // 0600 first, and tighten those an older bmbackup left 0644.
        private::make_private(&path, true).map_err(io(&path))?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let side = cache_dir.join(format!("catalog-{store_id}.sqlite{suffix}"));
            match private::make_private(&side, false) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&side)(e)),
                _ => {}
            }
        }
        let shown = path.display().to_string();
        let sql = |source| CatalogError::Sql {
            path: shown.clone(),
            source,
        };
        // Opening races with other processes opening the same catalog: the first reader after
        // the last one closed recovers the WAL under an exclusive lock, and SQLite reports
        // "database is locked" to the others without waiting. Retry for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match Self::open_once(&path) {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(sql(e)),
                Ok(conn) => {
                    return Ok(Catalog {
                        conn: Mutex::new(conn),
                        path,
                    })
                }
            }
        }
    }

    fn open_once(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(60))?;
        // Switching the journal mode takes an exclusive lock without waiting on the busy handler,
        // so only the first opener (mode not yet WAL) does it; WAL then persists in the file.
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == SCHEMA_VERSION {
            return Ok(conn);
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        // Another process may have created the schema while we waited for the write lock.
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == SCHEMA_VERSION {
            conn.execute_batch("COMMIT")?;
            return Ok(conn);
        }
        conn.execute_batch(
            "DROP TABLE IF EXISTS blobs; DROP TABLE IF EXISTS packs; DROP TABLE IF EXISTS snapshots;
             DROP TABLE IF EXISTS trees;",
        )
        ?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS packs(id BLOB PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS blobs(
                id BLOB NOT NULL, kind INTEGER NOT NULL, pack BLOB NOT NULL,
                offset INTEGER NOT NULL, stored_len INTEGER NOT NULL, raw_len INTEGER NOT NULL,
                PRIMARY KEY(id, kind, pack)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs(pack);
             CREATE TABLE IF NOT EXISTS snapshots(
                id BLOB PRIMARY KEY, host TEXT NOT NULL, part TEXT NOT NULL,
                started_ns INTEGER NOT NULL, root BLOB NOT NULL, manifest TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS snapshots_by_part ON snapshots(host, part, started_ns);
             CREATE TABLE IF NOT EXISTS trees(id BLOB PRIMARY KEY, raw_len INTEGER NOT NULL,
                frame BLOB NOT NULL) WITHOUT ROWID;",
        )
        ?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        conn.execute_batch("COMMIT")?;
        Ok(conn)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> CatalogError + '_ {
        move |source| CatalogError::Sql {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Brings the catalog up to date with the store: new and removed packs and manifests.
    /// Damaged files are logged and skipped here; `check` reports them in full.
    pub fn sync(&self, store: &Store) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let in_store: HashSet<PackId> = store.list_packs()?.into_iter().collect();
        let known: HashSet<PackId> = self.known_packs()?;
        for id in in_store.difference(&known) {
            match read_pack_for_catalog(store, id) {
                Ok((size, entries, trees)) => {
                    let frames: Vec<(IndexEntry, &[u8])> =
                        trees.iter().map(|(e, f)| (*e, f.as_slice())).collect();
                    self.add_pack(id, size, &entries, &frames)?;
                    report.packs_added += 1;
                }
                Err(e) if e.is_corruption() => {
                    log::error!("{e}");
                    report.damaged += 1;
                }
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    // Deleted by a concurrent prune between list and read.
                }
                Err(e) => return Err(e.into()),
            }
        }
        // The listing is a moment in the past and other processes share this catalog: a pack
        // another process committed after our listing is in the catalog but not in `in_store`.
        // Only forget what is really gone now.
        for id in known.difference(&in_store) {
            if is_gone(store, &Store::pack_key(id)) {
                self.remove_pack(id)?;
                report.packs_removed += 1;
            }
        }
        let snaps_in_store: HashSet<SnapshotId> = store.list_manifests()?.into_iter().collect();
        let snaps_known: HashSet<SnapshotId> = self.known_snapshots()?;
        for id in snaps_in_store.difference(&snaps_known) {
            match store.read_manifest(id) {
                Ok(m) => {
                    self.add_snapshot(id, &m)?;
                    report.snapshots_added += 1;
                }
                Err(e) if e.is_corruption() => {
                    log::error!("{e}");
                    report.damaged += 1;
                }
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        for id in snaps_known.difference(&snaps_in_store) {
            if is_gone(store, &Store::manifest_key(id)) {
                self.remove_snapshot(id)?;
                report.snapshots_removed += 1;
            }
        }
        Ok(report)
    }

    fn known_packs(&self) -> Result<HashSet<PackId>> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT id FROM packs").map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.sql())?;
        let mut out = HashSet::new();
        for r in rows {
            if let Some(id) = pack_of(r.map_err(self.sql())?) {
                out.insert(id);
            }
        }
        Ok(out)
    }

    fn known_snapshots(&self) -> Result<HashSet<SnapshotId>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare("SELECT id FROM snapshots")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.sql())?;
        let mut out = HashSet::new();
        for r in rows {
            if let Some(d) = Digest::from_slice(&r.map_err(self.sql())?) {
                out.insert(SnapshotId(d));
            }
        }
        Ok(out)
    }

    /// Records a committed pack and its blobs, with the compressed frames of its trees (kept here
    /// so metadata queries and the mount never read pack data). A blob may live in several packs
    /// (two hosts wrote it at once, or prune is moving it): every place is recorded, so losing
    /// one pack never hides the others.
    pub fn add_pack(
        &self,
        id: &PackId,
        size: u64,
        entries: &[IndexEntry],
        tree_frames: &[(IndexEntry, &[u8])],
    ) -> Result<()> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        {
            tx.execute(
                "INSERT OR IGNORE INTO packs(id, size) VALUES (?1, ?2)",
                params![&id.0 .0[..], size as i64],
            )
            .map_err(self.sql())?;
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO blobs(id, kind, pack, offset, stored_len, raw_len)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(self.sql())?;
            for e in entries {
                stmt.execute(params![
                    &e.id.0[..],
                    e.kind.code(),
                    &id.0 .0[..],
                    e.offset as i64,
                    e.stored_len,
                    e.raw_len
                ])
                .map_err(self.sql())?;
            }
            let mut put = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO trees(id, raw_len, frame) VALUES (?1, ?2, ?3)",
                )
                .map_err(self.sql())?;
            for (e, frame) in tree_frames {
                put.execute(params![&e.id.0[..], e.raw_len, frame])
                    .map_err(self.sql())?;
            }
        }
        tx.commit().map_err(self.sql())
    }

    /// A tree's compressed frame and plain length, if the catalog has it. Callers verify it.
    pub fn tree_frame(&self, id: &Digest) -> Result<Option<(u32, Vec<u8>)>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached("SELECT raw_len, frame FROM trees WHERE id = ?1")
            .map_err(self.sql())?;
        stmt.query_row(params![&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(self.sql())
    }

    /// Forgets a pack that left the store; blobs it held stay known where they also live.
    pub fn remove_pack(&self, id: &PackId) -> Result<()> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        tx.execute("DELETE FROM blobs WHERE pack = ?1", params![&id.0 .0[..]])
            .map_err(self.sql())?;
        tx.execute(
            "DELETE FROM trees WHERE NOT EXISTS
               (SELECT 1 FROM blobs WHERE blobs.id = trees.id AND blobs.kind = ?1)",
            params![BlobKind::Tree.code()],
        )
        .map_err(self.sql())?;
        tx.execute("DELETE FROM packs WHERE id = ?1", params![&id.0 .0[..]])
            .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }

    /// Empties the catalog so the next `sync` rebuilds it from the store alone (repair).
    pub fn reset(&self) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute_batch(
            "BEGIN IMMEDIATE; DELETE FROM blobs; DELETE FROM packs; DELETE FROM snapshots;
             DELETE FROM trees; COMMIT;",
        )
        .map_err(self.sql())
    }

    /// Blobs stored in more than one pack (prune must keep a verified copy of each).
    pub fn duplicate_blobs(&self) -> Result<Vec<(BlobKind, Digest)>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare("SELECT id, kind FROM blobs GROUP BY id, kind HAVING COUNT(*) > 1")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u8>(1)?)))
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for r in rows {
            let (id, kind) = r.map_err(self.sql())?;
            if let (Some(id), Some(kind)) = (Digest::from_slice(&id), BlobKind::from_code(kind)) {
                out.push((kind, id));
            }
        }
        Ok(out)
    }

    /// Every place a blob is stored.
    pub fn locate_all(&self, kind: BlobKind, id: &Digest) -> Result<Vec<(PackId, IndexEntry)>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT pack, offset, stored_len, raw_len FROM blobs WHERE id = ?1 AND kind = ?2 ORDER BY pack",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![&id.0[..], kind.code()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for r in rows {
            let (pack, offset, stored_len, raw_len) = r.map_err(self.sql())?;
            if let Some(p) = pack_of(pack) {
                out.push((
                    p,
                    IndexEntry {
                        kind,
                        id: *id,
                        offset: offset as u64,
                        stored_len,
                        raw_len,
                    },
                ));
            }
        }
        Ok(out)
    }

    pub fn has_blob(&self, kind: BlobKind, id: &Digest) -> Result<bool> {
        let conn = self.conn.lock();
        Self::has_blob_on(&conn, kind, id).map_err(self.sql())
    }

    /// Whether each of `ids` is stored, in one read transaction: a backup checks a folder's
    /// unchanged files at once, instead of paying SQLite's locking per chunk.
    pub fn has_blobs(&self, kind: BlobKind, ids: &[Digest]) -> Result<Vec<bool>> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(self.sql())?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(Self::has_blob_on(&tx, kind, id).map_err(self.sql())?);
        }
        tx.commit().map_err(self.sql())?;
        Ok(out)
    }

    fn has_blob_on(
        conn: &rusqlite::Connection,
        kind: BlobKind,
        id: &Digest,
    ) -> rusqlite::Result<bool> {
        let mut stmt =
            conn.prepare_cached("SELECT 1 FROM blobs WHERE id = ?1 AND kind = ?2 LIMIT 1")?;
        stmt.exists(params![&id.0[..], kind.code()])
    }

    /// Where a blob is stored, if anywhere (its first place when it has several).
    pub fn locate(&self, kind: BlobKind, id: &Digest) -> Result<Option<(PackId, IndexEntry)>> {
        Ok(self.locate_all(kind, id)?.into_iter().next())
    }

    pub fn add_snapshot(&self, id: &SnapshotId, m: &Manifest) -> Result<()> {
        let json = serde_json::to_string(m).unwrap_or_default();
        let root: TreeId = m.root.parse().unwrap_or(TreeId(Digest([0; 32])));
        let conn = self.conn.lock();
        conn.execute(
            "INSERT OR REPLACE INTO snapshots(id, host, part, started_ns, root, manifest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                &id.0 .0[..],
                m.host,
                m.part,
                m.started_ns,
                &root.0 .0[..],
                json
            ],
        )
        .map_err(self.sql())?;
        Ok(())
    }

    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute("DELETE FROM snapshots WHERE id = ?1", params![&id.0 .0[..]])
            .map_err(self.sql())?;
        Ok(())
    }

    /// Every snapshot, sorted by host, part and start time.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, root, manifest FROM snapshots ORDER BY host, part, started_ns, id",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, root, json) = row.map_err(self.sql())?;
            let (Some(id), Some(root)) = (Digest::from_slice(&id), Digest::from_slice(&root))
            else {
                continue;
            };
            let Ok(manifest) = serde_json::from_str::<Manifest>(&json) else {
                continue;
            };
            out.push(Snapshot {
                id: SnapshotId(id),
                root: TreeId(root),
                manifest,
            });
        }
        Ok(out)
    }

    /// Every known pack and its size, in a stable order.
    pub fn packs(&self) -> Result<Vec<(PackId, u64)>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare("SELECT id, size FROM packs ORDER BY id")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for r in rows {
            let (id, size) = r.map_err(self.sql())?;
            if let Some(id) = pack_of(id) {
                out.push((id, size as u64));
            }
        }
        Ok(out)
    }

    /// The blobs a pack holds, in file order.
    pub fn pack_entries(&self, pack: &PackId) -> Result<Vec<IndexEntry>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, kind, offset, stored_len, raw_len FROM blobs WHERE pack = ?1 ORDER BY offset",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![&pack.0 .0[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, u32>(4)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for r in rows {
            let (id, kind, offset, stored_len, raw_len) = r.map_err(self.sql())?;
            if let (Some(id), Some(kind)) = (Digest::from_slice(&id), BlobKind::from_code(kind)) {
                out.push(IndexEntry {
                    kind,
                    id,
                    offset: offset as u64,
                    stored_len,
                    raw_len,
                });
            }
        }
        Ok(out)
    }

    /// Total stored bytes of all packs.
    pub fn packs_size(&self) -> Result<u64> {
        let conn = self.conn.lock();
        conn.query_row("SELECT COALESCE(SUM(size), 0) FROM packs", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|v| v as u64)
        .map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_catalog_and_its_wal_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("new/cache");
        let cat = Catalog::open(&cache, "s1").unwrap();
        cat.reset().unwrap();
        let db = cat.path().to_path_buf();
        for p in [db.clone(), PathBuf::from(format!("{}-wal", db.display()))] {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        assert_eq!(mode(&cache), 0o700);
        drop(cat);
        // An older bmbackup's catalog is tightened when opened.
        let perm = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(&db, perm).unwrap();
        drop(Catalog::open(&cache, "s1").unwrap());
        assert_eq!(mode(&db), 0o600);
    }
}
