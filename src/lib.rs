//! bmbackup: deduplicating incremental backups of groupware mail servers, and a read-only
//! time-travel filesystem over them. This comment is the design document; it lives with the code
//! so that it changes with it.
//!
//! # The house, bottom-up
//! ```text
//! format    id, model, tree, codec, chunker, timefmt     what the bytes mean
//! store     store/ (backend, pack, lock, damage, private) immutable private files, atomic writes, locks
//! catalog   catalog/, repo/ (+ repo/writer)               the SQLite index; verified reads, dedup'd writes
//! engines   backup/ (walk, read, run), restore/, retention/, integrity/, vfs/
//! fronts    cli/, fuse/, console/                         parse, call one engine, show the result
//! ```
//! A floor uses only the floors below it: no engine knows a front end, and front ends take no
//! store lock themselves (the operations that need one take it). `config` and `hostaddr` are read
//! by engines and front ends alike; `gen` makes test data and `demo` is the README's demo.
//!
//! The data path:
//! ```text
//! source ─▶ backup (walk, read, chunk) ─▶ repo::writer ─▶ store (packs, manifests)
//!                                                                 │
//!                                 catalog (SQLite, rebuilt from the store) ◀─┘
//!                                         │
//!                                         ▼
//!                       repo (verified reads) ─▶ vfs ─▶ fuse (the mount)
//!                                               └─▶ restore/, integrity/, retention/
//! ```
//!
//! # The store (the truth)
//! A folder (local or NFS) of immutable files, each written to a temp name
//! (`.tmp-<pid>+<host>+…`: a backup removes those of dead writers on its host), fsync'd,
//! renamed, and its folder fsync'd. Folders are 0700 and files 0600 whatever the umask
//! ([`store::private`]; the catalog too): the mount is how others read backups. All I/O goes through [`store::backend::Backend`] (write an
//! object atomically, read a range, list, delete). The same objects can live under a prefix of
//! an S3 bucket (`s3://BUCKET/PREFIX`, [`store::s3`]): one PUT per object (no temp objects),
//! range GETs for blobs, retried requests; nothing above the backend knows the difference.
//!
//! ```text
//! STORE/bmbackup-store.json      format file: magic, format major.minor, random store id
//! STORE/packs/ab/<blake3>.pack   packs: compressed blobs + an index listing them (store::pack)
//! STORE/snapshots/<blake3>.json  manifests, named by the hash of their bytes
//! STORE/locks/<host>-<pid>-….lock  lock files (store::lock)
//! STORE/damage/<snapshot>.json   written by repair: files of a snapshot whose data was lost
//! STORE/damaged/…                packs and manifests repair set aside (never deleted)
//! ```
//! * **Blobs** are chunks of file content (FastCDC with the store's chunk sizes, recorded at
//!   `init`: 8 KiB min / 32 KiB avg / 128 KiB max by default since format 1.1; format 1.0 stores
//!   record none and keep 256 KiB / 1 MiB / 4 MiB) and tree
//!   blobs (one per directory, [`tree`]), each named by the BLAKE3 hash of its plain bytes,
//!   zstd-compressed (raw when that does not shrink it) and verified against the hash on every
//!   read and once before its pack is committed.
//! * **Trees** are Merkle trees: a directory's blob holds its entries' full metadata and the ids
//!   of their chunks or subtrees, so an unchanged directory has the same id in every snapshot and
//!   costs nothing. A directory of more than 4096 entries (format 1.3, [`pages`]) is a small
//!   tree index over pages of consecutive entries with content-defined ends, so a new file
//!   changes one or two pages; every reader goes through [`repo::folder`] (lookup in one page,
//!   page-by-page listing, counts and positions without reading pages).
//! * **Manifests** (JSON, [`model::Manifest`]) are written last; a snapshot without a manifest
//!   does not exist. Its id is the hash of the file, so damage is always detected. It records
//!   the snapshot's folder name, fixed when the backup commits ([`repo::names`]); the key is
//!   optional (older manifests have none) and ignored by older readers, so it needs no new minor.
//! * **Versioning**: readers refuse another major format and read every older minor. Tree and
//!   pack encodings carry their own version bytes; their constants say "do not change".
//!
//! # The catalog (an index)
//! SQLite ([`catalog`]) in a local cache folder (`--cache-dir`, `BMBACKUP_CACHE`; SQLite is unsafe
//! on NFS). It maps blob id to (pack, offset, length) and lists snapshots. Every command first
//! syncs it with the store (new or removed packs and manifests), so deleting it loses nothing: it
//! is rebuilt from pack indexes and manifests. WAL mode and a busy timeout let several processes
//! share it.
//!
//! # Backup
//! [`backup`] walks a part depth-first; files of one folder are read by several threads. A file
//! whose size, mtime, ctime and inode equal the parent snapshot's entry reuses its chunk list
//! unread, so a no-change backup reads no file content. A folder's names are sorted, then
//! `lstat`ed and turned into entries 4096 at a time and streamed into pages
//! ([`pages::FolderBuilder`]), the parent's folder read a page at a time
//! ([`repo::folder::Cursor`]): memory does not grow with the largest folder, and a folder whose
//! entries all equal the parent's keeps its tree id without being encoded ([`backup`]'s `walk`).
//! A file that changes while read is read
//! again (three attempts), then kept and reported as partial. [`repo::writer::BlobWriter`] dedups
//! against the catalog and this run, compresses outside its lock and cuts 32 MiB packs.
//! [`backup::run`] is one server's whole run as every front end starts it: the parts (with the
//! vendor switches), pre/post hooks, the shared store lock, retention after success, the
//! post-backup hook, and [`backup::metrics`] (Prometheus textfile, written atomically; the last
//! success is taken from the store, so it survives failed runs). Filesystems mounted inside a
//! part are crossed (unless `--one-file-system`); entries record a per-part filesystem index (`Entry::dev`), and a file's identity (hard
//! links, the parent comparison) is (index, inode). Holes of sparse files are found with
//! `SEEK_DATA`/`SEEK_HOLE` and recorded as zero chunks without being read ([`holes`]); the
//! allocated size and the inode flags are recorded too (format 1.2).
//!
//! # Restore
//! [`restore`] writes each regular file under a temporary name in its folder, gives it its
//! metadata, then renames it: a file under its real name is complete, so an interrupted restore
//! is resumed by running it again (same size and mtime: skipped; with `--overwrite`, same
//! content by chunk hash). Restore runs as root in trees users can write, so it opens DEST once
//! and works only through directory descriptors (`openat` with `O_NOFOLLOW`, `mkdirat`,
//! `O_EXCL` creates, `fchown`/`fchmod`/`futimens` on the descriptor, `renameat` in one folder;
//! rustix's wrappers): no name is resolved twice, and a name swapped for a symlink is that
//! file's reported failure, never followed. `--at WHEN`
//! ([`restore::when`]) picks per host and part the snapshot of that folder name, else the newest
//! complete snapshot started at or before WHEN (a time means all of its last unit: a second
//! includes its nanoseconds); [`restore::user`] restores a user's or shared mailbox, whose
//! folders [`restore::mailboxes`] finds as Cyrus does (the snapshot's `mailboxes.db`, else the
//! layout rules, else a search; [`cyrus`] holds Cyrus' formats and rules) or with the config's
//! `[entities]` template, and [`restore::cyrus_folder`] writes back as new Cyrus mailboxes;
//! [`restore::server`] puts every part of a host back under `ROOT + source`.
//! [`restore::history`], [`restore::find`], [`restore::ls`] and [`restore::diff`] read tree
//! metadata only; `diff` compares tree ids first and never reads a folder that is the same in
//! both snapshots.
//!
//! # Integrity
//! [`integrity::check`] verifies the store from its own files (pack indexes, manifests, every snapshot's
//! trees and chunks, optionally every chunk's data) and names each snapshot and file that uses a
//! lost blob. [`integrity::repair`] sets damaged files aside, rebuilds the catalog and marks damaged
//! snapshots; since the rebuilt catalog lists no lost blob and a backup re-reads an unchanged file
//! whose chunks are gone, the next backup heals what the source still has. Prune refuses to run
//! while any manifest or pack cannot be read (it would take that data for garbage).
//!
//! # Concurrency
//! | operation      | store lock | may run beside                                   |
//! |----------------|------------|--------------------------------------------------|
//! | backup         | shared, and `HOST/PART` while backing that part up | other backups (other hosts or parts), forget, mount, restore |
//! | forget         | shared     | backups, mount, restore                          |
//! | prune, repair  | exclusive  | mount and restore only                           |
//! | mount, restore, snapshots, stats | none | everything                          |
//!
//! A lock may carry a scope, and two live locks of one scope conflict: a backup of a part holds
//! one scoped `HOST/PART`, so a second backup of that part waits (`--lock-wait`) or refuses.
//! Locks are files, not fcntl locks (unreliable across NFS clients), refreshed every minute; a
//! lock not refreshed for 15 minutes, or whose process is gone on the same host, is stale and is
//! removed by the next locker. A backup checks its lock still exists right before writing its
//! manifest, so a backup that was frozen while prune ran aborts instead of committing a snapshot
//! that might reference pruned chunks. A lock file is never rewritten: the heartbeat writes a new
//! one and deletes the old, so a holder whose lock was removed as stale cannot resurrect it.
//! Readers need no lock: packs are immutable, prune writes
//! rewritten packs before deleting old ones, and a reader that finds a pack gone re-syncs the
//! catalog and retries at the blob's new place.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The format: ids, the snapshot model, tree and blob encodings, chunking, time.
pub mod chunker;
pub mod codec;
pub mod holes;
pub mod id;
pub mod model;
pub mod pages;
pub mod timefmt;
pub mod tree;
// Cyrus IMAP's own files and spool layout (read from backups, written by restore-user).
pub mod cyrus;

// The store (the truth), the catalog (an index of it), and a repository (both, opened).
pub mod catalog;
pub mod repo;
pub mod store;

// Engines.
pub mod backup;
pub mod integrity;
pub mod restore;
pub mod retention;
pub mod vfs;

// Front ends: they call engines; engines never know them.
pub mod cli;
pub mod console;
pub mod fuse;

// Shared by engines and front ends: the configuration file and a server's identity.
pub mod config;
pub mod hostaddr;

// Generated data for tests, benchmarks and the demo; the demo scenario itself.
pub mod demo;
pub mod gen;
