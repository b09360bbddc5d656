//! The `bmbackup` command: the exit code of [`bmbackup::cli::main`], which does the rest.

fn main() {
    // Like other Unix tools, end quietly when the reader of our output goes away (`| head`).
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(bmbackup::cli::main());
}
