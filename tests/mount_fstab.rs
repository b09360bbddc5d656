//! An fstab line of our type mounts through `mount -T FSTAB MOUNTPOINT` and the helper in
//! `mount-helpers/`, exactly as `/etc/fstab` + `mount /var/backups/bluemind` would on a server.

mod common;

use common::{command_ok, is_root, Env, MountGuard, BIN};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Removes the temporarily installed helper, also when the test fails.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn fstab_line_mounts_through_the_helper() {
    if !Path::new("/sbin").is_dir() || !is_root() {
        eprintln!("skipped: needs root to install a mount helper in /sbin");
        return;
    }
    let env = Env::new();
    let (store, cache, src, mnt) = (env.store(), env.cache(), env.path("src"), env.mnt());
    fs::create_dir_all(src.join("example.com/user/jdoe")).unwrap();
    fs::write(
        src.join("example.com/user/jdoe/1."),
        b"Subject: hi\r\n\r\nhello\r\n",
    )
    .unwrap();
    env.backup("10.0.0.5", "mail/imap", &src);

    // A type name of our own, so the test never replaces an installed /sbin/mount.bmbackup.
    let fstype = format!("bmbt{}", std::process::id());
    let helper = PathBuf::from(format!("/sbin/mount.{fstype}"));
    // Dropped in reverse order: unmounted first, then the helper removed.
    let _helper = RemoveOnDrop(helper.clone());
    let _mount = MountGuard::new(&mnt);
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mount-helpers/mount.bmbackup"),
        &helper,
    )
    .unwrap();
    let fstab = env.path("fstab");
    fs::write(
        &fstab,
        format!(
            "# test fstab\n{} {} {fstype} ro,allow_other,_netdev,noauto 0 0\n",
            store.display(),
            mnt.display()
        ),
    )
    .unwrap();
    command_ok(
        Command::new("mount")
            .arg("-T")
            .arg(&fstab)
            .arg(&mnt)
            .env("BMBACKUP_BIN", BIN)
            .env("BMBACKUP_CACHE", &cache),
    );
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
    command_ok(Command::new("umount").arg(&mnt));
}
