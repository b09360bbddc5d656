//! An fstab line of our type mounts through `mount -T FSTAB MOUNTPOINT` and the helper in
//! `mount-helpers/`, exactly as `/etc/fstab` + `mount /var/backups/bluemind` would on a server.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Removes the temporarily installed helper and unmounts, also when the test fails.
struct Cleanup {
    helper: PathBuf,
    mnt: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mnt)
            .status();
        let _ = Command::new("fusermount3")
            .arg("-uz")
            .arg(&self.mnt)
            .status();
        let _ = fs::remove_file(&self.helper);
    }
}

fn ok(c: &mut Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fstab_line_mounts_through_the_helper() {
    if !Path::new("/sbin").is_dir() || unsafe_euid() != 0 {
        eprintln!("skipped: needs root to install a mount helper in /sbin");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, cache, src, mnt) = (
        dir.path().join("store"),
        dir.path().join("cache"),
        dir.path().join("src"),
        dir.path().join("mnt"),
    );
    fs::create_dir_all(src.join("example.com/user/jdoe")).unwrap();
    fs::write(
        src.join("example.com/user/jdoe/1."),
        b"Subject: hi\r\n\r\nhello\r\n",
    )
    .unwrap();
    fs::create_dir(&mnt).unwrap();
    let bin = env!("CARGO_BIN_EXE_bmbackup");
    let bm = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.args(args)
            .env("BMBACKUP_CACHE", &cache)
            .env_remove("BMBACKUP_CONFIG");
        c
    };
    ok(&mut bm(&["init", store.to_str().unwrap()]));
    ok(&mut bm(&[
        "backup",
        "--store",
        store.to_str().unwrap(),
        "--host",
        "10.0.0.5",
        "--part",
        &format!("mail/imap={}", src.display()),
    ]));

    // A type name of our own, so the test never replaces an installed /sbin/mount.bmbackup.
    let fstype = format!("bmbt{}", std::process::id());
    let helper = PathBuf::from(format!("/sbin/mount.{fstype}"));
    let _cleanup = Cleanup {
        helper: helper.clone(),
        mnt: mnt.clone(),
    };
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mount-helpers/mount.bmbackup"),
        &helper,
    )
    .unwrap();
    let fstab = dir.path().join("fstab");
    fs::write(
        &fstab,
        format!(
            "# test fstab\n{} {} {fstype} ro,allow_other,_netdev,noauto 0 0\n",
            store.display(),
            mnt.display()
        ),
    )
    .unwrap();
    ok(Command::new("mount")
        .arg("-T")
        .arg(&fstab)
        .arg(&mnt)
        .env("BMBACKUP_BIN", bin)
        .env("BMBACKUP_CACHE", &cache));
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(mnt.to_str().unwrap()))
        .unwrap_or_else(|| panic!("not mounted:\n{mounts}"));
    assert!(
        line.contains("ro,") && line.contains("allow_other"),
        "{line}"
    );
    let msg = fs::read(mnt.join("10.0.0.5/mail/imap/last/example.com/user/jdoe/1.")).unwrap();
    assert_eq!(msg, b"Subject: hi\r\n\r\nhello\r\n");
    ok(Command::new("umount").arg(&mnt));
}

fn unsafe_euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}
