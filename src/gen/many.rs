//! `generate many`: a part of many empty or tiny files for the scale measures (`bench/scale`):
//! one big folder of `big_folder` entries (as a huge Cyrus mailbox) and the rest in folders of
//! 1000, as a spool spreads messages over mailboxes. What matters here is the number of names,
//! not their bytes: every 1000th file holds a short line, the others are empty.

use super::{prepare_empty_root, GenError, IoContext};
use std::path::Path;

/// Files per small folder.
const PER_FOLDER: u64 = 1000;

/// Makes `files` files under `root` (empty or missing), `big_folder` of them in `root/big`.
/// Returns the number of folders made.
pub fn generate_many(root: &Path, files: u64, big_folder: u64) -> Result<u64, GenError> {
    if big_folder > files {
        return Err(GenError::InvalidSpec(format!(
            "--big-folder {big_folder} is more than --files {files}"
        )));
    }
    prepare_empty_root(root)?;
    let mut folders = 0;
    let write = |dir: &Path, i: u64| -> Result<(), GenError> {
        let p = dir.join(format!("{i}."));
        let body: &[u8] = if i % 1000 == 0 {
            b"Subject: hello\n"
        } else {
            b""
        };
        std::fs::write(&p, body).ctx("write", &p)
    };
    if big_folder > 0 {
        let big = root.join("big");
        std::fs::create_dir(&big).ctx("create", &big)?;
        folders += 1;
        for i in 0..big_folder {
            write(&big, i)?;
        }
    }
    let rest = files - big_folder;
    let mut dir = root.to_path_buf();
    for i in 0..rest {
        if i % PER_FOLDER == 0 {
            dir = root.join(format!("u{:06}", i / PER_FOLDER));
            std::fs::create_dir(&dir).ctx("create", &dir)?;
            folders += 1;
        }
        write(&dir, i)?;
    }
    Ok(folders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_the_files_asked_for_with_one_big_folder() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("p");
        assert_eq!(generate_many(&root, 2500, 1200).unwrap(), 3);
        assert_eq!(std::fs::read_dir(root.join("big")).unwrap().count(), 1200);
        assert_eq!(
            std::fs::read_dir(root.join("u000000")).unwrap().count(),
            1000
        );
        assert_eq!(
            std::fs::read_dir(root.join("u000001")).unwrap().count(),
            300
        );
        assert!(generate_many(&t.path().join("q"), 1, 2).is_err());
    }
}
