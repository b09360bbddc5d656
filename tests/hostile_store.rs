//! A hostile or corrupt store must never make bmbackup write outside the restore target, follow a
//! symlink it restored, panic, or allocate what a length field claims. Crafted stores are built
//! with the library (as an attacker with write access to the store could), then read with the
//! binary; the decoders are also fed random and mutated bytes (proptest).

mod common;

use bmbackup::id::{ChunkId, Digest, TreeId};
use bmbackup::model::{
    ChunkRef, Content, Entry, EntryKind, Manifest, SnapshotStatus, Timestamp, Tree,
};
use bmbackup::store::pack::{
    encode_frame, open_blob, parse_index, parse_trailer, BlobKind, Codec, Frame, IndexEntry,
    PackBuilder, TRAILER_LEN,
};
use bmbackup::store::Store;
use common::{walk, Env};
use proptest::prelude::*;
use std::fs;

fn entry(name: &[u8], kind: EntryKind, content: Content) -> Entry {
    Entry {
        name: name.to_vec(),
        kind,
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        size: 0,
        mtime: Timestamp {
            sec: 1_700_000_000,
            nsec: 0,
        },
        ctime: Timestamp::default(),
        ino: 1,
        nlink: 1,
        dev: 0,
        blocks: None,
        flags: 0,
        rdev: 0,
        target: Vec::new(),
        xattrs: Vec::new(),
        content,
    }
}

fn file(name: &[u8], data: &[u8]) -> Entry {
    let mut e = entry(
        name,
        EntryKind::File,
        Content::Chunks(vec![ChunkRef {
            id: ChunkId::of(data),
            len: data.len() as u32,
        }]),
    );
    e.size = data.len() as u64;
    e
}

/// Writes blobs (with frames as given) into one pack and a manifest whose root is `root`;
/// returns the snapshot id.
fn craft(store: &Store, blobs: Vec<(BlobKind, Digest, Frame)>, root: TreeId) -> String {
    let mut b = PackBuilder::new();
    for (kind, id, frame) in &blobs {
        b.add(*kind, *id, frame);
    }
    let (bytes, id, _) = b.finish();
    store.write_pack(&bmbackup::id::PackId(id), &bytes).unwrap();
    let m = Manifest {
        host: "evil".into(),
        part: format!("p{}", bmbackup::store::backend::unique_suffix()),
        source: "/".into(),
        started_ns: 1,
        finished_ns: 2,
        root: root.to_hex(),
        files: 1,
        dirs: 1,
        bytes: 0,
        bytes_read: 0,
        bytes_added: 0,
        tool_version: "0".into(),
        status: SnapshotStatus::Complete,
        problems: Vec::new(),
        parent: None,
        root_meta: None,
        name: None,
        has_xattrs: None,
    };
    store.write_manifest(&m).unwrap().to_hex()
}

fn blob(kind: BlobKind, data: &[u8]) -> (BlobKind, Digest, Frame) {
    let id = Digest::of(data);
    let frame = encode_frame(data, &id, &mut Codec::new(3).unwrap()).unwrap();
    (kind, id, frame)
}

fn tree_blob(t: &Tree) -> ((BlobKind, Digest, Frame), TreeId) {
    let bytes = t.encode();
    (blob(BlobKind::Tree, &bytes), TreeId::of(&bytes))
}

#[test]
fn crafted_names_cannot_escape_the_restore_target() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let store = env.open_store();
    for bad in [&b".."[..], b"a/b", b"/etc", b"."] {
        let inner = Tree {
            entries: vec![file(b"pwned", b"evil")],
        };
        let (inner_blob, inner_id) = tree_blob(&inner);
        let root = Tree {
            entries: vec![
                entry(bad, EntryKind::Dir, Content::Tree(inner_id)),
                file(b"ok", b"evil"),
            ],
        };
        let (root_blob, root_id) = tree_blob(&root);
        let snap = craft(
            &store,
            vec![inner_blob, root_blob, blob(BlobKind::Chunk, b"evil")],
            root_id,
        );
        let listing = || -> Vec<String> {
            let all = walk(env.dir.path());
            all.iter().map(|p| p.display().to_string()).collect()
        };
        let before = listing();
        let dest = env.path("dest/deeper");
        let out = env.run(&["restore", &snap, dest.to_str().unwrap()]);
        assert!(!out.status.success(), "{bad:?}: {}", common::show(&out));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        let mut after = listing();
        after.retain(|p| !p.contains("/cache"));
        let mut before = before;
        before.retain(|p| !p.contains("/cache"));
        let new: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
        assert!(
            new.iter()
                .all(|p| p.starts_with(dest.to_str().unwrap()) || p.ends_with("/dest")),
            "{bad:?} wrote outside: {new:?}"
        );
        assert!(!env.path("pwned").exists() && !env.path("dest/pwned").exists());
        let _ = fs::remove_dir_all(env.path("dest"));
        // check names the bad tree as damaged.
        let (ok, v) = env.check_json(false);
        assert!(!ok && v["bad_blobs"].to_string().contains("damaged"), "{v}");
        fs::remove_file(env.store().join(format!("snapshots/{snap}.json"))).unwrap();
    }
}

#[test]
fn restored_symlinks_are_never_written_through() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let store = env.open_store();
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    let mut link = entry(b"x", EntryKind::Symlink, Content::None);
    link.target = outside.to_str().unwrap().as_bytes().to_vec();
    link.mode = 0o777;
    let (t1, r1) = tree_blob(&Tree {
        entries: vec![link],
    });
    let s1 = craft(&store, vec![t1], r1);
    // Later snapshots with a file, and a folder with a file, at the symlink's name.
    let (t2, r2) = tree_blob(&Tree {
        entries: vec![file(b"x", b"evil")],
    });
    let s2 = craft(&store, vec![t2, blob(BlobKind::Chunk, b"evil")], r2);
    let inner = Tree {
        entries: vec![file(b"z", b"evil")],
    };
    let (ti, ri) = tree_blob(&inner);
    let (t3, r3) = tree_blob(&Tree {
        entries: vec![entry(b"x", EntryKind::Dir, Content::Tree(ri))],
    });
    let s3 = craft(&store, vec![ti, t3, blob(BlobKind::Chunk, b"evil")], r3);

    let dest = env.path("dest");
    let d = dest.to_str().unwrap();
    env.ok(&["restore", &s1, d]);
    assert_eq!(fs::read_link(dest.join("x")).unwrap(), outside);
    for s in [&s2, &s3] {
        env.code(&["restore", s, d], 3);
        assert_eq!(fs::read_link(dest.join("x")).unwrap(), outside);
        assert!(fs::read_dir(&outside).unwrap().next().is_none());
        env.ok(&["restore", "--overwrite", s, d]);
        assert!(
            fs::read_dir(&outside).unwrap().next().is_none(),
            "wrote through the link"
        );
        assert!(!fs::symlink_metadata(dest.join("x")).unwrap().is_symlink());
        fs::remove_dir_all(&dest).unwrap();
        env.ok(&["restore", &s1, d]);
    }
}

#[test]
fn oversized_lengths_and_bad_compressed_data_are_errors() {
    let env = Env::with_init(&["--chunk-avg", "1M"]);
    let store = env.open_store();
    // A chunk whose frame is not zstd at all, and one that claims 4 GiB.
    let data = vec![7u8; 1000];
    let garbage = Frame {
        bytes: [&[1u8][..], &[0xff; 40][..]].concat(),
        raw_len: 1000,
    };
    let (t, r) = tree_blob(&Tree {
        entries: vec![file(b"bad", &data), file(b"good", b"fine")],
    });
    let snap = craft(
        &store,
        vec![
            t,
            (BlobKind::Chunk, Digest::of(&data), garbage),
            blob(BlobKind::Chunk, b"fine"),
        ],
        r,
    );
    let dest = env.path("dest");
    let msg = env.code(&["restore", &snap, dest.to_str().unwrap()], 3);
    assert!(msg.contains("bad") && msg.contains("decompress"), "{msg}");
    assert_eq!(fs::read(dest.join("good")).unwrap(), b"fine");
    let (ok, v) = env.check_json(true);
    assert!(!ok);
    assert!(v["bad_blobs"][0]["uses"][0]["path"] == "bad", "{v}");

    let huge = Frame {
        bytes: vec![1, 0, 0],
        raw_len: u32::MAX,
    };
    let (t, r) = tree_blob(&Tree {
        entries: vec![file(b"huge", b"x")],
    });
    let _ = craft(
        &store,
        vec![(BlobKind::Chunk, Digest::of(b"x"), huge), t],
        r,
    );
    let (ok, v) = env.check_json(true);
    assert!(
        !ok && !v["damaged_packs"].as_array().unwrap().is_empty(),
        "{v}"
    );
}

fn valid_tree_bytes() -> Vec<u8> {
    let mut f = file(b"a\nb", b"data");
    f.xattrs = vec![bmbackup::model::Xattr {
        name: b"user.x".to_vec(),
        value: vec![1, 2],
    }];
    let mut l = entry(b"l", EntryKind::Symlink, Content::None);
    l.target = b"/abs".to_vec();
    Tree {
        entries: vec![
            f,
            entry(b"d", EntryKind::Dir, Content::Tree(TreeId::of(b"t"))),
            l,
        ],
    }
    .encode()
}

fn valid_pack() -> Vec<u8> {
    let mut b = PackBuilder::new();
    for (k, d) in [
        (BlobKind::Chunk, &b"hello"[..]),
        (BlobKind::Tree, &valid_tree_bytes()[..]),
    ] {
        let (kind, id, frame) = blob(k, d);
        b.add(kind, id, &frame);
    }
    b.finish().0
}

/// Everything a reader does with a pack's bytes; must return errors, never panic.
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
            let f = &bytes[e.offset as usize..(e.offset + u64::from(e.stored_len)) as usize];
            if let Ok(plain) = open_blob(f, &e) {
                if e.kind == BlobKind::Tree {
                    let _ = Tree::decode(&plain);
                }
            }
        }
    }
}

/// 256 cases per property normally, 10,000 with BMBACKUP_LONG=1 (see also fuzz_decoders.rs).
fn cases() -> u32 {
    if common::long() {
        10_000
    } else {
        256
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn tree_decoder_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Tree::decode(&bytes);
    }

    #[test]
    fn tree_decoder_survives_mutations(pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut b = valid_tree_bytes();
        let i = pos.index(b.len());
        b[i] = val;
        if let Ok(t) = Tree::decode(&b) {
            // Whatever decodes is safe to restore.
            for e in &t.entries {
                prop_assert!(bmbackup::tree::is_safe_name(&e.name));
            }
        }
        let _ = Tree::decode(&b[..cut.index(b.len() + 1)]);
    }

    #[test]
    fn pack_reader_survives_mutations(pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut b = valid_pack();
        let i = pos.index(b.len());
        b[i] = val;
        read_pack(&b);
        read_pack(&b[..cut.index(b.len() + 1)]);
    }

    #[test]
    fn pack_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        read_pack(&bytes);
        let e = IndexEntry { kind: BlobKind::Chunk, id: Digest::of(b""), offset: 8, stored_len: bytes.len() as u32, raw_len: u32::MAX / 2 };
        prop_assert!(open_blob(&bytes, &e).is_err());
    }
}

proptest! {
    // A store per case (init fsyncs): 1,000 in the long run; fuzz_decoders.rs gives the JSON
    // decoder itself 10,000.
    #![proptest_config(ProptestConfig::with_cases(cases().min(1000)))]

    #[test]
    fn manifest_reader_survives_mutations(pos in any::<prop::sample::Index>(), val in any::<u8>()) {
        let env_dir = tempfile::tempdir().unwrap();
        let store = Store::init(
            &env_dir.path().join("s"),
            bmbackup::chunker::ChunkParams::FORMAT_1_0,
        )
        .unwrap();
        let m = Manifest {
            host: "h".into(), part: "p".into(), source: "/".into(), started_ns: 1, finished_ns: 2,
            root: Digest::of(b"r").to_hex(), files: 0, dirs: 0, bytes: 0, bytes_read: 0,
            bytes_added: 0, tool_version: "0".into(), status: SnapshotStatus::Partial,
            problems: Vec::new(), parent: None,
                root_meta: None,
                name: None,
                has_xattrs: None,
        };
        let id = store.write_manifest(&m).unwrap();
        let path = env_dir.path().join("s").join(Store::manifest_key(&id));
        let mut b = fs::read(&path).unwrap();
        let i = pos.index(b.len());
        let changed = b[i] != val;
        b[i] = val;
        fs::write(&path, &b).unwrap();
        let r = store.read_manifest(&id);
        prop_assert_eq!(r.is_err(), changed, "a changed manifest is always detected");
        let _ = serde_json::from_slice::<Manifest>(&b);
    }
}
