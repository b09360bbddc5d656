//! Integrity: [`check`] verifies a store from its own files and names every damaged pack,
//! manifest, snapshot and file; [`repair`] sets damaged files aside, rebuilds the catalog and
//! marks damaged snapshots so the next backup heals what the source still has.
//!
//! May use: the format, [`crate::store`], [`crate::catalog`] and [`crate::repo`]. Knows no front
//! end.

pub mod check;
pub mod last_check;
pub mod repair;
mod uses;
