//! Tree blob format: the binary encoding of one directory (its sorted entries). Identical
//! directories encode to identical bytes, so an unchanged directory dedups to one blob.

use crate::codec::{put_bytes, put_varint, put_zigzag, DecodeError, Reader};
use crate::id::{ChunkId, Digest, TreeId};
use crate::model::{ChunkRef, Content, Entry, EntryKind, Timestamp, Tree, Xattr};

/// Tree encoding version. Do not change what version 1 means: old stores must stay readable.
const TREE_FORMAT_V1: u8 = 1;

const CONTENT_NONE: u8 = 0;
const CONTENT_CHUNKS: u8 = 1;
const CONTENT_TREE: u8 = 2;

/// Smallest possible encoded entry; bounds counts read from untrusted input.
const MIN_ENTRY_BYTES: usize = 20;

impl Tree {
    /// Encodes the tree; entries must already be sorted by name (the builder guarantees it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 96);
        out.push(TREE_FORMAT_V1);
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
        if version != TREE_FORMAT_V1 {
            return Err(DecodeError {
                what: "tree version (written by a newer bmbackup?)",
                offset: 0,
            });
        }
        let n = r.count("entry count", MIN_ENTRY_BYTES)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let e = decode_entry(&mut r)?;
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

/// A name is safe when restoring it cannot leave its directory.
pub fn is_safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

fn decode_entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
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
        nlink,
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
            ctime: Timestamp { sec: 1 << 40, nsec: 1 },
            ino: 42,
            nlink: 2,
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

    #[test]
    fn unsorted_entries_are_rejected() {
        let tree = Tree {
            entries: vec![sample_entry(b"b"), sample_entry(b"a")],
        };
        assert!(Tree::decode(&tree.encode()).is_err());
    }
}
