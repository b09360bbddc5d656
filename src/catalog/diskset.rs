//! A set of blob ids kept on disk (a throw-away SQLite file beside the catalog), so that the
//! walks over every snapshot (prune's and stats' live set, check's seen trees and chunks) use
//! bounded memory whatever the number of blobs (and check's table of every stored copy): SQLite keeps a few MiB of pages in memory and
//! the rest in the file, which is removed when the set is dropped.

use super::{Catalog, CatalogError};
use crate::id::{Digest, PackId};
use crate::store::pack::{BlobKind, IndexEntry};
use rusqlite::{params, Connection};
use std::path::PathBuf;

/// SQLite's page cache for one set, in KiB (negative `cache_size` is KiB).
const CACHE_KIB: i64 = 16 << 10;

pub struct DiskSet {
    conn: Connection,
    path: PathBuf,
    len: u64,
}

impl Catalog {
    /// A throw-away SQLite file in the catalog's folder with `schema`, in one open transaction.
    fn scratch(&self, what: &str, schema: &str) -> Result<(Connection, PathBuf), CatalogError> {
        let dir = self
            .path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let path = dir.join(format!(
            ".{what}-{}-{}.sqlite",
            std::process::id(),
            crate::store::backend::unique_suffix()
        ));
        let sql = |source| CatalogError::Sql {
            path: path.display().to_string(),
            source,
        };
        crate::store::private::make_private(&path, true).map_err(|source| CatalogError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(sql)?;
        // Nothing here needs to survive a crash: no journal, no fsync.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-{CACHE_KIB};
             PRAGMA temp_store=FILE; {schema} BEGIN;"
        ))
        .map_err(|source| {
            let _ = std::fs::remove_file(&path);
            sql(source)
        })?;
        Ok((conn, path))
    }

    /// A new, empty set in the catalog's folder.
    pub fn disk_set(&self) -> Result<DiskSet, CatalogError> {
        let (conn, path) = self.scratch(
            "blobset",
            "CREATE TABLE s (k INTEGER NOT NULL, id BLOB NOT NULL, PRIMARY KEY (k, id)) WITHOUT ROWID;",
        )?;
        Ok(DiskSet { conn, path, len: 0 })
    }

    /// A new, empty table of stored blob copies in the catalog's folder.
    pub fn copies_table(&self) -> Result<CopiesTable, CatalogError> {
        let (conn, path) = self.scratch(
            "copies",
            "CREATE TABLE c (k INTEGER NOT NULL, id BLOB NOT NULL, pack BLOB NOT NULL,
                 off INTEGER NOT NULL, stored INTEGER NOT NULL, raw INTEGER NOT NULL);",
        )?;
        Ok(CopiesTable {
            conn,
            path,
            indexed: false,
        })
    }
}

impl DiskSet {
    fn sql(&self) -> impl Fn(rusqlite::Error) -> CatalogError + '_ {
        |source| CatalogError::Sql {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Adds a blob; true when it was not in the set yet.
    pub fn insert(&mut self, kind: BlobKind, id: &Digest) -> Result<bool, CatalogError> {
        let n = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO s (k, id) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![kind.code(), &id.0[..]]))
            .map_err(self.sql())?;
        self.len += n as u64;
        Ok(n > 0)
    }

    pub fn contains(&self, kind: BlobKind, id: &Digest) -> Result<bool, CatalogError> {
        self.conn
            .prepare_cached("SELECT 1 FROM s WHERE k = ?1 AND id = ?2")
            .and_then(|mut st| st.exists(params![kind.code(), &id.0[..]]))
            .map_err(self.sql())
    }

    /// Blobs in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Blobs of one kind in the set.
    pub fn count(&self, kind: BlobKind) -> Result<u64, CatalogError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM s WHERE k = ?1",
                params![kind.code()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.sql())
    }
}

impl Drop for DiskSet {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Every stored copy of every blob, as read from the packs' own indexes (check's view of the
/// store), kept on disk. Filled first, then indexed once and queried.
pub struct CopiesTable {
    conn: Connection,
    path: PathBuf,
    indexed: bool,
}

impl CopiesTable {
    fn sql(&self) -> impl Fn(rusqlite::Error) -> CatalogError + '_ {
        |source| CatalogError::Sql {
            path: self.path.display().to_string(),
            source,
        }
    }

    pub fn add(&mut self, pack: &PackId, e: &IndexEntry) -> Result<(), CatalogError> {
        self.conn
            .prepare_cached("INSERT INTO c VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .and_then(|mut st| {
                st.execute(params![
                    e.kind.code(),
                    &e.id.0[..],
                    &pack.0 .0[..],
                    e.offset as i64,
                    e.stored_len,
                    e.raw_len
                ])
            })
            .map_err(self.sql())?;
        Ok(())
    }

    /// Builds the lookup index; call once every copy is added.
    pub fn finish(&mut self) -> Result<(), CatalogError> {
        if !self.indexed {
            self.conn
                .execute_batch("CREATE INDEX c_id ON c (k, id);")
                .map_err(self.sql())?;
            self.indexed = true;
        }
        Ok(())
    }

    /// The stored copies of one blob (none when it is in no pack).
    pub fn copies(
        &self,
        kind: BlobKind,
        id: &Digest,
    ) -> Result<Vec<(PackId, IndexEntry)>, CatalogError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT pack, off, stored, raw FROM c WHERE k = ?1 AND id = ?2")
            .map_err(self.sql())?;
        let rows = st
            .query_map(params![kind.code(), &id.0[..]], |r| {
                let pack: Vec<u8> = r.get(0)?;
                Ok((
                    pack,
                    r.get::<_, i64>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (pack, off, stored_len, raw_len) = row.map_err(self.sql())?;
            let Ok(pack) = <[u8; 32]>::try_from(pack.as_slice()) else {
                continue;
            };
            out.push((
                PackId(Digest(pack)),
                IndexEntry {
                    kind,
                    id: *id,
                    offset: off as u64,
                    stored_len,
                    raw_len,
                },
            ));
        }
        Ok(out)
    }
}

impl Drop for CopiesTable {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_set_remembers_ids_by_kind_and_leaves_no_file() {
        let t = tempfile::tempdir().unwrap();
        let cat = Catalog::open(t.path(), "s").unwrap();
        let mut set = cat.disk_set().unwrap();
        let a = Digest::of(b"a");
        assert!(set.insert(BlobKind::Chunk, &a).unwrap());
        assert!(!set.insert(BlobKind::Chunk, &a).unwrap());
        assert!(set.contains(BlobKind::Chunk, &a).unwrap());
        assert!(!set.contains(BlobKind::Tree, &a).unwrap());
        assert!(set.insert(BlobKind::Tree, &a).unwrap());
        assert_eq!(set.len(), 2);
        assert_eq!(set.count(BlobKind::Tree).unwrap(), 1);
        let files = || std::fs::read_dir(t.path()).unwrap().count();
        let with = files();
        drop(set);
        assert_eq!(files(), with - 1, "the set's file is removed");
    }
}
