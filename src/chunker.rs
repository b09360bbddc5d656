//! Content-defined chunking (FastCDC 2020): cut points depend on content, not offsets, so an
//! insertion in a file only changes the chunks around it. Files below the minimum are one chunk.
//! The caller lends the read buffer, so tens of thousands of small files cost no allocation each.
//! Chunk sizes are a property of the store (its format file), so every writer of a store cuts
//! the same content the same way.

use serde::{Deserialize, Serialize};
use std::io::Read;

/// Minimum, average and maximum chunk sizes in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl ChunkParams {
    /// What format 1.0 stores (which do not record their chunking) were written with.
    pub const FORMAT_1_0: ChunkParams = ChunkParams {
        min: 256 << 10,
        avg: 1 << 20,
        max: 4 << 20,
    };

    /// What `init` uses unless told otherwise: 32 KiB on average (format 1.1).
    pub const DEFAULT: ChunkParams = ChunkParams {
        min: 8 << 10,
        avg: 32 << 10,
        max: 128 << 10,
    };

    /// min = avg/4 and max = avg*4, for a power-of-two average between 4 KiB and 4 MiB.
    pub fn from_avg(avg: u32) -> Result<ChunkParams, String> {
        if !avg.is_power_of_two() || !(4 << 10..=4 << 20).contains(&avg) {
            return Err(format!(
                "chunk average {avg} must be a power of two between 4 KiB and 4 MiB"
            ));
        }
        Ok(ChunkParams {
            min: avg / 4,
            avg,
            max: avg * 4,
        })
    }

    /// Parameters read from an untrusted format file are checked before use.
    pub fn is_valid(&self) -> bool {
        self.min >= 1024 && self.min <= self.avg && self.avg <= self.max && self.max <= 16 << 20
    }

    fn buffer_len(&self) -> usize {
        2 * self.max as usize
    }
}

/// Calls `each` with every chunk of `reader`, in order, using `buf` as the read buffer.
/// Stops at the first error.
pub fn for_each_chunk<R: Read, E>(
    mut reader: R,
    params: ChunkParams,
    buf: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let (min, avg, max) = (
        params.min as usize,
        params.avg as usize,
        params.max as usize,
    );
    if buf.len() < params.buffer_len() {
        buf.resize(params.buffer_len(), 0);
    }
    let (mut start, mut end, mut eof) = (0usize, 0usize, false);
    loop {
        // Keep at least one maximum chunk ahead so every cut before EOF is a natural one.
        if !eof && end - start < max {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
            while end < buf.len() && !eof {
                match reader.read(&mut buf[end..]) {
                    Ok(0) => eof = true,
                    Ok(n) => end += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_error(e)),
                }
            }
        }
        if start == end {
            return Ok(());
        }
        let avail = &buf[start..end];
        let (_, count) = fastcdc::v2020::FastCDC::new(avail, min, avg, max).cut(0, avail.len());
        let count = count.clamp(1, avail.len());
        each(&avail[..count])?;
        start += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(data: &[u8]) -> Vec<Vec<u8>> {
        chunks_with(data, ChunkParams::FORMAT_1_0)
    }

    fn chunks_with(data: &[u8], params: ChunkParams) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for_each_chunk::<_, std::io::Error>(
            data,
            params,
            &mut buf,
            |c| {
                out.push(c.to_vec());
                Ok(())
            },
            |e| e,
        )
        .unwrap();
        out
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn small_file_is_one_chunk_and_empty_is_none() {
        assert_eq!(chunks_of(b"hello").len(), 1);
        assert!(chunks_of(b"").is_empty());
    }

    #[test]
    fn cuts_match_whole_buffer_fastcdc() {
        let data = pseudo_random(20 << 20, 9);
        for p in [
            ChunkParams::FORMAT_1_0,
            ChunkParams::from_avg(32 << 10).unwrap(),
        ] {
            let expected: Vec<usize> =
                fastcdc::v2020::FastCDC::new(&data, p.min as usize, p.avg as usize, p.max as usize)
                    .map(|c| c.length)
                    .collect();
            let got: Vec<usize> = chunks_with(&data, p).iter().map(Vec::len).collect();
            assert_eq!(got, expected);
        }
        assert!(ChunkParams::from_avg(3000).is_err());
        assert!(ChunkParams::from_avg(8 << 20).is_err());
    }

    #[test]
    fn insertion_only_changes_nearby_chunks() {
        let data = pseudo_random(12 << 20, 1);
        let a = chunks_of(&data);
        assert!(a.len() >= 4, "{} chunks", a.len());
        assert_eq!(a.concat(), data);
        let mut edited = data.clone();
        edited.splice(100..100, b"inserted".iter().copied());
        let b = chunks_of(&edited);
        let shared = b.iter().filter(|c| a.contains(c)).count();
        assert!(shared >= a.len() - 2, "{shared} of {} shared", a.len());
    }
}
