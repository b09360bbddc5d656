//! The exact comparison of two directory trees, the oracle of every backup/restore round trip,
//! with rsync as an independent second opinion.
//!
//! The comparison never follows symlinks (`lstat` everywhere) and compares names as raw bytes,
//! kind, permission bits (setuid/setgid/sticky included), owner, size, mtime to the nanosecond
//! (directories too), content, symlink targets, device numbers, `user.*` xattrs and the
//! hard-link structure. Directory sizes are not compared: they depend on the filesystem's
//! history, not on what a restore could control.
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to compare beyond the always-compared basics. `Default` is strict except for atime
/// (reading a file changes it) and ctime (the kernel sets it; no restore can).
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub atime: bool,
    pub ctime: bool,
    /// Compare the root directory's own mode, owner and xattrs.
    pub root_metadata: bool,
    /// Compare the root directory's own times.
    pub root_times: bool,
    pub owners: bool,
    pub xattrs: bool,
    /// A file with holes in `a` must have holes in `b` too, allocating at most 1 MiB more
    /// (allocation granularity differs between filesystems, hence the slack).
    pub sparse: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            atime: false,
            ctime: false,
            root_metadata: true,
            root_times: true,
            owners: true,
            xattrs: true,
            sparse: false,
        }
    }
}

impl CompareOptions {
    /// Everything below the roots, nothing about the roots themselves (e.g. a restore target
    /// created by the test).
    pub fn ignore_root() -> Self {
        CompareOptions {
            root_metadata: false,
            root_times: false,
            ..Self::default()
        }
    }
}

/// Panics with every difference between the trees at `a` and `b`.
pub fn assert_same_tree(a: &Path, b: &Path) {
    assert_same_tree_with(a, b, &CompareOptions::default());
}

/// Panics unless `restored` holds exactly the tree of `expected`; the restore target's own
/// metadata (made by the test) is not compared.
pub fn assert_restored(expected: &Path, restored: &Path) {
    assert_same_tree_with(expected, restored, &CompareOptions::ignore_root());
}

pub fn assert_same_tree_with(a: &Path, b: &Path, opts: &CompareOptions) {
    let diffs = diff_trees_with(a, b, opts);
    if !diffs.is_empty() {
        let shown: Vec<&str> = diffs.iter().take(50).map(String::as_str).collect();
        panic!(
            "{} and {} differ in {} ways:\n  {}{}",
            a.display(),
            b.display(),
            diffs.len(),
            shown.join("\n  "),
            if diffs.len() > 50 { "\n  …" } else { "" }
        );
    }
}

/// Every difference, one line each, starting with the relative path (`.` is the root).
pub fn diff_trees(a: &Path, b: &Path) -> Vec<String> {
    diff_trees_with(a, b, &CompareOptions::default())
}

pub fn diff_trees_with(a: &Path, b: &Path, opts: &CompareOptions) -> Vec<String> {
    let mut c = Comparer {
        opts,
        diffs: Vec::new(),
        links: [BTreeMap::new(), BTreeMap::new()],
    };
    c.entry(Path::new("."), a, b, true);
    c.hard_links();
    c.diffs
}

type InodeGroups = BTreeMap<(u64, u64), BTreeSet<PathBuf>>;

struct Comparer<'o> {
    opts: &'o CompareOptions,
    diffs: Vec<String>,
    /// Names of multiply-linked inodes, per side, by (dev, ino).
    links: [InodeGroups; 2],
}

fn kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_file() {
        "file"
    } else if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "char device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "unknown"
    }
}

impl Comparer<'_> {
    fn diff(&mut self, rel: &Path, what: String) {
        self.diffs.push(format!("{rel:?}: {what}"));
    }

    fn entry(&mut self, rel: &Path, pa: &Path, pb: &Path, is_root: bool) {
        let (ma, mb) = match (std::fs::symlink_metadata(pa), std::fs::symlink_metadata(pb)) {
            (Ok(ma), Ok(mb)) => (ma, mb),
            (ra, rb) => {
                self.diff(rel, format!("cannot stat: {:?} / {:?}", ra.err(), rb.err()));
                return;
            }
        };
        if kind(&ma) != kind(&mb) {
            self.diff(rel, format!("kind {} vs {}", kind(&ma), kind(&mb)));
            return;
        }
        let o = self.opts;
        if !is_root || o.root_metadata {
            if ma.mode() & 0o7777 != mb.mode() & 0o7777 {
                self.diff(
                    rel,
                    format!(
                        "mode {:04o} vs {:04o}",
                        ma.mode() & 0o7777,
                        mb.mode() & 0o7777
                    ),
                );
            }
            if o.owners && (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
                self.diff(
                    rel,
                    format!(
                        "owner {}:{} vs {}:{}",
                        ma.uid(),
                        ma.gid(),
                        mb.uid(),
                        mb.gid()
                    ),
                );
            }
            if o.xattrs {
                self.xattrs(rel, pa, pb);
            }
        }
        if !is_root || o.root_times {
            let times = [
                (
                    "mtime",
                    true,
                    (ma.mtime(), ma.mtime_nsec()),
                    (mb.mtime(), mb.mtime_nsec()),
                ),
                (
                    "atime",
                    o.atime,
                    (ma.atime(), ma.atime_nsec()),
                    (mb.atime(), mb.atime_nsec()),
                ),
                (
                    "ctime",
                    o.ctime,
                    (ma.ctime(), ma.ctime_nsec()),
                    (mb.ctime(), mb.ctime_nsec()),
                ),
            ];
            for (name, wanted, ta, tb) in times {
                if wanted && ta != tb {
                    self.diff(
                        rel,
                        format!("{name} {}.{:09} vs {}.{:09}", ta.0, ta.1, tb.0, tb.1),
                    );
                }
            }
        }
        let t = ma.file_type();
        if !t.is_dir() && ma.len() != mb.len() {
            self.diff(rel, format!("size {} vs {}", ma.len(), mb.len()));
        }
        if (t.is_char_device() || t.is_block_device()) && ma.rdev() != mb.rdev() {
            self.diff(rel, format!("device {:#x} vs {:#x}", ma.rdev(), mb.rdev()));
        }
        for (side, m) in [&ma, &mb].into_iter().enumerate() {
            if !t.is_dir() && m.nlink() > 1 {
                self.links[side]
                    .entry((m.dev(), m.ino()))
                    .or_default()
                    .insert(rel.to_path_buf());
            }
        }
        if t.is_symlink() {
            match (std::fs::read_link(pa), std::fs::read_link(pb)) {
                (Ok(la), Ok(lb)) if la == lb => {}
                (la, lb) => self.diff(rel, format!("symlink target {la:?} vs {lb:?}")),
            }
        } else if t.is_file() && ma.len() == mb.len() {
            let (alloc_a, alloc_b) = (ma.blocks() * 512, mb.blocks() * 512);
            if o.sparse && alloc_a < ma.len() && alloc_b > alloc_a + (1 << 20) {
                self.diff(
                    rel,
                    format!("not sparse: allocates {alloc_b} bytes vs {alloc_a}"),
                );
            }
            match first_difference(pa, pb) {
                Ok(None) => {}
                Ok(Some(offset)) => self.diff(rel, format!("content differs at byte {offset}")),
                Err(e) => self.diff(rel, format!("cannot read: {e}")),
            }
        } else if t.is_dir() {
            self.dir(rel, pa, pb);
        }
    }

    fn dir(&mut self, rel: &Path, pa: &Path, pb: &Path) {
        let (na, nb) = match (names(pa), names(pb)) {
            (Ok(na), Ok(nb)) => (na, nb),
            (ra, rb) => {
                self.diff(rel, format!("cannot list: {:?} / {:?}", ra.err(), rb.err()));
                return;
            }
        };
        for name in na.union(&nb) {
            let child = if rel == Path::new(".") {
                PathBuf::from(name)
            } else {
                rel.join(name)
            };
            match (na.contains(name), nb.contains(name)) {
                (true, true) => self.entry(&child, &pa.join(name), &pb.join(name), false),
                (true, false) => self.diff(&child, "only in a".to_string()),
                _ => self.diff(&child, "only in b".to_string()),
            }
        }
    }

    fn xattrs(&mut self, rel: &Path, pa: &Path, pb: &Path) {
        match (user_xattrs(pa), user_xattrs(pb)) {
            (Ok(xa), Ok(xb)) => {
                let keys: BTreeSet<&Vec<u8>> = xa.keys().chain(xb.keys()).collect();
                for k in keys {
                    let (va, vb) = (xa.get(k), xb.get(k));
                    if va != vb {
                        let show = |v: Option<&Vec<u8>>| {
                            v.map(|v| String::from_utf8_lossy(v).into_owned())
                        };
                        self.diff(
                            rel,
                            format!(
                                "xattr {} {:?} vs {:?}",
                                String::from_utf8_lossy(k),
                                show(va),
                                show(vb)
                            ),
                        );
                    }
                }
            }
            (ra, rb) => self.diff(
                rel,
                format!("cannot read xattrs: {:?} / {:?}", ra.err(), rb.err()),
            ),
        }
    }

    /// Every name linked to other names in one tree must be linked to exactly the same names
    /// in the other.
    fn hard_links(&mut self) {
        let group_of = |groups: &InodeGroups| -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
            let mut m = BTreeMap::new();
            for g in groups.values().filter(|g| g.len() > 1) {
                for p in g {
                    m.insert(p.clone(), g.clone());
                }
            }
            m
        };
        let (ga, gb) = (group_of(&self.links[0]), group_of(&self.links[1]));
        let mut reported = BTreeSet::new();
        let paths: BTreeSet<&PathBuf> = ga.keys().chain(gb.keys()).collect();
        for p in paths {
            let single = || BTreeSet::from([p.clone()]);
            let a = ga.get(p).cloned().unwrap_or_else(single);
            let b = gb.get(p).cloned().unwrap_or_else(single);
            if a != b && reported.insert((a.clone(), b.clone())) {
                self.diffs.push(format!("{p:?}: hard links {a:?} vs {b:?}"));
            }
        }
    }
}

fn names(dir: &Path) -> io::Result<BTreeSet<OsString>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// Offset of the first differing byte of two files of equal size, streaming.
fn first_difference(a: &Path, b: &Path) -> io::Result<Option<u64>> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if let Some(i) = ba[..n.min(m)]
            .iter()
            .zip(&bb[..n.min(m)])
            .position(|(x, y)| x != y)
        {
            return Ok(Some(offset + i as u64));
        }
        if n != m {
            return Ok(Some(offset + n.min(m) as u64));
        }
        if n == 0 {
            return Ok(None);
        }
        offset += n as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// The `user.*` extended attributes of `path` itself (not of a symlink's target).
pub fn user_xattrs(path: &Path) -> io::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let c = c_path(path)?;
    // SAFETY: a null buffer with size 0 asks for the needed size.
    let size = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if size < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENOTSUP) {
            Ok(BTreeMap::new())
        } else {
            Err(e)
        };
    }
    let mut list = vec![0u8; size as usize];
    // SAFETY: `list` has `list.len()` writable bytes.
    let size = unsafe { libc::llistxattr(c.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    if size < 0 {
        return Err(io::Error::last_os_error());
    }
    list.truncate(size as usize);
    let mut out = BTreeMap::new();
    for name in list.split(|&b| b == 0).filter(|n| n.starts_with(b"user.")) {
        let cn = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: as above, size query then a read into a buffer of that size.
        let len = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut value = vec![0u8; len as usize];
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cn.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        value.truncate(len as usize);
        out.insert(name.to_vec(), value);
    }
    Ok(out)
}

/// Every extended attribute of `path` (all namespaces, as the mount serves them), read the way
/// the backup reads them.
pub fn xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    bmbackup::vfs::memsource::read_xattrs(p)
        .unwrap()
        .into_iter()
        .map(|x| (x.name, x.value))
        .collect()
}

/// Copies a tree exactly (hard links, xattrs, owners, devices, times) with rsync; a reference
/// to test the comparer and restores against.
pub fn rsync_copy(a: &Path, b: &Path) {
    let out = Command::new("rsync")
        .args(["-aHAXS", "--numeric-ids"])
        .arg(slash(a))
        .arg(b)
        .output()
        .expect("run rsync");
    assert!(
        out.status.success(),
        "rsync copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `rsync -naHAXc --itemize-changes --delete` would change to make `b` like `a`: an
/// independent second opinion on `diff_trees`.
pub fn rsync_itemize(a: &Path, b: &Path) -> Vec<String> {
    let out = Command::new("rsync")
        .args(["-naHAXc", "--numeric-ids", "--delete", "--itemize-changes"])
        .arg(slash(a))
        .arg(slash(b))
        .output()
        .expect("run rsync");
    assert!(
        out.status.success(),
        "rsync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn slash(p: &Path) -> OsString {
    let mut s = p.as_os_str().to_owned();
    s.push("/");
    s
}
