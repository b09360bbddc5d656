//! Source trees for the tests: writing files (folders made on the way), a varied tree with every
//! kind of entry a mail server has, a mail-like spool, times to the nanosecond, and reading trees
//! back (names, walks, sizes, copies).

use super::{bytes, sh};
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes `data` to `path`, creating its folders.
pub fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// Sets the atime and mtime of `path` itself (a symlink keeps its own) to the nanosecond.
pub fn set_mtime(path: &Path, sec: i64, nsec: i64) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    // SAFETY: valid path and two timespecs; AT_SYMLINK_NOFOLLOW so links keep their own time.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [t, t].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        rc,
        0,
        "utimensat {path:?}: {}",
        std::io::Error::last_os_error()
    );
}

/// Every kind of entry a mail server has, with odd metadata: messages, a multi-chunk file, empty,
/// private and setuid files, a hard link, symlinks (one dangling), UTF-8 and Latin-1 names, a
/// fifo, devices, another owner, xattrs and nanosecond times.
pub fn varied_tree(root: &Path) {
    for u in 0..3 {
        for m in 1..=20 {
            write(
                &root.join(format!("user/u{u}/cur/{m}.")),
                format!("Subject: {m}\r\n\r\n{}", "x".repeat(m * 97)).as_bytes(),
            );
        }
    }
    write(&root.join("big.bin"), &bytes(5 << 20, 3));
    write(&root.join("empty"), b"");
    write(&root.join("secret"), b"root only");
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    write(&root.join("setuid"), b"#!/bin/sh\n");
    fs::set_permissions(root.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(root.join("user/u0/cur/1."), root.join("hardlink")).unwrap();
    std::os::unix::fs::symlink("user/u0", root.join("link")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    write(&root.join("\u{e9}t\u{e9} \u{2603}"), b"utf8 name");
    write(&root.join(OsStr::from_bytes(b"latin1-\xe9")), b"raw name");
    let r = root.display();
    sh(&format!(
        "mkfifo {r}/fifo && mknod {r}/null c 1 3 && mknod {r}/disk b 8 1 && chown 1234:5678 {r}/user/u1/cur/2. \
         && setfattr -n user.mail -v seen {r}/user/u0/cur/3. && setfattr -n user.bin -v 0x00ff00 {r}/big.bin \
         && touch -h -d '2001-02-03 04:05:06.123456789' {r}/link {r}/user/u2/cur/4."
    ));
}

/// A small mail-like tree: 204 messages in a few folders plus one multi-chunk file; returns the
/// messages.
pub fn mail_tree(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for u in 0..4 {
        for f in ["", "Sent/", "Archive/"] {
            for m in 1..=17 {
                let p = root.join(format!("example.com/user/u{u}/{f}{m}."));
                let body = format!("From: u{u}@example.com\r\nSubject: {m}\r\n\r\n")
                    + &"lorem ipsum ".repeat(50 * m);
                write(&p, body.as_bytes());
                files.push(p);
            }
        }
    }
    write(&root.join("dump/db.bin"), &bytes(6 << 20, 7));
    files
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every path below `root` (folders too, symlinks not followed), sorted.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out.sort();
    out
}

/// Bytes of every file below `root` (symlinks not followed).
pub fn dir_size(root: &Path) -> u64 {
    let md = fs::symlink_metadata(root).unwrap();
    if md.is_dir() {
        fs::read_dir(root)
            .unwrap()
            .map(|e| dir_size(&e.unwrap().path()))
            .sum()
    } else {
        md.len()
    }
}

/// `cp -a FROM TO`: an exact copy, metadata included.
pub fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// The users of a generated spool (`DOMAIN/user/LOCAL`), as (local, domain).
pub fn users(spool: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in names(spool) {
        for u in names(&spool.join(&d).join("user")) {
            out.push((u, d.clone()));
        }
    }
    out
}

/// XORs one byte of a file (bit rot, for the damage tests).
pub fn flip(path: &Path, offset: u64) {
    let mut b = fs::read(path).unwrap();
    b[offset as usize] ^= 0x5a;
    fs::write(path, b).unwrap();
}
