//! How a failed command ends: its error printed once (without the `X: X` repetitions that arise
//! when a message already includes its source's text) and the exit code the README promises
//! (2 for bad usage, 1 for other errors).

use super::{EXIT_ERROR, EXIT_USAGE};

/// A mistake in the command line that clap cannot see (a bad `--at`, options that need
/// another): exit code 2, like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The error and its causes joined by `: `, leaving out a cause whose text the message before it
/// already contains (thiserror messages often print their source as well as returning it).
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// 2 when the error is a usage mistake anywhere in its chain (a bad `--at`, a mount option
/// misspelt), else 1.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    let usage = e.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<crate::fuse::OptionError>()
            || matches!(
                c.downcast_ref::<crate::fuse::MountError>(),
                Some(crate::fuse::MountError::Options(_))
            )
            || matches!(
                c.downcast_ref::<crate::restore::when::WhenError>(),
                Some(crate::restore::when::WhenError::Syntax(_))
            )
    });
    if usage {
        EXIT_USAGE
    } else {
        EXIT_ERROR
    }
}

/// `1 file`, `2 files`: a count with its noun, plural when it is not one.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read config x: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn a_source_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let shown = io.to_string();
        let e = anyhow::Error::new(Outer { source: io });
        assert_eq!(describe(&e), format!("cannot read config x: {shown}"));
        let ctx = e.context("opening the store");
        assert_eq!(
            describe(&ctx),
            format!("opening the store: cannot read config x: {shown}")
        );
    }

    #[test]
    fn usage_errors_exit_2() {
        let bad_when = crate::restore::when::parse_when("garbage", 0).unwrap_err();
        assert_eq!(exit_code(&anyhow::Error::new(bad_when)), EXIT_USAGE);
        assert_eq!(exit_code(&anyhow::anyhow!("disk full")), EXIT_ERROR);
        let usage = anyhow::Error::new(UsageError("--at needs --part".into())).context("x");
        assert_eq!(exit_code(&usage), EXIT_USAGE);
        let option = crate::fuse::parse_options(&["allow_othr"]).unwrap_err();
        assert_eq!(exit_code(&anyhow::Error::new(option)), EXIT_USAGE);
    }

    #[test]
    fn plurals() {
        assert_eq!(count(1, "folder", "folders"), "1 folder");
        assert_eq!(count(0, "folder", "folders"), "0 folders");
        assert_eq!(count(2, "file", "files"), "2 files");
    }
}
