//! A stand-in for BlueMind's `bm/pgsql` dump: a large text file of `COPY` rows, and its daily
//! change, ~2% rewritten in place at scattered offsets (same size, same inode), which is the
//! pattern that defeats whole-file dedup and rewards content-defined chunking.

use super::rng::Rng;
use super::words::{DOMAINS, FIRST_NAMES, LAST_NAMES, WORDS};
use super::{set_mode, set_times, GenError, IoContext, BASE_EPOCH, DAY_SECS};
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Length of each rewritten region; unaligned offsets so chunk boundaries are hit anywhere.
const REGION: u64 = 4096;

/// Appends `COPY`-style rows (a table header every 2000 rows) to `out` until it holds `len` bytes.
fn rows(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    let mut row = 0u64;
    while out.len() < len {
        if row % 2000 == 0 {
            if row > 0 {
                out.extend_from_slice(b"\\.\n\n");
            }
            out.extend_from_slice(
                b"COPY public.t_mailbox_record (item_id, owner, subject, imap_uid, body_guid, created) FROM stdin;\n",
            );
        }
        row += 1;
        let first = rng.pick(FIRST_NAMES);
        let last = rng.pick(LAST_NAMES);
        let line = format!(
            "{}\t{first}.{last}@{}\t{} {} {}\t{}\t{:016x}{:016x}\t2025-{:02}-{:02} {:02}:{:02}:{:02}+01\n",
            rng.range(1, 99_999_999),
            rng.pick(DOMAINS),
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.range(1, 200_000),
            rng.next_u64(),
            rng.next_u64(),
            rng.range(1, 12),
            rng.range(1, 28),
            rng.below(24),
            rng.below(60),
            rng.below(60),
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
}

/// Writes a dump of exactly `size` bytes at `path` (replacing it), mode 0600, mtime `BASE_EPOCH`.
pub fn generate_db_dump(path: &Path, seed: u64, size: u64) -> Result<(), GenError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .ctx("create", path)?;
    let mut w = BufWriter::new(file);
    let mut rng = Rng::derive(seed, 0xdb);
    let mut written = 0u64;
    let mut buf = Vec::with_capacity(1 << 20);
    while written < size {
        buf.clear();
        let n = (size - written).min(1 << 20) as usize;
        rows(&mut rng, &mut buf, n);
        w.write_all(&buf).ctx("write", path)?;
        written += n as u64;
    }
    w.flush().ctx("write", path)?;
    drop(w);
    set_mode(path, 0o600)?;
    set_times(path, BASE_EPOCH, 0)
}

/// Rewrites about `fraction` of the dump in place (4 KiB regions at scattered, unaligned
/// offsets) for day `day`, and stamps the mtime to that day. Returns the bytes rewritten.
pub fn mutate_db_dump(path: &Path, seed: u64, day: u32, fraction: f64) -> Result<u64, GenError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .ctx("open", path)?;
    let size = file.metadata().ctx("stat", path)?.len();
    let mut rng = Rng::derive(seed, 0xdb_0000_0000 + u64::from(day));
    let regions = ((size as f64 * fraction.clamp(0.0, 1.0)) / REGION as f64).ceil() as u64;
    let mut rewritten = 0u64;
    let mut buf = Vec::with_capacity(REGION as usize);
    for _ in 0..regions {
        let len = REGION.min(size);
        let offset = rng.below(size - len + 1);
        buf.clear();
        rows(&mut rng, &mut buf, len as usize);
        file.write_all_at(&buf, offset).ctx("rewrite", path)?;
        rewritten += len;
    }
    drop(file);
    set_times(path, BASE_EPOCH + i64::from(day) * DAY_SECS + 3 * 3600, 0)?;
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_is_deterministic_and_mutation_is_scattered() -> Result<(), GenError> {
        let dir = tempfile::tempdir().map_err(|e| GenError::InvalidSpec(e.to_string()))?;
        let a = dir.path().join("a.sql");
        let b = dir.path().join("b.sql");
        generate_db_dump(&a, 5, 1 << 20)?;
        generate_db_dump(&b, 5, 1 << 20)?;
        let before = std::fs::read(&a).ctx("read", &a)?;
        assert_eq!(before.len(), 1 << 20);
        assert_eq!(before, std::fs::read(&b).ctx("read", &b)?);
        assert!(before.starts_with(b"COPY public."));
        let n = mutate_db_dump(&a, 5, 1, 0.02)?;
        assert_eq!(n, 6 * 4096);
        let after = std::fs::read(&a).ctx("read", &a)?;
        assert_eq!(after.len(), before.len());
        let changed = before.iter().zip(&after).filter(|(x, y)| x != y).count();
        assert!(
            changed > 10_000 && changed <= 6 * 4096,
            "{changed} bytes changed"
        );
        // Changes are spread: several 64 KiB windows are touched.
        let windows = (0..16)
            .filter(|w| before[w * 65536..(w + 1) * 65536] != after[w * 65536..(w + 1) * 65536])
            .count();
        assert!(windows >= 3, "{windows} windows");
        Ok(())
    }
}
