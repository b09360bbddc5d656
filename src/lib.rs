//! bmbackup: deduplicating incremental backups of groupware mail servers, and a read-only
//! time-travel filesystem over them. The design document is in this file (see below, kept with
//! the code it describes).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod codec;
pub mod gen;
pub mod id;
pub mod model;
pub mod tree;
