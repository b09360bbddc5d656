//! Tests of the filesystem logic over an in-memory source, without a kernel.

use super::memsource::MemSource;
use super::*;
use crate::model::{Content, Xattr};

const T0: i64 = 1_795_653_296_000_000_000; // 2026-11-26_003456
const DATE0: &str = "2026-11-26_003456";

fn entry(name: &str, kind: EntryKind) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        kind,
        mode: 0o640,
        uid: 1000,
        gid: 100,
        size: 0,
        mtime: Timestamp {
            sec: 1_700_000_000,
            nsec: 123,
        },
        ctime: Timestamp {
            sec: 1_700_000_001,
            nsec: 456,
        },
        ino: 0,
        nlink: 1,
        dev: 0,
        blocks: None,
        flags: 0,
        rdev: 0,
        target: Vec::new(),
        xattrs: Vec::new(),
        content: Content::None,
    }
}

fn file(src: &MemSource, name: &str, pieces: &[&[u8]]) -> Entry {
    let chunks: Vec<ChunkRef> = pieces
        .iter()
        .map(|p| ChunkRef {
            id: src.put_chunk(p.to_vec()),
            len: p.len() as u32,
        })
        .collect();
    Entry {
        size: pieces.iter().map(|p| p.len() as u64).sum(),
        content: Content::Chunks(chunks),
        ..entry(name, EntryKind::File)
    }
}

fn dir(src: &MemSource, name: &str, mut entries: Vec<Entry>) -> Entry {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Entry {
        mode: 0o755,
        content: Content::Tree(src.put_tree(Tree { entries })),
        ..entry(name, EntryKind::Dir)
    }
}

/// A snapshot with every kind of entry; `tag` changes the content of `a.txt`.
fn sample_root(src: &MemSource, tag: &str) -> TreeId {
    let mut link1 = file(src, "link1", &[b"shared"]);
    link1.nlink = 2;
    link1.ino = 77;
    let mut link2 = link1.clone();
    link2.name = b"link2".to_vec();
    let mut a = file(src, "a.txt", &[b"hello ", tag.as_bytes(), b" world"]);
    a.xattrs = vec![Xattr {
        name: b"user.k".to_vec(),
        value: b"v1".to_vec(),
    }];
    let sym = Entry {
        target: b"a.txt".to_vec(),
        ..entry("sym", EntryKind::Symlink)
    };
    let dev = Entry {
        rdev: libc::makedev(8, 1),
        ..entry("sda1", EntryKind::BlockDev)
    };
    let mut sub = dir(src, "sub", vec![file(src, "deep", &[b"d"]), link2]);
    sub.xattrs = vec![Xattr {
        name: b"user.d".to_vec(),
        value: b"dv".to_vec(),
    }];
    let root = dir(
        src,
        "",
        vec![a, link1, sym, dev, sub, entry("fifo", EntryKind::Fifo)],
    );
    root.subtree().unwrap()
}

fn setup() -> (Arc<MemSource>, Vfs) {
    let src = Arc::new(MemSource::new());
    let root = sample_root(&src, "v1");
    src.add_snapshot("10.0.0.5", "mail/imap", T0, root, true);
    let vfs = Vfs::new(src.clone(), VfsConfig::default()).unwrap();
    (src, vfs)
}

fn walk(vfs: &Vfs, path: &str) -> Result<Answer, VfsError> {
    let mut a = vfs.getattr(inode::ROOT_INO)?;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        a = vfs.lookup(a.attr.ino, c.as_bytes())?;
    }
    Ok(a)
}

fn names(vfs: &Vfs, ino: u64, plus: bool) -> Vec<String> {
    let mut out = Vec::new();
    vfs.readdir(ino, 0, plus, |i| {
        out.push(String::from_utf8_lossy(&i.name).into_owned());
        false
    })
    .unwrap();
    out
}

fn read_all(vfs: &Vfs, ino: u64) -> Vec<u8> {
    vfs.open(ino).unwrap();
    vfs.read(ino, 0, 1 << 20).unwrap()
}

#[test]
fn layout_and_metadata() {
    let (_src, vfs) = setup();
    let part = walk(&vfs, "10.0.0.5/mail/imap").unwrap();
    assert_eq!(
        names(&vfs, part.attr.ino, false),
        [".", "..", DATE0, "last"]
    );
    assert_eq!(part.entry_ttl, Duration::from_secs(1));
    let a = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}/a.txt")).unwrap();
    assert_eq!(
        (a.attr.kind, a.attr.perm, a.attr.uid, a.attr.gid),
        (EntryKind::File, 0o640, 1000, 100)
    );
    assert_eq!((a.attr.size, a.attr.blocks), (14, 1));
    assert_eq!(
        a.attr.mtime,
        Timestamp {
            sec: 1_700_000_000,
            nsec: 123
        }
    );
    assert_eq!(a.attr_ttl, Duration::from_secs(86_400));
    assert_eq!(read_all(&vfs, a.attr.ino), b"hello v1 world");
    let snap = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}")).unwrap();
    assert_eq!(
        names(&vfs, snap.attr.ino, true),
        [".", "..", "a.txt", "fifo", "link1", "sda1", "sub", "sym"]
    );
    let sym = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}/sym")).unwrap();
    assert_eq!(vfs.readlink(sym.attr.ino).unwrap(), b"a.txt");
    assert_eq!(sym.attr.size, 5);
    let dev = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}/sda1")).unwrap();
    assert_eq!(
        (dev.attr.kind, dev.attr.rdev),
        (EntryKind::BlockDev, libc::makedev(8, 1))
    );
    assert!(matches!(
        walk(&vfs, "10.0.0.5/nope"),
        Err(VfsError::NotFound)
    ));
    assert!(matches!(
        vfs.readlink(a.attr.ino),
        Err(VfsError::NotSymlink)
    ));
    // Listings inside a snapshot may be cached by the kernel; host/part folders may not.
    assert!(vfs.opendir(snap.attr.ino).unwrap());
    assert!(!vfs.opendir(part.attr.ino).unwrap());
    assert!(matches!(vfs.opendir(a.attr.ino), Err(VfsError::NotDir)));
}

#[test]
fn hard_links_share_an_inode_and_inos_are_stable() {
    let (src, vfs) = setup();
    let l1 = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}/link1")).unwrap();
    let l2 = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}/sub/link2")).unwrap();
    assert_eq!(l1.attr.ino, l2.attr.ino);
    assert_eq!(l1.attr.nlink, 2);
    let a = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}/sub/deep")).unwrap();
    // A second mount of the same source gives the same numbers.
    let vfs2 = Vfs::new(src, VfsConfig::default()).unwrap();
    let b = walk(&vfs2, &format!("10.0.0.5/mail/imap/{DATE0}/sub/deep")).unwrap();
    assert_eq!(a.attr.ino, b.attr.ino);
    assert_eq!(
        walk(&vfs, "10.0.0.5").unwrap().attr.ino,
        walk(&vfs2, "10.0.0.5").unwrap().attr.ino
    );
    // The `last` view is a different node from the date view.
    let c = walk(&vfs, "10.0.0.5/mail/imap/last/sub/deep").unwrap();
    assert_ne!(a.attr.ino, c.attr.ino);
}

#[test]
fn last_moves_but_old_readers_stay_consistent() {
    let (src, vfs) = setup();
    let old_last = walk(&vfs, "10.0.0.5/mail/imap/last").unwrap();
    let old_a = walk(&vfs, "10.0.0.5/mail/imap/last/a.txt").unwrap();
    let fh = old_a.attr.ino; // an open file is read by inode
    vfs.open(fh).unwrap();
    assert!(!vfs.refresh().unwrap());

    let root2 = sample_root(&src, "v2");
    src.add_snapshot("10.0.0.5", "mail/imap", T0 + 3_600_000_000_000, root2, true);
    // A newer partial snapshot does not become `last`.
    let root3 = sample_root(&src, "v3");
    src.add_snapshot(
        "10.0.0.5",
        "mail/imap",
        T0 + 7_200_000_000_000,
        root3,
        false,
    );
    assert!(vfs.refresh().unwrap());

    let new_last = walk(&vfs, "10.0.0.5/mail/imap/last").unwrap();
    assert_ne!(new_last.attr.ino, old_last.attr.ino);
    let new_a = walk(&vfs, "10.0.0.5/mail/imap/last/a.txt").unwrap();
    assert_eq!(read_all(&vfs, new_a.attr.ino), b"hello v2 world");
    // The reader inside the old `last`: open file and cwd lookups still see v1.
    assert_eq!(vfs.read(fh, 0, 100).unwrap(), b"hello v1 world");
    let again = vfs.lookup(old_last.attr.ino, b"a.txt").unwrap();
    assert_eq!(read_all(&vfs, again.attr.ino), b"hello v1 world");
    let part = walk(&vfs, "10.0.0.5/mail/imap").unwrap();
    assert_eq!(names(&vfs, part.attr.ino, false).len(), 2 + 3 + 1);

    // Forgetting a snapshot removes its folder within one refresh.
    let snaps = src.snapshots().unwrap();
    src.forget(snaps[0].id);
    assert!(vfs.refresh().unwrap());
    assert!(matches!(
        walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}")),
        Err(VfsError::NotFound)
    ));
    assert_eq!(vfs.read(fh, 6, 2).unwrap(), b"v1");
}

#[test]
fn reads_map_offsets_to_chunks() {
    let src = Arc::new(MemSource::new());
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let pieces: Vec<&[u8]> = data.chunks(333).collect();
    let f = file(&src, "big", &pieces);
    let root = dir(&src, "", vec![f]);
    src.add_snapshot("h", "p", 0, root.subtree().unwrap(), true);
    let vfs = Vfs::new(src, VfsConfig::default()).unwrap();
    let a = walk(&vfs, "h/p/last/big").unwrap();
    let ino = a.attr.ino;
    // Reads need no open: the kernel's "no open" mode sends none.
    for (off, len) in [
        (0, 10),
        (330, 10),
        (9_990, 100),
        (10_000, 5),
        (20_000, 5),
        (1, 9_999),
    ] {
        let want = &data[(off as usize).min(data.len())..((off + len) as usize).min(data.len())];
        assert_eq!(
            vfs.read(ino, off, len as u32).unwrap(),
            want,
            "at {off}+{len}"
        );
    }
    vfs.open(ino).unwrap();
    // Not a file, or no longer known to the kernel: refused, not empty.
    let root = walk(&vfs, "h/p/last").unwrap().attr.ino;
    assert!(matches!(vfs.read(root, 0, 1), Err(VfsError::IsDir)));
    vfs.forget(ino, 1);
    assert!(matches!(vfs.read(ino, 0, 1), Err(VfsError::StaleInode(_))));
}

#[test]
fn damage_is_an_error_never_wrong_bytes() {
    let src = Arc::new(MemSource::new());
    let f = file(&src, "f", &[b"good", b"bad!"]);
    let bad = f.chunks()[1].id;
    let mut short = file(&src, "short", &[b"xy"]);
    short.size = 5;
    let root = dir(&src, "", vec![f, short]);
    src.add_snapshot("h", "p", 0, root.subtree().unwrap(), true);
    src.corrupt_chunk(bad);
    let vfs = Vfs::new(src, VfsConfig::default()).unwrap();
    let a = walk(&vfs, "h/p/last/f").unwrap();
    let fh = a.attr.ino;
    vfs.open(fh).unwrap();
    assert_eq!(vfs.read(fh, 0, 4).unwrap(), b"good");
    let err = vfs.read(fh, 0, 8).unwrap_err();
    assert!(
        matches!(
            &err,
            VfsError::Source {
                source: SourceError::Damaged(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("h/p/1970-01-01_000000/f: "),
        "{err}"
    );
    let s = walk(&vfs, "h/p/last/short").unwrap();
    assert!(matches!(
        vfs.open(s.attr.ino),
        Err(VfsError::Damaged { .. })
    ));
    // Without an open first (the kernel's "no open" mode), the read itself refuses.
    assert!(matches!(
        vfs.read(s.attr.ino, 0, 5),
        Err(VfsError::Damaged { .. })
    ));
}

#[test]
fn xattrs() {
    let (_src, vfs) = setup();
    let a = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}/a.txt")).unwrap();
    assert_eq!(vfs.getxattr(a.attr.ino, b"user.k").unwrap(), b"v1");
    assert!(matches!(
        vfs.getxattr(a.attr.ino, b"user.x"),
        Err(VfsError::NoXattr)
    ));
    assert_eq!(vfs.listxattr(a.attr.ino).unwrap(), b"user.k\0");
    assert_eq!(vfs.listxattr(inode::ROOT_INO).unwrap(), b"");
    // A folder keeps its own (a file's are re-read from its folder's tree).
    let sub = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}/sub")).unwrap();
    assert_eq!(vfs.getxattr(sub.attr.ino, b"user.d").unwrap(), b"dv");
    assert_eq!(vfs.listxattr(sub.attr.ino).unwrap(), b"user.d\0");
}

#[test]
fn readdirplus_counts_lookups_and_forget_frees_nodes() {
    let (_src, vfs) = setup();
    let snap = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}")).unwrap();
    let base = vfs.node_count();
    // A buffer that takes `.`, `..` and two entries.
    let mut taken = Vec::new();
    vfs.readdir(snap.attr.ino, 0, true, |i| {
        if taken.len() == 4 {
            return true;
        }
        taken.push((i.answer.attr.ino, i.next));
        false
    })
    .unwrap();
    assert_eq!(vfs.node_count(), base + 2);
    // Continue from the last offset: the rest.
    let mut rest = Vec::new();
    vfs.readdir(snap.attr.ino, taken[3].1, true, |i| {
        rest.push(String::from_utf8_lossy(&i.name).into_owned());
        false
    })
    .unwrap();
    assert_eq!(rest, ["link1", "sda1", "sub", "sym"]);
    for (ino, _) in &taken[2..] {
        vfs.forget(*ino, 1);
    }
    assert_eq!(vfs.node_count(), base + 4);
}

#[test]
fn mount_cost_does_not_depend_on_tree_sizes() {
    // 20 000 snapshots over 50 hosts: building the layout reads no tree at all.
    let src = Arc::new(MemSource::new());
    let root = sample_root(&src, "x");
    for i in 0..20_000i64 {
        let host = format!("10.0.{}.{}", i % 50 / 10, i % 10);
        src.add_snapshot(
            &host,
            "mail/imap",
            T0 + i * 3_600_000_000_000,
            root,
            i % 7 != 0,
        );
    }
    let t = std::time::Instant::now();
    let vfs = Vfs::new(src, VfsConfig::default()).unwrap();
    let built = t.elapsed();
    let t = std::time::Instant::now();
    assert!(!vfs.refresh().unwrap());
    eprintln!(
        "layout of 20000 snapshots: {built:?}; an idle refresh: {:?}",
        t.elapsed()
    );
    assert!(built < Duration::from_secs(5));
    let part = walk(&vfs, "10.0.2.3/mail/imap").unwrap();
    assert_eq!(names(&vfs, part.attr.ino, false).len(), 2 + 400 + 1);
}

#[test]
fn listing_a_folder_reads_its_subfolders_ahead() {
    let src = Arc::new(MemSource::new());
    let subs: Vec<Entry> = (0..5)
        .map(|i| {
            let f = file(&src, &format!("m{i}"), &[b"x"]);
            dir(&src, &format!("d{i}"), vec![f])
        })
        .collect();
    let mut entries = subs;
    entries.push(file(&src, "top", &[b"t"]));
    let root = dir(&src, "", entries);
    src.add_snapshot("h", "p", 0, root.subtree().unwrap(), true);
    let vfs = Vfs::new(src.clone(), VfsConfig::default()).unwrap();
    assert_eq!(src.tree_reads(), 0, "mounting reads no tree");
    let snap = walk(&vfs, "h/p/last").unwrap();
    // The root's own tree only, for its st_nlink (2 + 5 subfolders).
    assert_eq!(src.tree_reads(), 1);
    assert_eq!(snap.attr.nlink, 7);
    let snap = snap.attr.ino;
    assert_eq!(names(&vfs, snap, true).len(), 2 + 6);
    // The five subfolders are read on the side, once each.
    let t = std::time::Instant::now();
    while src.tree_reads() < 6 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "no read-ahead"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for i in 0..5 {
        let d = vfs.lookup(snap, format!("d{i}").as_bytes()).unwrap();
        assert_eq!(names(&vfs, d.attr.ino, true), [".", "..", &format!("m{i}")]);
    }
    assert_eq!(src.tree_reads(), 6, "a subfolder was read twice");
    // Listing again asks for nothing: all cached.
    names(&vfs, snap, false);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(src.tree_reads(), 6);
}

#[test]
fn blocks_are_the_recorded_allocation_when_there_is_one() {
    let mut e = entry("f", EntryKind::File);
    e.size = 1 << 30;
    // Recorded before format 1.2: what the size needs.
    assert_eq!(entry_attr(5, &e).blocks, 1 << 21);
    // A sparse file shows what it had allocated, so `du` and `cp` see the holes.
    e.blocks = Some(16);
    assert_eq!(entry_attr(5, &e).blocks, 16);
}

/// Two files of a hostile tree give one chunk different lengths: the second file's reads are
/// refused (never sliced past the cached chunk's end, which panicked a FUSE thread).
#[test]
fn a_chunk_with_two_lengths_is_damage_not_a_panic() {
    let src = Arc::new(MemSource::new());
    let honest = file(&src, "a", &[b"0123456789"]);
    let mut liar = honest.clone();
    liar.name = b"b".to_vec();
    if let Content::Chunks(c) = &mut liar.content {
        c[0].len = 1000;
    }
    liar.size = 1000;
    let root = dir(&src, "", vec![honest, liar]);
    src.add_snapshot("h", "p", 0, root.subtree().unwrap(), true);
    let vfs = Vfs::new(src, VfsConfig::default()).unwrap();
    let a = walk(&vfs, "h/p/last/a").unwrap().attr.ino;
    let b = walk(&vfs, "h/p/last/b").unwrap().attr.ino;
    assert_eq!(vfs.read(a, 0, 100).unwrap(), b"0123456789");
    let err = vfs.read(b, 0, 1000).unwrap_err();
    assert!(matches!(err, VfsError::Damaged { .. }), "{err}");
    assert_eq!(vfs.read(a, 2, 3).unwrap(), b"234");
}

#[test]
fn a_paged_folder_is_looked_up_and_listed_page_by_page_with_stable_offsets() {
    let src = Arc::new(MemSource::new());
    let n = 12_000;
    let mut entries: Vec<Entry> = (0..n)
        .map(|i| entry(&format!("{i}."), EntryKind::File))
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let want: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    let big = Entry {
        mode: 0o755,
        content: Content::Tree(src.put_folder(entries)),
        ..entry("big", EntryKind::Dir)
    };
    let root = src.put_tree(Tree { entries: vec![big] });
    src.add_snapshot("10.0.0.5", "mail/imap", T0, root, true);
    let vfs = Vfs::new(src.clone(), VfsConfig::default()).unwrap();
    let dir = walk(&vfs, &format!("10.0.0.5/mail/imap/{DATE0}/big")).unwrap();

    // A lookup reads the index and the one page that holds the name.
    let before = src.tree_reads();
    let e = vfs.lookup(dir.attr.ino, b"6000.").unwrap();
    assert_eq!(e.attr.kind, EntryKind::File);
    assert!(
        src.tree_reads() - before <= 2,
        "{}",
        src.tree_reads() - before
    );
    assert!(matches!(
        vfs.lookup(dir.attr.ino, b"nope"),
        Err(VfsError::NotFound)
    ));

    // Listed 1000 at a time, each call resuming at the offset the last item gave.
    let mut got: Vec<String> = Vec::new();
    let mut offset = 0;
    loop {
        let mut taken = 0;
        vfs.readdir(dir.attr.ino, offset, false, |i| {
            if taken == 1000 {
                return true;
            }
            taken += 1;
            got.push(String::from_utf8_lossy(&i.name).into_owned());
            offset = i.next;
            false
        })
        .unwrap();
        if taken == 0 {
            break;
        }
    }
    assert_eq!(&got[..2], [".", ".."]);
    assert_eq!(got[2..], want[..]);
    // Offset 2 + position: resuming anywhere gives the entry at that position.
    let mut first = None;
    vfs.readdir(dir.attr.ino, 2 + 7777, false, |i| {
        first = Some(String::from_utf8_lossy(&i.name).into_owned());
        true
    })
    .unwrap();
    assert_eq!(first.as_deref(), Some(want[7777].as_str()));
}

/// A node keeps where its entry is, not its chunk list: the reads of one file must not find the
/// entry in its folder's tree again each time, even when the tree cache holds nothing.
#[test]
fn reading_a_file_piece_by_piece_finds_its_entry_once() {
    let src = Arc::new(MemSource::new());
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let pieces: Vec<&[u8]> = data.chunks(500).collect();
    let sub = dir(&src, "sub", vec![file(&src, "big", &pieces)]);
    let other = dir(&src, "other", vec![file(&src, "small", &[b"x"])]);
    let root = dir(&src, "", vec![other, sub]);
    src.add_snapshot("h", "p", 0, root.subtree().unwrap(), true);
    // The tree cache keeps only its newest tree, so two files of two folders read in turn
    // (as `cp -r` with readahead does) would each find their folder gone.
    let cfg = VfsConfig {
        tree_cache_bytes: 0,
        ..VfsConfig::default()
    };
    let vfs = Vfs::new(src.clone(), cfg).unwrap();
    let big = walk(&vfs, "h/p/last/sub/big").unwrap().attr.ino;
    let small = walk(&vfs, "h/p/last/other/small").unwrap().attr.ino;
    let before = src.tree_reads();
    let mut got = Vec::new();
    for off in (0..data.len()).step_by(100) {
        got.extend(vfs.read(big, off as u64, 100).unwrap());
        assert_eq!(vfs.read(small, 0, 10).unwrap(), b"x");
    }
    assert_eq!(got, data);
    let reads = src.tree_reads() - before;
    assert!(
        reads <= 2,
        "{reads} tree reads for 100 reads of each of two files"
    );
}
