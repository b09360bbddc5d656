//! The `bmbackup` command: logging set-up and exit code; everything else is in the library.

fn main() {
    // Like other Unix tools, end quietly when the reader of our output goes away (`| head`).
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        // fuser warns about an unmount the admin already did with fusermount3 -u.
        .filter_module("fuser::session", log::LevelFilter::Error)
        .format_timestamp(None)
        .init();
    std::process::exit(bmbackup::cli::main());
}
