use super::*;
use crate::model::{Content, EntryKind, Timestamp};
use std::collections::HashMap;

fn entry(name: &[u8]) -> Entry {
    Entry {
        name: name.to_vec(),
        kind: EntryKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: Timestamp { sec: 1, nsec: 0 },
        ctime: Timestamp { sec: 1, nsec: 0 },
        ino: 1,
        dev: 0,
        nlink: 1,
        blocks: Some(0),
        flags: 0,
        rdev: 0,
        target: vec![],
        xattrs: vec![],
        content: Content::None,
    }
}

fn names(n: usize) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..n).map(|i| format!("{i}.").into_bytes()).collect();
    v.sort();
    v
}

/// Builds a folder into an in-memory blob map; returns its id.
fn build(names: &[Vec<u8>], blobs: &mut HashMap<TreeId, Vec<u8>>) -> TreeId {
    let mut emit = |bytes: Vec<u8>| -> Result<TreeId, ()> {
        let id = TreeId::of(&bytes);
        blobs.insert(id, bytes);
        Ok(id)
    };
    let mut b = FolderBuilder::new();
    for n in names {
        b.push(entry(n), &mut emit).unwrap();
    }
    b.finish(&mut emit).unwrap()
}

fn index_of(id: TreeId, blobs: &HashMap<TreeId, Vec<u8>>) -> TreeIndex {
    match TreeBlob::decode(&blobs[&id]).unwrap() {
        TreeBlob::Index(ix) => ix,
        TreeBlob::Flat(_) => panic!("flat"),
    }
}

#[test]
fn small_folders_stay_one_tree_blob_identical_to_format_1_2() {
    let mut blobs = HashMap::new();
    let n = names(PAGE_MAX);
    let id = build(&n, &mut blobs);
    assert_eq!(blobs.len(), 1);
    let whole = Tree {
        entries: n.iter().map(|n| entry(n)).collect(),
    };
    assert_eq!(id, TreeId::of(&whole.encode()));
}

#[test]
fn big_folders_are_pages_whose_entries_add_up_in_order() {
    let mut blobs = HashMap::new();
    let n = names(20_000);
    let id = build(&n, &mut blobs);
    let ix = index_of(id, &blobs);
    assert_eq!(ix.len(), 20_000);
    assert!(
        ix.pages().len() >= 5 && ix.pages().len() <= 78,
        "{}",
        ix.pages().len()
    );
    let mut all = Vec::new();
    for (i, p) in ix.pages().iter().enumerate() {
        let TreeBlob::Flat(t) = TreeBlob::decode(&blobs[&p.id]).unwrap() else {
            panic!("page is an index")
        };
        ix.check_page(i, &t).unwrap();
        assert!(t.entries.len() <= PAGE_MAX);
        if i + 1 < ix.pages().len() {
            assert!(t.entries.len() >= PAGE_MIN);
        }
        assert_eq!(ix.start(i), all.len() as u64);
        all.extend(t.entries.into_iter().map(|e| e.name));
    }
    assert_eq!(all, n);
    // Positions and names find their pages.
    for pos in [0u64, 1, 4095, 4096, 12_345, 19_999] {
        let i = ix.page_at(pos).unwrap();
        assert!(ix.start(i) <= pos && pos < ix.start(i + 1));
        assert_eq!(ix.page_for(&n[pos as usize]), Some(i));
    }
    assert_eq!(ix.page_at(20_000), None);
    assert_eq!(ix.page_for(b"0"), None, "before the first name");
}

#[test]
fn one_new_name_changes_one_or_two_pages() {
    let mut a = HashMap::new();
    let n = names(50_000);
    let ia = index_of(build(&n, &mut a), &a);
    let mut m = n.clone();
    m.push(b"25000.x".to_vec());
    m.sort();
    let mut b = HashMap::new();
    let ib = index_of(build(&m, &mut b), &b);
    let old: std::collections::HashSet<_> = ia.pages().iter().map(|p| p.id).collect();
    let changed = ib.pages().iter().filter(|p| !old.contains(&p.id)).count();
    assert!((1..=2).contains(&changed), "{changed} pages changed");
}

fn page(first: &str, count: u32, seed: &[u8]) -> PageRef {
    PageRef {
        first: first.as_bytes().to_vec(),
        id: TreeId::of(seed),
        count,
    }
}

#[test]
fn hostile_indexes_are_rejected() {
    let good = TreeIndex::new(vec![page("a", 3, b"1"), page("m", 2, b"2")]).unwrap();
    let enc = good.encode();
    assert_eq!(TreeIndex::decode(&enc).unwrap(), good);
    assert_eq!(good.len(), 5);
    for cut in 0..enc.len() {
        assert!(TreeBlob::decode(&enc[..cut]).is_err(), "cut at {cut}");
    }
    let mut trailing = enc.clone();
    trailing.push(0);
    assert!(TreeIndex::decode(&trailing).is_err());
    let bad_sets = [
        vec![page("m", 3, b"1"), page("a", 2, b"2")], // unsorted
        vec![page("a", 3, b"1"), page("a", 2, b"2")], // overlapping
        vec![page("a", 3, b"1")],                     // one page
        vec![page("a", 0, b"1"), page("m", 2, b"2")], // empty page
        vec![page("a", 4097, b"1"), page("m", 2, b"2")], // oversized page
        vec![page("..", 3, b"1"), page("m", 2, b"2")], // unsafe name
    ];
    for pages in bad_sets {
        let forged = TreeIndex {
            starts: vec![],
            pages: pages.clone(),
        };
        assert!(TreeIndex::decode(&forged.encode()).is_err(), "{pages:?}");
    }
    // A page count larger than the bytes could hold allocates nothing.
    let mut huge = vec![TREE_INDEX_VERSION];
    put_varint(&mut huge, u64::MAX >> 1);
    assert!(TreeIndex::decode(&huge).is_err());
}

#[test]
fn pages_must_match_their_index() {
    let ix = TreeIndex::new(vec![page("a", 2, b"1"), page("m", 1, b"2")]).unwrap();
    let t = |ns: &[&str]| Tree {
        entries: ns.iter().map(|n| entry(n.as_bytes())).collect(),
    };
    ix.check_page(0, &t(&["a", "b"])).unwrap();
    ix.check_page(1, &t(&["m"])).unwrap();
    assert!(ix.check_page(0, &t(&["a"])).is_err(), "count");
    assert!(ix.check_page(0, &t(&["b", "c"])).is_err(), "first name");
    assert!(ix.check_page(0, &t(&["a", "n"])).is_err(), "overlap");
    assert!(ix.check_page(2, &t(&["z"])).is_err(), "no such page");
}
