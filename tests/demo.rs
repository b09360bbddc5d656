//! The README's first command works: `bmbackup demo DIR` backs up generated data twice and
//! leaves the store mounted with both snapshots and a `last` folder (unmounted here afterwards).

mod common;

use common::{run_bin, MountGuard};
use std::ffi::OsStr;

#[test]
fn demo_backs_up_twice_and_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let _guard = MountGuard::new(&demo.join("mnt"));
    let out = run_bin([OsStr::new("demo"), demo.as_os_str()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("backup 2: 10.0.0.5/mail/imap"), "{text}");
    let imap = demo.join("mnt/10.0.0.5/mail/imap");
    let dates: Vec<String> = std::fs::read_dir(&imap)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dates.len(), 3, "two dated snapshots and last: {dates:?}");
    assert!(dates.contains(&"last".to_string()));
    // `last` shows the second backup: the generated day's changes are in it.
    let live_users = std::fs::read_dir(demo.join("spool/acme.test/user"))
        .unwrap()
        .count();
    let shown_users = std::fs::read_dir(imap.join("last/acme.test/user"))
        .unwrap()
        .count();
    assert_eq!(live_users, shown_users);
    // Running it again replaces the previous demo, mounted or not.
    let again = run_bin([OsStr::new("demo"), demo.as_os_str()]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
