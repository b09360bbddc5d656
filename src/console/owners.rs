//! Owner and group names for the browse page, as this machine's user database gives them
//! (`getpwuid_r`/`getgrgid_r`): the backup server usually shares the mail server's accounts
//! (`cyrus`, `mail`); an id unknown here is shown as its number. Cached per process, since a
//! folder of 10,000 messages has one or two owners.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::OnceLock;

/// Names by (is a group, id); None for an id this machine does not know.
type Names = Mutex<HashMap<(bool, u32), Option<String>>>;

fn cache() -> &'static Names {
    static C: OnceLock<Names> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The user name of `uid`, if this machine knows it.
pub fn user(uid: u32) -> Option<String> {
    cached(false, uid, lookup_user)
}

/// The group name of `gid`, if this machine knows it.
pub fn group(gid: u32) -> Option<String> {
    cached(true, gid, lookup_group)
}

fn cached(group: bool, id: u32, look: fn(u32) -> Option<String>) -> Option<String> {
    if let Some(v) = cache().lock().get(&(group, id)) {
        return v.clone();
    }
    let v = look(id);
    let mut c = cache().lock();
    if c.len() > 10_000 {
        c.clear();
    }
    c.insert((group, id), v.clone());
    v
}

fn lookup_user(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `pwd` and `buf` outlive the call; the result points into them.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut out);
        if rc != 0 || out.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned())
    }
}

fn lookup_group(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: as in lookup_user.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut out);
        if rc != 0 || out.is_null() || grp.gr_name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_root() {
        assert_eq!(super::user(0).as_deref(), Some("root"));
        assert_eq!(super::group(0).as_deref(), Some("root"));
        assert_eq!(super::user(3_999_999_999), None);
    }
}
