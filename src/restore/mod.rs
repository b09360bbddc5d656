//! Restore engines: everything that reads snapshots back out of a repository for an admin.
//!
//! * [`write`]: writes a snapshot, subtree or file into a destination folder (the engine the
//!   others call) by directory descriptors: [`dest`] opens DEST once, `file` writes a regular
//!   file, `links` makes hard links, `remove` clears what is in the way, [`fsmeta`] makes
//!   special files and sets owners, modes, times, xattrs and flags.
//! * [`user`]: one user's or shared mailbox (single-user restore), found by [`mailboxes`] as
//!   Cyrus does and put back as a new folder by [`cyrus_folder`] ([`user_id`]: who and what,
//!   [`user_journal`]: resuming a killed run, [`suggest`]: close names); [`server`]: every part
//!   of a host.
//! * [`dav_user`]: a user's calendars and address books (Cyrus CalDAV/CardDAV), found by
//!   [`dav`] in the snapshot's mailbox list and `.dav` index and put back through the server by
//!   [`dav_put`] over [`dav_http`], or as files for a stopped server by [`dav_files`].
//! * [`db_entity`]: one user's objects (calendars, contacts) from a database dump part,
//!   through a throwaway PostgreSQL, exported as files or applied to the live database.
//! * [`when`]: what `--at WHEN` means and which snapshot it selects; [`glob`]: path patterns.
//! * [`history`] and [`find`]: a path's versions across snapshots and a search by name, from
//!   tree metadata only; [`ls`] and [`diff`]: a folder's listing and what changed between two
//!   snapshots, from trees too.
//!
//! May use: the format (`model`, `tree`, `id`), [`crate::repo`] and [`crate::config`]. Knows no
//! front end: the CLI (and any other) calls these functions and prints their reports.

pub mod cyrus_folder;
pub mod dav;
pub mod dav_files;
pub mod dav_http;
pub mod dav_put;
pub mod dav_user;
pub mod db_entity;
pub mod dest;
pub mod diff;
pub mod entities;
mod file;
pub mod find;
pub mod find_suggest;
pub mod fsmeta;
pub mod glob;
pub mod history;
pub mod inplace_loss;
mod links;
pub mod ls;
pub mod mailboxes;
pub mod next_steps;
mod remove;
pub mod server;
pub mod snap_files;
pub mod suggest;
pub mod to_file;
pub mod user;
pub mod user_id;
pub mod user_journal;
pub mod when;
mod write;

pub use links::{link_id, LinkId};
pub use remove::{remove_files, remove_tree};
pub use write::*;
