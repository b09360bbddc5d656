//! Cyrus' key-value database files, read-only: the `twoskip` format (`mailboxes.db` since Cyrus
//! 2.5) and the `flat` text format. The input comes out of a backup and is treated as hostile:
//! every offset and length is bounds-checked, every record's header CRC is verified, the walk is
//! bounded by the file size, and a damaged file is an error naming the offset, never a panic or
//! a wrong answer.
//!
//! A twoskip file is a 64-byte header followed by records; the live records form a skiplist
//! whose level-0 chain (two alternating pointers, the higher one below the committed size being
//! the valid one) visits every key in order. Records appended by an uncommitted transaction lie
//! beyond the header's `current_size` and are ignored, as Cyrus' own recovery does.

/// The first 20 bytes of a twoskip file. Format constant: do not change.
pub const TWOSKIP_MAGIC: &[u8; 20] = b"\xa1\x02\x8b\x0dtwoskip file\0\0\0\0";
/// The first 20 bytes of the older skiplist format (Cyrus 2.x), which only `cyr_dbtool` reads.
pub const SKIPLIST_MAGIC: &[u8; 20] = b"\xa1\x02\x8b\x0dskiplist file\0\0\0";
const HEADER_SIZE: usize = 64;
const MAX_LEVEL: u8 = 31;
const DUMMY: u8 = b'=';
const RECORD: u8 = b'+';
const DELETE: u8 = b'-';

/// A database's live records, in the file's key order.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Which format a database file is in, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbFormat {
    Twoskip,
    Skiplist,
    Flat,
}

impl DbFormat {
    pub fn detect(data: &[u8]) -> DbFormat {
        if data.starts_with(TWOSKIP_MAGIC) {
            DbFormat::Twoskip
        } else if data.starts_with(SKIPLIST_MAGIC) {
            DbFormat::Skiplist
        } else {
            DbFormat::Flat
        }
    }

    /// The name `cyr_dbtool` knows the format by.
    pub fn name(self) -> &'static str {
        match self {
            DbFormat::Twoskip => "twoskip",
            DbFormat::Skiplist => "skiplist",
            DbFormat::Flat => "flat",
        }
    }
}

/// Reads every live record of a twoskip or flat database.
pub fn read_db(data: &[u8]) -> Result<Records, String> {
    match DbFormat::detect(data) {
        DbFormat::Twoskip => read_twoskip(data),
        DbFormat::Skiplist => Err("skiplist format (Cyrus 2.x): only cyr_dbtool reads it".into()),
        DbFormat::Flat => read_flat(data),
    }
}

/// The `flat` format: one `key TAB value` per line.
pub fn read_flat(data: &[u8]) -> Result<Records, String> {
    let mut out = Vec::new();
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let tab = line
            .iter()
            .position(|&b| b == b'\t')
            .ok_or_else(|| format!("line {}: no tab between key and value", n + 1))?;
        out.push((line[..tab].to_vec(), line[tab + 1..].to_vec()));
    }
    Ok(out)
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}
fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}
fn be64(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(d.get(at..at + 8)?.try_into().ok()?))
}

struct Rec {
    kind: u8,
    next: Vec<u64>,
    key: std::ops::Range<usize>,
    val: std::ops::Range<usize>,
    tail: std::ops::Range<usize>,
    crc_tail: u32,
}

fn read_record(d: &[u8], off: usize) -> Result<Rec, String> {
    let bad = |what: &str| format!("record at offset {off}: {what}");
    let kind = *d.get(off).ok_or_else(|| bad("past the end of the file"))?;
    let level = *d.get(off + 1).ok_or_else(|| bad("truncated"))?;
    if level > MAX_LEVEL {
        return Err(bad(&format!("level {level} above {MAX_LEVEL}")));
    }
    let mut keylen = u64::from(be16(d, off + 2).ok_or_else(|| bad("truncated"))?);
    let mut vallen = u64::from(be32(d, off + 4).ok_or_else(|| bad("truncated"))?);
    let mut p = off + 8;
    if keylen == u64::from(u16::MAX) {
        keylen = be64(d, p).ok_or_else(|| bad("truncated"))?;
        p += 8;
    }
    if vallen == u64::from(u32::MAX) {
        vallen = be64(d, p).ok_or_else(|| bad("truncated"))?;
        p += 8;
    }
    let mut next = Vec::with_capacity(usize::from(level) + 1);
    for _ in 0..=level {
        next.push(be64(d, p).ok_or_else(|| bad("truncated pointers"))?);
        p += 8;
    }
    let crc_head = be32(d, p).ok_or_else(|| bad("truncated"))?;
    let crc_tail = be32(d, p + 4).ok_or_else(|| bad("truncated"))?;
    if crc32(&d[off..p]) != crc_head {
        return Err(bad("header checksum mismatch"));
    }
    let keyoff = p + 8;
    let kv = keylen
        .checked_add(vallen)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= d.len())
        .ok_or_else(|| bad("key and value longer than the file"))?;
    let padded = kv.div_ceil(8) * 8;
    let end = keyoff
        .checked_add(padded)
        .filter(|&e| e <= d.len())
        .ok_or_else(|| bad("key and value run past the end of the file"))?;
    let keylen = usize::try_from(keylen).map_err(|_| bad("key too long"))?;
    Ok(Rec {
        kind,
        next,
        key: keyoff..keyoff + keylen,
        val: keyoff + keylen..keyoff + kv,
        tail: keyoff..end,
        crc_tail,
    })
}

/// The level-0 successor: of the two alternating pointers, the higher one that lies within the
/// committed part of the file (Cyrus' `_getloc` in recovery mode).
fn next0(rec: &Rec, end: u64) -> u64 {
    let a = rec.next.first().copied().unwrap_or(0);
    let b = rec.next.get(1).copied().unwrap_or(0);
    match (a < end, b < end) {
        (true, true) => a.max(b),
        (true, false) => a,
        (false, true) => b,
        (false, false) => 0,
    }
}

/// Reads every live record of a twoskip file, in key order.
pub fn read_twoskip(d: &[u8]) -> Result<Records, String> {
    if d.len() < HEADER_SIZE || !d.starts_with(TWOSKIP_MAGIC) {
        return Err("not a twoskip file (bad magic or shorter than its header)".into());
    }
    let version = be32(d, 20).unwrap_or(0);
    if version != 1 {
        return Err(format!(
            "twoskip version {version}, only version 1 is known"
        ));
    }
    let crc = be32(d, 60).unwrap_or(0);
    if crc32(&d[..60]) != crc {
        return Err("twoskip header checksum mismatch".into());
    }
    let current = be64(d, 48).unwrap_or(0);
    if current > d.len() as u64 || current < HEADER_SIZE as u64 {
        return Err(format!(
            "header says {current} bytes are committed but the file has {}: truncated copy",
            d.len()
        ));
    }
    let dummy = read_record(d, HEADER_SIZE)?;
    if dummy.kind != DUMMY {
        return Err("first record is not the list head".into());
    }
    let mut out = Vec::new();
    let mut off = next0(&dummy, current);
    // Every record is at least 24 bytes: a longer walk is a loop in a damaged file.
    let mut budget = d.len() / 24 + 1;
    while off != 0 {
        budget = budget
            .checked_sub(1)
            .ok_or("the record chain loops (damaged file)")?;
        let at = usize::try_from(off).map_err(|_| format!("offset {off} out of range"))?;
        let rec = read_record(d, at)?;
        match rec.kind {
            RECORD => {
                if crc32(&d[rec.tail.clone()]) != rec.crc_tail {
                    return Err(format!(
                        "record at offset {off}: key/value checksum mismatch"
                    ));
                }
                out.push((d[rec.key.clone()].to_vec(), d[rec.val.clone()].to_vec()));
                off = next0(&rec, current);
            }
            // A deleted key: its ghost points straight at the next record.
            DELETE => {
                off = rec
                    .next
                    .first()
                    .copied()
                    .filter(|&n| n < current)
                    .unwrap_or(0)
            }
            other => {
                return Err(format!(
                    "record at offset {off}: unexpected type {:?} in the key chain",
                    char::from(other)
                ))
            }
        }
    }
    Ok(out)
}

/// CRC-32 (IEEE 802.3, as zlib computes it), which twoskip uses for its checksums.
pub fn crc32(data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    }
    const TABLE: [u32; 256] = table();
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Writes a twoskip file holding `records` (sorted by key), all at level 0 except the head: the
/// smallest valid file Cyrus would read. For tests of the reader.
#[cfg(test)]
pub fn write_twoskip(records: &[(&[u8], &[u8])]) -> Vec<u8> {
    fn rec(kind: u8, level: u8, key: &[u8], val: &[u8], next: &[u64]) -> Vec<u8> {
        let mut r = vec![kind, level];
        r.extend((key.len() as u16).to_be_bytes());
        r.extend((val.len() as u32).to_be_bytes());
        for n in next {
            r.extend(n.to_be_bytes());
        }
        let mut tail = [key, val].concat();
        tail.resize(tail.len().div_ceil(8) * 8, 0);
        let head = crc32(&r);
        r.extend(head.to_be_bytes());
        r.extend(crc32(&tail).to_be_bytes());
        r.extend(tail);
        r
    }
    let dummy_len = 8 + 8 * (usize::from(MAX_LEVEL) + 1) + 8;
    let mut offsets = Vec::new();
    let mut at = (HEADER_SIZE + dummy_len) as u64;
    for (k, v) in records {
        offsets.push(at);
        at += (8 + 16 + 8 + (k.len() + v.len()).div_ceil(8) * 8) as u64;
    }
    let mut body = Vec::new();
    let mut head_next = vec![0u64; usize::from(MAX_LEVEL) + 1];
    head_next[0] = offsets.first().copied().unwrap_or(0);
    body.extend(rec(DUMMY, MAX_LEVEL, b"", b"", &head_next));
    for (i, (k, v)) in records.iter().enumerate() {
        let next = offsets.get(i + 1).copied().unwrap_or(0);
        body.extend(rec(RECORD, 1, k, v, &[next, 0]));
    }
    let mut h = TWOSKIP_MAGIC.to_vec();
    h.extend(1u32.to_be_bytes());
    h.extend(1u64.to_be_bytes());
    h.extend((records.len() as u64).to_be_bytes());
    h.extend(0u64.to_be_bytes());
    h.extend(((HEADER_SIZE + body.len()) as u64).to_be_bytes());
    h.extend(0u32.to_be_bytes());
    let c = crc32(&h);
    h.extend(c.to_be_bytes());
    h.extend(body);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A file whose records have valid checksums but arbitrary pointers, types and levels: what
    /// a hostile or badly damaged file looks like to the walk once checksums pass.
    fn hostile_file(recs: &[(u8, u8, Vec<u8>, Vec<u64>)], current: u64) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, level, kv, next) in recs {
            let mut r = vec![*kind, *level];
            r.extend((kv.len() as u16).to_be_bytes());
            r.extend(0u32.to_be_bytes());
            for i in 0..=usize::from(*level) {
                r.extend(next.get(i).copied().unwrap_or(0).to_be_bytes());
            }
            let mut tail = kv.clone();
            tail.resize(tail.len().div_ceil(8) * 8, 0);
            let head = crc32(&r);
            r.extend(head.to_be_bytes());
            r.extend(crc32(&tail).to_be_bytes());
            r.extend(tail);
            body.extend(r);
        }
        let mut h = TWOSKIP_MAGIC.to_vec();
        h.extend(1u32.to_be_bytes());
        h.extend([0u8; 24]);
        h.extend(current.to_be_bytes());
        h.extend(0u32.to_be_bytes());
        let c = crc32(&h);
        h.extend(c.to_be_bytes());
        h.extend(body);
        h
    }

    proptest! {
        #[test]
        fn hostile_files_end_in_an_answer_or_an_error(
            recs in proptest::collection::vec(
                (
                    prop_oneof![Just(DUMMY), Just(RECORD), Just(DELETE), any::<u8>()],
                    0u8..40,
                    proptest::collection::vec(any::<u8>(), 0..24),
                    proptest::collection::vec(0u64..2048, 0..4),
                ),
                1..12,
            ),
            current in 0u64..4096,
        ) {
            let f = hostile_file(&recs, current);
            if let Ok(out) = read_twoskip(&f) {
                prop_assert!(out.len() <= f.len() / 24 + 1);
            }
        }

        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut f = TWOSKIP_MAGIC.to_vec();
            f.extend(&body);
            let _ = read_db(&f);
            let _ = read_db(&body);
            let _ = super::super::dlist::Dlist::parse(&body);
            let _ = super::super::header::Header::parse(&body);
        }
    }

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn reads_what_it_wrote_and_rejects_damage() {
        let recs: Vec<(&[u8], &[u8])> = vec![(b"Na", b"%(I x)"), (b"Nb", b"v2"), (b"Nc", b"")];
        let f = write_twoskip(&recs);
        let got = read_db(&f).unwrap();
        let want: Records = recs.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(got, want);
        // Every single-byte change is either detected or leaves the same answer (padding).
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x41;
            if let Ok(r) = read_twoskip(&g) {
                assert_eq!(r, want, "byte {i} changed the answer undetected");
            }
        }
        // Every truncation is an error, never a panic.
        for n in 0..f.len() {
            assert!(read_twoskip(&f[..n]).is_err(), "truncated at {n}");
        }
    }

    #[test]
    fn uncommitted_records_are_ignored() {
        let f = write_twoskip(&[(b"Na", b"1"), (b"Nb", b"2")]);
        // Claim only the head and the first record are committed.
        let mut g = f.clone();
        let first_end = 64 + 8 + 8 * 32 + 8 + 8 + 16 + 8 + 8;
        g[48..56].copy_from_slice(&(first_end as u64).to_be_bytes());
        let c = crc32(&g[..60]);
        g[60..64].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            read_twoskip(&g).unwrap(),
            vec![(b"Na".to_vec(), b"1".to_vec())]
        );
    }

    #[test]
    fn flat_and_format_detection() {
        assert_eq!(
            read_db(b"user.a\t0 default a lrs\n\nuser.b\t0 p x\n").unwrap(),
            vec![
                (b"user.a".to_vec(), b"0 default a lrs".to_vec()),
                (b"user.b".to_vec(), b"0 p x".to_vec())
            ]
        );
        assert!(read_db(b"no tab here\n").is_err());
        let mut s = SKIPLIST_MAGIC.to_vec();
        s.extend([0; 60]);
        assert_eq!(DbFormat::detect(&s), DbFormat::Skiplist);
        assert!(read_db(&s).is_err());
    }
}
