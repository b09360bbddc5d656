//! The harness of the end-to-end tests (every `tests/*.rs` file says `mod common;`):
//! - `env`: one `Env` — a store, its cache and config in a temp folder — and the real binary
//!   run against it;
//! - `tree`: source trees to back up, and reading trees back;
//! - `bytes`: the one seeded byte generator;
//! - `compare`: the exact tree comparison, the oracle of every round trip;
//! - `mount`: FUSE mounts with a guard that always unmounts;
//! - `garage`: a Garage S3 server for one test, and `Env`s whose store is on it.
// Each tests/*.rs file is its own crate that compiles this module again and uses only part of
// it; what one test file leaves unused (a function, a re-export below) is used by another, so it
// is neither dead code nor an unused import.
#![allow(dead_code, unused_imports)]

pub mod bytes;
pub mod compare;
pub mod console;
pub mod env;
pub mod garage;
pub mod mount;
pub mod tree;

pub use bytes::{bytes, seed, Xorshift};
pub use compare::*;
pub use console::*;
pub use env::*;
pub use garage::*;
pub use mount::*;
pub use tree::*;
