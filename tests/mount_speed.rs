//! What keeps the mount fast and small without changing what it shows: a snapshot root counts
//! its subfolders in `st_nlink` like any folder, xattrs stay visible by default, and
//! `-o noxattr` turns them off for the whole mount (the kernel then stops asking).

mod common;

use bmbackup::fuse::MountOptions;
use common::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `lgetxattr(path, name)`: the value, or the errno.
fn getxattr(path: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let (c, n) = (
        CString::new(path.as_os_str().as_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    let mut buf = vec![0u8; 256];
    // SAFETY: `buf` has `buf.len()` writable bytes.
    let len =
        unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

/// `llistxattr(path)`: the NUL-separated names, or the errno.
fn listxattr(path: &Path) -> Result<Vec<u8>, i32> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 1024];
    // SAFETY: `buf` has `buf.len()` writable bytes.
    let len = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

fn set_user_xattr(path: &Path, name: &str, value: &[u8]) {
    let (c, n) = (
        CString::new(path.as_os_str().as_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    // SAFETY: valid C strings and a buffer of `value.len()` bytes.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {}", path.display());
}

#[test]
fn a_snapshot_root_counts_its_subfolders() {
    let env = Env::new();
    let src = env.path("src");
    for d in ["a", "b", "c"] {
        write(&src.join(d).join("f"), b"x");
    }
    write(&src.join("top"), b"y");
    write(&src.join("a/sub/g"), b"z");
    env.backup("h", "p", &src);
    let _m = env.mount(Default::default());
    let part = env.mnt().join("h/p");
    let dated = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .find(|n| n != "last")
        .unwrap();
    // `ls -l` of the part folder (readdirplus) and a plain stat (lookup) agree: 2 + a, b, c.
    let listed: Vec<u64> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().nlink())
        .collect();
    assert_eq!(listed, [5, 5]);
    for root in [part.join(&dated), part.join("last")] {
        assert_eq!(std::fs::metadata(&root).unwrap().nlink(), 5, "{root:?}");
    }
    // Below the root, folders already counted theirs.
    assert_eq!(std::fs::metadata(part.join("last/a")).unwrap().nlink(), 3);
}

#[test]
fn xattrs_show_by_default_and_noxattr_turns_them_off() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("d/f"), b"hello");
    write(&src.join("plain"), b"no xattrs");
    set_user_xattr(&src.join("d/f"), "user.origin", b"mail");
    env.backup("h", "p", &src);
    let f = env.mnt().join("h/p/last/d/f");
    let plain = env.mnt().join("h/p/last/plain");
    {
        let _m = env.mount(Default::default());
        assert_eq!(getxattr(&f, "user.origin"), Ok(b"mail".to_vec()));
        assert_eq!(listxattr(&f), Ok(b"user.origin\0".to_vec()));
        assert_eq!(getxattr(&plain, "user.origin"), Err(libc::ENODATA));
        assert_eq!(listxattr(&plain), Ok(Vec::new()));
    }
    let _m = env.mount(MountOptions {
        options: vec!["ro,noxattr".into()],
        ..Default::default()
    });
    assert_eq!(getxattr(&f, "user.origin"), Err(libc::EOPNOTSUPP));
    assert_eq!(listxattr(&f), Err(libc::EOPNOTSUPP));
    assert_eq!(getxattr(&plain, "security.selinux"), Err(libc::EOPNOTSUPP));
    // Everything else is as before.
    assert_eq!(std::fs::read(&f).unwrap(), b"hello");
}
