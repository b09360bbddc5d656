//! Tree blob format: the binary encoding of one directory (its sorted entries). Identical
//! directories encode to identical bytes, so an unchanged directory dedups to one blob.

use crate::codec::{put_bytes, put_varint, put_zigzag, DecodeError, Reader};
use crate::id::{ChunkId, Digest, TreeId};
use crate::model::{ChunkRef, Content, Entry, EntryKind, Timestamp, Tree, Xattr};

/// Tree encoding versions. Do not change what a version means: old stores must stay readable.
/// Version 1 (formats 1.0 and 1.1) has no `dev`, `blocks` or `flags`; version 2 (format 1.2)
/// appends them to each entry, after its xattrs. Writers always write the newest.
const TREE_FORMAT_V1: u8 = 1;
const TREE_FORMAT_V2: u8 = 2;

const CONTENT_NONE: u8 = 0;
const CONTENT_CHUNKS: u8 = 1;
const CONTENT_TREE: u8 = 2;

/// Deepest folder nesting a snapshot may have. No Linux path can name a deeper file (PATH_MAX
/// is 4096 bytes, and each level takes a name and a `/`), so a backup cannot make one; walks
/// that recurse stop here instead of overflowing their stack on a forged chain of trees.
pub const MAX_DEPTH: usize = 2048;

/// Smallest possible encoded entry; bounds counts read from untrusted input.
const MIN_ENTRY_BYTES: usize = 20;

impl Tree {
    /// Encodes the tree; entries must already be sorted by name (the builder guarantees it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 96);
        out.push(TREE_FORMAT_V2);
        put_varint(&mut out, self.entries.len() as u64);
        for e in &self.entries {
            encode_entry(&mut out, e);
        }
        out
    }

    pub fn id_of(encoded: &[u8]) -> TreeId {
        TreeId::of(encoded)
    }

    /// Decodes untrusted bytes. Rejects names that could escape a restore target.
    pub fn decode(data: &[u8]) -> Result<Tree, DecodeError> {
        let mut r = Reader::new(data);
        let version = r.u8("tree version")?;
        if version != TREE_FORMAT_V1 && version != TREE_FORMAT_V2 {
            return Err(DecodeError {
                what: "tree version (written by a newer bmbackup?)",
                offset: 0,
            });
        }
        let n = r.count("entry count", MIN_ENTRY_BYTES)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let at = data.len() - r.remaining();
            let e = decode_entry(&mut r, version)?;
            check_entry(&e).map_err(|what| DecodeError { what, offset: at })?;
            if let Some(prev) = entries.last() {
                let prev: &Entry = prev;
                if prev.name >= e.name {
                    return Err(DecodeError {
                        what: "entry order (names must be sorted and unique)",
                        offset: 0,
                    });
                }
            }
            entries.push(e);
        }
        if !r.is_empty() {
            return Err(DecodeError {
                what: "trailing bytes after tree",
                offset: data.len() - r.remaining(),
            });
        }
        Ok(Tree { entries })
    }
}

fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    put_bytes(out, &e.name);
    out.push(e.kind.code());
    put_varint(out, u64::from(e.mode));
    put_varint(out, u64::from(e.uid));
    put_varint(out, u64::from(e.gid));
    put_varint(out, e.size);
    put_zigzag(out, e.mtime.sec);
    put_varint(out, u64::from(e.mtime.nsec));
    put_zigzag(out, e.ctime.sec);
    put_varint(out, u64::from(e.ctime.nsec));
    put_varint(out, e.ino);
    put_varint(out, u64::from(e.nlink));
    put_varint(out, e.rdev);
    put_bytes(out, &e.target);
    put_varint(out, e.xattrs.len() as u64);
    for x in &e.xattrs {
        put_bytes(out, &x.name);
        put_bytes(out, &x.value);
    }
    put_varint(out, u64::from(e.dev));
    // 0 = not recorded, so that `Some(0)` (a file that is all holes) stays distinct.
    put_varint(out, e.blocks.map_or(0, |b| b.saturating_add(1)));
    put_varint(out, u64::from(e.flags));
    match &e.content {
        Content::None => out.push(CONTENT_NONE),
        Content::Chunks(chunks) => {
            out.push(CONTENT_CHUNKS);
            put_varint(out, chunks.len() as u64);
            for c in chunks {
                out.extend_from_slice(&c.id.0 .0);
                put_varint(out, u64::from(c.len));
            }
        }
        Content::Tree(t) => {
            out.push(CONTENT_TREE);
            out.extend_from_slice(&t.0 .0);
        }
    }
}

/// An entry's content must fit its kind, and a file's size must be what its chunks hold: every
/// reader (restore, mount, check) may then trust `size` and never meets a folder made of chunks
/// or a file made of a folder. Backups always write such entries; anything else is damage or a
/// forged store.
fn check_entry(e: &Entry) -> Result<(), &'static str> {
    match (&e.kind, &e.content) {
        (EntryKind::File, Content::Chunks(chunks)) => {
            // At most 2^30 / 33 chunks of at most 2^32 bytes: no overflow in u64.
            let total: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
            if total != e.size {
                return Err("file size (its chunks do not add up to it)");
            }
        }
        (EntryKind::File, Content::None) if e.size != 0 => {
            return Err("file size (a file without chunks is empty)");
        }
        (EntryKind::Dir, Content::Tree(_)) => {}
        (EntryKind::Dir, _) => return Err("folder content (a folder without a tree)"),
        (_, Content::Tree(_)) => return Err("entry content (a subtree under a non-folder)"),
        (EntryKind::File, Content::None) => {}
        (_, Content::Chunks(c)) if !c.is_empty() => {
            return Err("entry content (chunks under a non-file)")
        }
        _ => {}
    }
    Ok(())
}

/// A name is safe when restoring it cannot leave its directory.
pub fn is_safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

fn decode_entry(r: &mut Reader<'_>, version: u8) -> Result<Entry, DecodeError> {
    let name = r.bytes("entry name")?.to_vec();
    if !is_safe_name(&name) {
        return Err(DecodeError {
            what: "entry name (empty, '.', '..' or containing '/' or NUL)",
            offset: 0,
        });
    }
    let kind = EntryKind::from_code(r.u8("entry kind")?).ok_or(DecodeError {
        what: "entry kind",
        offset: 0,
    })?;
    let mode = r.varint_u32("mode")?;
    let uid = r.varint_u32("uid")?;
    let gid = r.varint_u32("gid")?;
    let size = r.varint("size")?;
    let mtime = Timestamp {
        sec: r.zigzag("mtime")?,
        nsec: r.varint_u32("mtime nsec")?,
    };
    let ctime = Timestamp {
        sec: r.zigzag("ctime")?,
        nsec: r.varint_u32("ctime nsec")?,
    };
    let ino = r.varint("inode")?;
    let nlink = r.varint_u32("nlink")?;
    let rdev = r.varint("rdev")?;
    let target = r.bytes("symlink target")?.to_vec();
    let nx = r.count("xattr count", 2)?;
    let mut xattrs = Vec::with_capacity(nx);
    for _ in 0..nx {
        let name = r.bytes("xattr name")?.to_vec();
        let value = r.bytes("xattr value")?.to_vec();
        xattrs.push(Xattr { name, value });
    }
    let (dev, blocks, flags) = if version >= TREE_FORMAT_V2 {
        let dev = r.varint_u32("filesystem index")?;
        let blocks = r.varint("allocated blocks")?.checked_sub(1);
        (dev, blocks, r.varint_u32("inode flags")?)
    } else {
        (0, None, 0)
    };
    let content = match r.u8("content tag")? {
        CONTENT_NONE => Content::None,
        CONTENT_CHUNKS => {
            let n = r.count("chunk count", 33)?;
            let mut chunks = Vec::with_capacity(n);
            for _ in 0..n {
                let id = ChunkId(Digest(r.array32("chunk id")?));
                let len = r.varint_u32("chunk length")?;
                chunks.push(ChunkRef { id, len });
            }
            Content::Chunks(chunks)
        }
        CONTENT_TREE => Content::Tree(TreeId(Digest(r.array32("subtree id")?))),
        _ => {
            return Err(DecodeError {
                what: "content tag",
                offset: 0,
            })
        }
    };
    Ok(Entry {
        name,
        kind,
        mode,
        uid,
        gid,
        size,
        mtime,
        ctime,
        ino,
        dev,
        nlink,
        blocks,
        flags,
        rdev,
        target,
        xattrs,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_entry(name: &[u8]) -> Entry {
        Entry {
            name: name.to_vec(),
            kind: EntryKind::File,
            mode: 0o4755,
            uid: 1000,
            gid: 1000,
            size: 5,
            mtime: Timestamp {
                sec: -5,
                nsec: 999_999_999,
            },
            ctime: Timestamp {
                sec: 1 << 40,
                nsec: 1,
            },
            ino: 42,
            dev: 3,
            nlink: 2,
            blocks: Some(8),
            flags: crate::model::inode_flags::IMMUTABLE,
            rdev: 0,
            target: vec![],
            xattrs: vec![Xattr {
                name: b"user.x".to_vec(),
                value: vec![0, 1, 2],
            }],
            content: Content::Chunks(vec![ChunkRef {
                id: ChunkId::of(b"hello"),
                len: 5,
            }]),
        }
    }

    #[test]
    fn round_trip() {
        let mut dir = sample_entry(b"d");
        dir.kind = EntryKind::Dir;
        dir.content = Content::Tree(TreeId::of(b"x"));
        let tree = Tree {
            entries: vec![sample_entry(b"a\nb\xff"), dir],
        };
        let enc = tree.encode();
        assert_eq!(Tree::decode(&enc).unwrap(), tree);
    }

    #[test]
    fn hostile_names_and_truncation_are_rejected() {
        for bad in [&b".."[..], b".", b"a/b", b""] {
            let tree = Tree {
                entries: vec![sample_entry(bad)],
            };
            assert!(Tree::decode(&tree.encode()).is_err(), "{bad:?}");
        }
        let enc = Tree {
            entries: vec![sample_entry(b"ok")],
        }
        .encode();
        for cut in 0..enc.len() {
            assert!(Tree::decode(&enc[..cut]).is_err());
        }
    }

    /// An entry as formats 1.0 and 1.1 wrote it (tree version 1), written out by hand.
    fn encode_v1(e: &Entry) -> Vec<u8> {
        let mut out = vec![TREE_FORMAT_V1, 1];
        put_bytes(&mut out, &e.name);
        out.push(e.kind.code());
        for n in [
            u64::from(e.mode),
            u64::from(e.uid),
            u64::from(e.gid),
            e.size,
        ] {
            put_varint(&mut out, n);
        }
        for t in [e.mtime, e.ctime] {
            put_zigzag(&mut out, t.sec);
            put_varint(&mut out, u64::from(t.nsec));
        }
        for n in [e.ino, u64::from(e.nlink), e.rdev] {
            put_varint(&mut out, n);
        }
        put_bytes(&mut out, &e.target);
        put_varint(&mut out, e.xattrs.len() as u64);
        for x in &e.xattrs {
            put_bytes(&mut out, &x.name);
            put_bytes(&mut out, &x.value);
        }
        out.push(CONTENT_CHUNKS);
        put_varint(&mut out, e.chunks().len() as u64);
        for c in e.chunks() {
            out.extend_from_slice(&c.id.0 .0);
            put_varint(&mut out, u64::from(c.len));
        }
        out
    }

    #[test]
    fn version_1_trees_decode_with_the_new_fields_unknown() {
        let new = sample_entry(b"f");
        let old = Tree::decode(&encode_v1(&new)).unwrap();
        let e = &old.entries[0];
        assert_eq!((e.dev, e.blocks, e.flags), (0, None, 0));
        let mut expect = new.clone();
        (expect.dev, expect.blocks, expect.flags) = (0, None, 0);
        assert_eq!(*e, expect);
    }

    #[test]
    fn device_blocks_and_flags_round_trip() {
        for (dev, blocks, flags) in [
            (0, None, 0),
            (0, Some(0), 0),
            (7, Some(u64::MAX - 1), crate::model::inode_flags::RECORDED),
        ] {
            let mut e = sample_entry(b"f");
            (e.dev, e.blocks, e.flags) = (dev, blocks, flags);
            let tree = Tree { entries: vec![e] };
            let enc = tree.encode();
            assert_eq!(enc[0], TREE_FORMAT_V2);
            assert_eq!(Tree::decode(&enc).unwrap(), tree);
        }
        // Two links to different files with one inode number stay two identities.
        let (mut a, mut b) = (sample_entry(b"a"), sample_entry(b"b"));
        (a.dev, b.dev) = (0, 1);
        assert_ne!(a.link_id(), b.link_id());
    }

    #[test]
    fn contents_must_fit_their_kind_and_size() {
        let ok = sample_entry(b"f");
        let mut lies = Vec::new();
        let mut big = ok.clone();
        big.size = 1 << 40;
        lies.push(big);
        let mut empty = ok.clone();
        empty.content = Content::None;
        lies.push(empty);
        let mut dir_of_chunks = ok.clone();
        dir_of_chunks.kind = EntryKind::Dir;
        lies.push(dir_of_chunks);
        let mut file_of_tree = ok.clone();
        file_of_tree.content = Content::Tree(TreeId::of(b"t"));
        lies.push(file_of_tree);
        let mut link_of_chunks = ok.clone();
        link_of_chunks.kind = EntryKind::Symlink;
        lies.push(link_of_chunks);
        for e in lies {
            let enc = Tree {
                entries: vec![e.clone()],
            }
            .encode();
            assert!(Tree::decode(&enc).is_err(), "{e:?}");
        }
        let mut zero = ok.clone();
        zero.name = b"e".to_vec();
        zero.size = 0;
        zero.content = Content::Chunks(Vec::new());
        let mut none = zero.clone();
        none.name = b"g".to_vec();
        none.content = Content::None;
        let mut link = ok.clone();
        link.name = b"l".to_vec();
        link.kind = EntryKind::Symlink;
        link.content = Content::None;
        let t = Tree {
            entries: vec![zero, ok, none, link],
        };
        assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
    }

    #[test]
    fn unsorted_entries_are_rejected() {
        let tree = Tree {
            entries: vec![sample_entry(b"b"), sample_entry(b"a")],
        };
        assert!(Tree::decode(&tree.encode()).is_err());
    }
}
