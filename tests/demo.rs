//! The README's first command works: `bmbackup demo DIR` backs up generated data twice and
//! leaves the store mounted with both snapshots and a `last` folder (unmounted here afterwards).

use std::path::PathBuf;
use std::process::Command;

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-u").arg(&self.0).status();
        let _ = Command::new("fusermount3").arg("-uz").arg(&self.0).status();
    }
}

#[test]
fn demo_backs_up_twice_and_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let _guard = Unmount(demo.join("mnt"));
    let out = Command::new(env!("CARGO_BIN_EXE_bmbackup"))
        .arg("demo")
        .arg(&demo)
        .output()
        .unwrap();
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
    let again = Command::new(env!("CARGO_BIN_EXE_bmbackup"))
        .arg("demo")
        .arg(&demo)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
