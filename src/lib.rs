//! bmbackup: deduplicating incremental backups of groupware mail servers, and a read-only
//! time-travel filesystem over them. The design document is in this file (see below, kept with
//! the code it describes).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod backup;
pub mod catalog;
pub mod chunker;
pub mod cli;
pub mod codec;
pub mod config;
pub mod fsmeta;
pub mod fuse;
pub mod hostaddr;
pub mod id;
pub mod model;
pub mod repo;
pub mod restore;
pub mod store;
pub mod timefmt;
pub mod tree;
pub mod vfs;
pub mod writer;
