//! The per-folder files Cyrus keeps next to the messages: `cyrus.header` (rarely changes),
//! `cyrus.index` (rewritten on every change) and `cyrus.cache` (append-only). They reproduce the
//! roles, sizes and update patterns of the real files, which is what a backup sees, not Cyrus'
//! exact binary format. All integers are big-endian, as in Cyrus.

use super::{GenError, IoContext};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub(crate) const HEADER_FILE: &str = "cyrus.header";
pub(crate) const INDEX_FILE: &str = "cyrus.index";
pub(crate) const CACHE_FILE: &str = "cyrus.cache";

/// Index format constants. Do not change: generated spools and their tests depend on them.
const INDEX_MAGIC: &[u8; 8] = b"BMGENIDX";
const INDEX_VERSION: u32 = 1;
const INDEX_HEADER_SIZE: usize = 64;
const RECORD_SIZE: usize = 64;

pub(crate) const FLAG_ANSWERED: u32 = 1 << 0;
pub(crate) const FLAG_FLAGGED: u32 = 1 << 1;
pub(crate) const FLAG_SEEN: u32 = 1 << 4;

/// The bytes Cyrus starts every `cyrus.header` with (octal 241 002 213 015, then the motto).
const HEADER_MAGIC: &[u8] = b"\xa1\x02\x8b\x0d Cyrus mailbox header\n\"The best thing about this system was that it had lots of goals.\"\n\t--Jim Morris on Andrew\n";

/// `cyrus.header`: magic, then the mailbox name and unique id, an empty line, and the ACL.
pub(crate) fn header_bytes(mailbox: &str, owner: &str, unique_id: u64) -> Vec<u8> {
    let mut out = HEADER_MAGIC.to_vec();
    out.extend_from_slice(
        format!(
            "{mailbox}\t{unique_id:016x}\n\n{owner}\tlrswipkxtecdan\tadmin0\tlrswipkxtecdan\t\n"
        )
        .as_bytes(),
    );
    out
}

/// One message as `cyrus.index` records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexRecord {
    pub uid: u32,
    pub internal_date: i64,
    pub size: u32,
    pub header_size: u32,
    pub cache_offset: u32,
    pub flags: u32,
    pub last_updated: i64,
    /// Content hash of the message (Cyrus uses SHA-1; any 20 bytes serve here).
    pub guid: [u8; 20],
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FolderIndex {
    pub generation: u32,
    pub last_uid: u32,
    pub last_updated: i64,
    pub records: Vec<IndexRecord>,
}

impl FolderIndex {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_HEADER_SIZE + RECORD_SIZE * self.records.len());
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&INDEX_VERSION.to_be_bytes());
        out.extend_from_slice(&(RECORD_SIZE as u32).to_be_bytes());
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&(self.records.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.last_uid.to_be_bytes());
        out.extend_from_slice(&self.last_updated.to_be_bytes());
        let total: u64 = self.records.iter().map(|r| u64::from(r.size)).sum();
        out.extend_from_slice(&total.to_be_bytes());
        out.resize(INDEX_HEADER_SIZE, 0);
        for r in &self.records {
            out.extend_from_slice(&r.uid.to_be_bytes());
            out.extend_from_slice(&r.size.to_be_bytes());
            out.extend_from_slice(&r.internal_date.to_be_bytes());
            out.extend_from_slice(&r.last_updated.to_be_bytes());
            out.extend_from_slice(&r.flags.to_be_bytes());
            out.extend_from_slice(&r.cache_offset.to_be_bytes());
            out.extend_from_slice(&r.header_size.to_be_bytes());
            out.extend_from_slice(&r.guid);
            out.resize(out.len() + 8, 0);
        }
        out
    }

    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Self, GenError> {
        let bad = |reason: &str| GenError::Format {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if bytes.len() < INDEX_HEADER_SIZE || &bytes[..8] != INDEX_MAGIC {
            return Err(bad("bad magic"));
        }
        let u32_at =
            |o: usize| u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let i64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[o..o + 8]);
            i64::from_be_bytes(b)
        };
        if u32_at(8) != INDEX_VERSION || u32_at(12) as usize != RECORD_SIZE {
            return Err(bad("unsupported version"));
        }
        let count = u32_at(20) as usize;
        if bytes.len() != INDEX_HEADER_SIZE + count * RECORD_SIZE {
            return Err(bad("length does not match the record count"));
        }
        let mut records = Vec::with_capacity(count);
        for i in 0..count {
            let o = INDEX_HEADER_SIZE + i * RECORD_SIZE;
            let mut guid = [0u8; 20];
            guid.copy_from_slice(&bytes[o + 36..o + 56]);
            records.push(IndexRecord {
                uid: u32_at(o),
                size: u32_at(o + 4),
                internal_date: i64_at(o + 8),
                last_updated: i64_at(o + 16),
                flags: u32_at(o + 24),
                cache_offset: u32_at(o + 28),
                header_size: u32_at(o + 32),
                guid,
            });
        }
        Ok(FolderIndex {
            generation: u32_at(16),
            last_uid: u32_at(24),
            last_updated: i64_at(28),
            records,
        })
    }

    pub fn read(path: &Path) -> Result<Self, GenError> {
        let bytes = std::fs::read(path).ctx("read", path)?;
        Self::decode(path, &bytes)
    }
}

/// The first bytes of a fresh `cyrus.cache`: its generation number.
pub(crate) fn cache_file_header() -> [u8; 4] {
    1u32.to_be_bytes()
}

/// A cache record: big-endian payload length, payload, zero padding to 4 bytes.
pub(crate) fn cache_record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// Reads back the payload of the cache record at `offset` (used when a message moves folders).
pub(crate) fn read_cache_record(path: &Path, offset: u32) -> Result<Vec<u8>, GenError> {
    let mut f = std::fs::File::open(path).ctx("open", path)?;
    f.seek(SeekFrom::Start(u64::from(offset)))
        .ctx("seek", path)?;
    let mut len = [0u8; 4];
    f.read_exact(&mut len).ctx("read", path)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 1 << 20 {
        return Err(GenError::Format {
            path: path.to_path_buf(),
            reason: format!("cache record at {offset} claims {len} bytes"),
        });
    }
    let mut payload = vec![0u8; len];
    f.read_exact(&mut payload).ctx("read", path)?;
    Ok(payload)
}

pub(crate) fn guid_of(message: &[u8]) -> [u8; 20] {
    let mut guid = [0u8; 20];
    guid.copy_from_slice(&blake3::hash(message).as_bytes()[..20]);
    guid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips() {
        let idx = FolderIndex {
            generation: 3,
            last_uid: 9,
            last_updated: -5,
            records: vec![IndexRecord {
                uid: 9,
                internal_date: 1_767_225_600,
                size: 1234,
                header_size: 300,
                cache_offset: 4,
                flags: FLAG_SEEN,
                last_updated: 1_767_225_601,
                guid: guid_of(b"x"),
            }],
        };
        let bytes = idx.encode();
        assert_eq!(bytes.len(), 128);
        assert_eq!(FolderIndex::decode(Path::new("i"), &bytes).ok(), Some(idx));
        assert!(FolderIndex::decode(Path::new("i"), &bytes[..100]).is_err());
        assert_eq!(cache_record(b"abcde").len(), 12);
    }
}
