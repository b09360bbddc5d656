//! Fuzzing of every decoder of untrusted store bytes (tree blobs, tree indexes of paged folders,
//! packs and their frames,
//! manifests) with proptest: random bytes, mutations of valid encodings, and trees of arbitrary
//! (hostile) entries built through the real encoder. A decoder must never panic, whatever
//! decodes must be safe to restore, and no single allocation may be larger than a small
//! multiple of the input (a counting allocator watches this thread's allocations): lengths
//! and counts read from the bytes are never trusted. 300 cases per property normally, 10,000
//! with BMBACKUP_LONG=1.

use bmbackup::id::{ChunkId, Digest, TreeId};
use bmbackup::model::{ChunkRef, Content, Entry, EntryKind, Manifest, Timestamp, Tree, Xattr};
use bmbackup::pages::{PageRef, TreeBlob, TreeIndex};
use bmbackup::store::pack::{
    decode_frame, encode_frame, open_blob, parse_index, parse_trailer, BlobKind, Codec, IndexEntry,
    PackBuilder, TRAILER_LEN,
};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Records the largest allocation made by each thread.
struct Watch;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the bookkeeping neither allocates nor panics
// (`try_with` is a no-op while the thread-local is being torn down).
unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(new_size)));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static WATCH: Watch = Watch;

/// Runs `f` and returns the largest single allocation it made.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    f();
    LARGEST.with(|l| l.get())
}

/// What any decoder may allocate at once for `input` bytes: a small multiple (decoded
/// entries are bigger than their encoding) plus a constant.
fn allowed(input: usize) -> usize {
    16 * input + (256 << 10)
}

fn cases() -> u32 {
    if std::env::var_os("BMBACKUP_LONG").is_some() {
        10_000
    } else {
        300
    }
}

fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"..".to_vec()),
        Just(b".".to_vec()),
        Just(Vec::new()),
        Just(b"a/b".to_vec()),
        Just(b"a\0b".to_vec()),
        Just(b"/etc".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..12),
    ]
}

fn kind_strategy() -> impl Strategy<Value = EntryKind> {
    (1u8..=7).prop_map(|c| EntryKind::from_code(c).unwrap_or(EntryKind::File))
}

fn content_strategy() -> impl Strategy<Value = Content> {
    prop_oneof![
        Just(Content::None),
        proptest::collection::vec((any::<[u8; 32]>(), any::<u32>()), 0..4).prop_map(|v| {
            Content::Chunks(
                v.into_iter()
                    .map(|(id, len)| ChunkRef {
                        id: ChunkId(Digest(id)),
                        len,
                    })
                    .collect(),
            )
        }),
        any::<[u8; 32]>().prop_map(|id| Content::Tree(TreeId(Digest(id)))),
    ]
}

prop_compose! {
    fn entry_strategy()(
        name in name_strategy(),
        kind in kind_strategy(),
        content in content_strategy(),
        size in prop_oneof![Just(None), any::<u64>().prop_map(Some)],
        mode in any::<u32>(),
        nlink in any::<u32>(),
        dev in any::<u32>(),
        blocks in any::<Option<u64>>(),
        flags in any::<u32>(),
        ino in any::<u64>(),
        sec in any::<i64>(),
        nsec in any::<u32>(),
        target in proptest::collection::vec(any::<u8>(), 0..8),
        xattrs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..6), proptest::collection::vec(any::<u8>(), 0..6)),
            0..3,
        ),
    ) -> Entry {
        // Usually an honest size (so that the tree decodes), sometimes any size at all.
        let honest = content_size(&content);
        Entry {
            name, kind, mode, uid: 0, gid: 0,
            size: size.unwrap_or(honest),
            mtime: Timestamp { sec, nsec }, ctime: Timestamp::default(),
            ino, nlink, dev, blocks, flags, rdev: 0, target,
            xattrs: xattrs.into_iter().map(|(name, value)| Xattr { name, value }).collect(),
            content,
        }
    }
}

fn content_size(c: &Content) -> u64 {
    match c {
        Content::Chunks(v) => v.iter().map(|c| u64::from(c.len)).sum(),
        _ => 0,
    }
}

/// What every decoded tree must satisfy: restoring it cannot leave its folder, entries are
/// sorted and unique, and contents fit their kinds and sizes.
fn assert_safe(t: &Tree) -> Result<(), TestCaseError> {
    for e in &t.entries {
        prop_assert!(bmbackup::tree::is_safe_name(&e.name), "{:?}", e.name);
        match (&e.kind, &e.content) {
            (EntryKind::Dir, c) => prop_assert!(matches!(c, Content::Tree(_))),
            (EntryKind::File, c) => {
                prop_assert!(!matches!(c, Content::Tree(_)));
                prop_assert_eq!(content_size(c), e.size);
            }
            (_, c) => prop_assert!(content_size(c) == 0 && !matches!(c, Content::Tree(_))),
        }
    }
    for w in t.entries.windows(2) {
        prop_assert!(w[0].name < w[1].name);
    }
    Ok(())
}

fn valid_tree_bytes() -> Vec<u8> {
    let mut f = Entry {
        name: b"a\nb".to_vec(),
        kind: EntryKind::File,
        mode: 0o644,
        uid: 1,
        gid: 2,
        size: 4,
        mtime: Timestamp { sec: 5, nsec: 6 },
        ctime: Timestamp::default(),
        ino: 7,
        nlink: 2,
        dev: 1,
        blocks: Some(8),
        flags: 0,
        rdev: 0,
        target: Vec::new(),
        xattrs: vec![Xattr {
            name: b"user.x".to_vec(),
            value: vec![1, 2],
        }],
        content: Content::Chunks(vec![ChunkRef {
            id: ChunkId::of(b"data"),
            len: 4,
        }]),
    };
    let mut d = f.clone();
    d.name = b"d".to_vec();
    d.kind = EntryKind::Dir;
    d.size = 0;
    d.content = Content::Tree(TreeId::of(b"t"));
    let mut l = f.clone();
    l.name = b"l".to_vec();
    l.kind = EntryKind::Symlink;
    l.size = 0;
    l.target = b"/abs".to_vec();
    l.content = Content::None;
    f.xattrs.push(Xattr {
        name: b"user.y".to_vec(),
        value: vec![0; 40],
    });
    Tree {
        entries: vec![f, d, l],
    }
    .encode()
}

fn valid_pack() -> Vec<u8> {
    let mut b = PackBuilder::new();
    let mut codec = Codec::new(3).unwrap();
    let zeros = vec![0u8; 5000];
    for (k, d) in [
        (BlobKind::Chunk, &b"hello"[..]),
        (BlobKind::Chunk, &zeros[..]),
        (BlobKind::Tree, &valid_tree_bytes()[..]),
    ] {
        let id = Digest::of(d);
        let frame = encode_frame(d, &id, &mut codec).unwrap();
        b.add(k, id, &frame);
    }
    b.finish().0
}

/// Everything a reader does with a pack's bytes.
fn read_pack(bytes: &[u8]) {
    if bytes.len() < TRAILER_LEN {
        return;
    }
    let Ok(t) = parse_trailer(&bytes[bytes.len() - TRAILER_LEN..], bytes.len() as u64) else {
        return;
    };
    let Some(ib) = bytes.get(t.index_offset as usize..bytes.len() - TRAILER_LEN) else {
        return;
    };
    if let Ok(entries) = parse_index(ib, &t) {
        for e in entries {
            let Some(f) =
                bytes.get(e.offset as usize..(e.offset + u64::from(e.stored_len)) as usize)
            else {
                continue;
            };
            if let Ok(plain) = open_blob(f, &e) {
                if e.kind == BlobKind::Tree {
                    let _ = TreeBlob::decode(&plain);
                }
            }
        }
    }
}

/// A valid tree index of three pages.
fn valid_index_bytes() -> Vec<u8> {
    let pages = ["a", "k", "t"]
        .iter()
        .enumerate()
        .map(|(i, n)| PageRef {
            first: n.as_bytes().to_vec(),
            id: TreeId::of(n.as_bytes()),
            count: 300 + i as u32,
        })
        .collect();
    TreeIndex::new(pages).unwrap().encode()
}

/// What readers rely on in a decoded index: sorted, distinct, safe first names, bounded page
/// counts that add up, at least two pages.
fn assert_sane_index(ix: &TreeIndex) -> Result<(), TestCaseError> {
    let pages = ix.pages();
    prop_assert!(pages.len() >= 2);
    let mut total = 0u64;
    for (i, p) in pages.iter().enumerate() {
        prop_assert!(bmbackup::tree::is_safe_name(&p.first));
        prop_assert!(p.count >= 1 && p.count as usize <= bmbackup::pages::PAGE_MAX);
        if i > 0 {
            prop_assert!(pages[i - 1].first < p.first);
        }
        prop_assert_eq!(ix.start(i), total);
        total += u64::from(p.count);
    }
    prop_assert_eq!(ix.len(), total);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn trees_of_hostile_entries_decode_safely(entries in proptest::collection::vec(entry_strategy(), 0..6), sort in any::<bool>()) {
        let mut entries = entries;
        if sort {
            entries.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let bytes = Tree { entries }.encode();
        let mut decoded = None;
        let big = largest_allocation(|| decoded = Some(Tree::decode(&bytes)));
        prop_assert!(big <= allowed(bytes.len()), "{big} bytes for {}", bytes.len());
        if let Some(Ok(t)) = decoded {
            assert_safe(&t)?;
            prop_assert_eq!(t.encode(), bytes, "decode is the inverse of encode");
        }
    }

    #[test]
    fn tree_decoder_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut decoded = None;
        let big = largest_allocation(|| decoded = Some(Tree::decode(&bytes)));
        prop_assert!(big <= allowed(bytes.len()), "{big} bytes for {}", bytes.len());
        if let Some(Ok(t)) = decoded {
            assert_safe(&t)?;
        }
    }

    #[test]
    fn tree_decoder_survives_mutations(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
        let mut b = valid_tree_bytes();
        for (pos, val) in edits {
            let i = pos.index(b.len());
            b[i] = val;
        }
        let b = &b[..cut.index(b.len() + 1).max(b.len() / 2)];
        let mut decoded = None;
        let big = largest_allocation(|| decoded = Some(Tree::decode(b)));
        prop_assert!(big <= allowed(b.len()), "{big} bytes for {}", b.len());
        if let Some(Ok(t)) = decoded {
            assert_safe(&t)?;
        }
    }

    #[test]
    fn tree_index_decoder_survives_random_bytes(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
        // Version byte 3 first, so the bytes reach the index decoder.
        let mut bytes = vec![3u8];
        bytes.extend_from_slice(&body);
        let mut decoded = None;
        let big = largest_allocation(|| decoded = Some(TreeBlob::decode(&bytes)));
        prop_assert!(big <= allowed(bytes.len()), "{big} bytes for {}", bytes.len());
        if let Some(Ok(TreeBlob::Index(ix))) = decoded {
            assert_sane_index(&ix)?;
        }
    }

    #[test]
    fn tree_index_decoder_survives_mutations(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
        let mut b = valid_index_bytes();
        for (pos, val) in edits {
            let i = pos.index(b.len());
            b[i] = val;
        }
        let b = &b[..cut.index(b.len() + 1).max(b.len() / 2)];
        let mut decoded = None;
        let big = largest_allocation(|| decoded = Some(TreeBlob::decode(b)));
        prop_assert!(big <= allowed(b.len()), "{big} bytes for {}", b.len());
        match decoded {
            Some(Ok(TreeBlob::Index(ix))) => assert_sane_index(&ix)?,
            Some(Ok(TreeBlob::Flat(t))) => assert_safe(&t)?,
            _ => {}
        }
    }

    #[test]
    fn pack_reader_survives_mutations(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
        let mut b = valid_pack();
        for (pos, val) in edits {
            let i = pos.index(b.len());
            b[i] = val;
        }
        let n = b.len();
        let big = largest_allocation(|| {
            read_pack(&b);
            read_pack(&b[..cut.index(n + 1)]);
        });
        prop_assert!(big <= allowed(n), "{big} bytes for {n}");
    }

    #[test]
    fn frames_never_allocate_what_they_claim(bytes in proptest::collection::vec(any::<u8>(), 0..600), raw_len in any::<u32>(), zstd in any::<bool>(), tree in any::<bool>()) {
        let mut frame = bytes;
        if zstd {
            // A real zstd frame header, then whatever follows.
            let mut codec = Codec::new(1).unwrap();
            let real = encode_frame(&[7u8; 3000], &Digest::of(&[7u8; 3000]), &mut codec).unwrap();
            let keep = frame.len().min(real.bytes.len());
            frame[..keep].copy_from_slice(&real.bytes[..keep]);
        }
        let kind = if tree { BlobKind::Tree } else { BlobKind::Chunk };
        let e = IndexEntry { kind, id: Digest::of(b""), offset: 8, stored_len: frame.len() as u32, raw_len };
        let mut out = None;
        let big = largest_allocation(|| out = Some(open_blob(&frame, &e)));
        prop_assert!(out.unwrap().is_err());
        prop_assert!(big <= allowed(frame.len()), "{big} bytes for a {}-byte frame claiming {raw_len}", frame.len());
        let _ = decode_frame(&frame, raw_len, kind.max_len());
    }

    #[test]
    fn manifest_decoder_survives_mutations(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let m = Manifest {
            host: "h".into(), part: "p".into(), source: "/".into(), started_ns: 1, finished_ns: 2,
            root: Digest::of(b"r").to_hex(), files: 0, dirs: 0, bytes: 0, bytes_read: 0,
            bytes_added: 0, tool_version: "0".into(),
            status: bmbackup::model::SnapshotStatus::Partial,
            problems: Vec::new(), parent: None, root_meta: None,
            name: None, has_xattrs: None,
        };
        let mut b = serde_json::to_vec_pretty(&m).unwrap();
        for (pos, val) in edits {
            let i = pos.index(b.len());
            b[i] = val;
        }
        let big = largest_allocation(|| {
            let _ = serde_json::from_slice::<Manifest>(&b);
        });
        prop_assert!(big <= allowed(b.len()), "{big} bytes for {}", b.len());
    }
}

/// The one case fuzzing would not find by chance: a frame whose header claims the largest tree
/// while holding 9 bytes is refused before anything of that size is allocated.
#[test]
fn a_frame_claiming_a_gigabyte_allocates_nothing_of_the_kind() {
    let mut codec = Codec::new(3).unwrap();
    let real = encode_frame(&[1u8; 100], &Digest::of(&[1u8; 100]), &mut codec).unwrap();
    let e = IndexEntry {
        kind: BlobKind::Tree,
        id: Digest::of(b""),
        offset: 8,
        stored_len: real.bytes.len() as u32,
        raw_len: bmbackup::store::pack::MAX_TREE_LEN,
    };
    let big = largest_allocation(|| assert!(open_blob(&real.bytes, &e).is_err()));
    assert!(big < 1 << 20, "{big}");
}
