//! Holes of sparse files in a chunk list. A backup finds holes with `SEEK_DATA`/`SEEK_HOLE` and
//! records each as zero chunks of a few fixed power-of-two sizes, so it neither reads nor hashes
//! them (their ids are computed once per process), every reader of chunk lists works unchanged,
//! and a reader that wants the holes back (the mount's `SEEK_HOLE`, a restore) recognises them by
//! id without reading them. Part of the format: the sizes must not change, or holes recorded
//! before would no longer be recognised (they would still read back as the right zeros).

use crate::id::ChunkId;
use crate::model::ChunkRef;
use std::sync::OnceLock;

/// Largest and smallest hole piece: 8 MiB down to 4 KiB, every power of two between. A hole is
/// cut greedily (largest piece that fits first); what is left below 4 KiB (a hole ending at an
/// unaligned end of file) is a small zero chunk of its own length. 8 MiB keeps the tree of a
/// 1 TiB sparse file near 4.5 MiB, below the 16 MiB chunk cap of the pack format.
const PIECE_MAX_SHIFT: u32 = 23;
const PIECE_MIN_SHIFT: u32 = 12;

/// Zeros to store a hole piece from.
static ZEROS: [u8; 1 << PIECE_MAX_SHIFT] = [0; 1 << PIECE_MAX_SHIFT];

/// The zero chunk of each piece size, largest first.
fn pieces() -> &'static [ChunkRef] {
    static PIECES: OnceLock<Vec<ChunkRef>> = OnceLock::new();
    PIECES.get_or_init(|| {
        (PIECE_MIN_SHIFT..=PIECE_MAX_SHIFT)
            .rev()
            .map(|shift| zero_chunk(1 << shift))
            .collect()
    })
}

fn zero_chunk(len: u32) -> ChunkRef {
    ChunkRef {
        id: ChunkId::of(&ZEROS[..len as usize]),
        len,
    }
}

/// The plain bytes of a hole chunk (all zeros), to store it.
pub fn zeros(c: &ChunkRef) -> &'static [u8] {
    &ZEROS[..(c.len as usize).min(ZEROS.len())]
}

/// Calls `each` with the chunks of a hole of `len` bytes, in order.
pub fn hole_chunks<E>(
    mut len: u64,
    mut each: impl FnMut(ChunkRef) -> Result<(), E>,
) -> Result<(), E> {
    for p in pieces() {
        while len >= u64::from(p.len) {
            each(*p)?;
            len -= u64::from(p.len);
        }
    }
    if len > 0 {
        // Below the smallest piece, so it fits in u32; hashing it costs less than 4 KiB.
        each(zero_chunk(len as u32))?;
    }
    Ok(())
}

/// True when `c` is a hole piece: all zeros, known without reading it. (Zero runs of other
/// lengths are not recognised; they read back as zeros like any data.)
pub fn is_hole_chunk(c: &ChunkRef) -> bool {
    c.len.is_power_of_two()
        && (1 << PIECE_MIN_SHIFT..=1 << PIECE_MAX_SHIFT).contains(&c.len)
        && pieces()[(PIECE_MAX_SHIFT - c.len.trailing_zeros()) as usize].id == c.id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(len: u64) -> Vec<ChunkRef> {
        let mut out = Vec::new();
        hole_chunks::<()>(len, |c| {
            out.push(c);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn holes_are_cut_into_recognised_zero_pieces() {
        let len = (19 << 20) + (5 << 12) + 100;
        let chunks = cut(len);
        assert_eq!(chunks.iter().map(|c| u64::from(c.len)).sum::<u64>(), len);
        let lens: Vec<u32> = chunks.iter().map(|c| c.len).collect();
        assert_eq!(
            lens,
            [8 << 20, 8 << 20, 2 << 20, 1 << 20, 1 << 14, 1 << 12, 100]
        );
        for c in &chunks {
            assert_eq!(c.id, ChunkId::of(&vec![0u8; c.len as usize]));
            assert_eq!(zeros(c).len(), c.len as usize);
        }
        assert!(chunks[..6].iter().all(is_hole_chunk));
        assert!(!is_hole_chunk(&chunks[6]), "below 4 KiB: plain data");
        assert!(cut(0).is_empty());
        // Data of a hole piece's length is not a hole.
        let data = ChunkRef {
            id: ChunkId::of(&[1u8; 4096]),
            len: 4096,
        };
        assert!(!is_hole_chunk(&data));
    }
}
