//! The `bmbackup` command: argument parsing, logging set-up and exit codes; the work is in the library.

fn main() {
    println!("bmbackup {}", env!("CARGO_PKG_VERSION"));
}
