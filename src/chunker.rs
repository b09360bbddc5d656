//! Content-defined chunking (FastCDC 2020): cut points depend on content, not offsets, so an
//! insertion in a file only changes the chunks around it. Files below the minimum are one chunk.
//! The caller lends the read buffer, so tens of thousands of small files cost no allocation each.

use std::io::Read;

pub const MIN_CHUNK: usize = 256 << 10;
pub const AVG_CHUNK: usize = 1 << 20;
pub const MAX_CHUNK: usize = 4 << 20;
/// Size of the buffer lent to [`for_each_chunk`]: room for a full chunk plus read-ahead.
pub const BUFFER_LEN: usize = 2 * MAX_CHUNK;

/// Calls `each` with every chunk of `reader`, in order, using `buf` as the read buffer.
/// Stops at the first error.
pub fn for_each_chunk<R: Read, E>(
    mut reader: R,
    buf: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    if buf.len() < BUFFER_LEN {
        buf.resize(BUFFER_LEN, 0);
    }
    let (mut start, mut end, mut eof) = (0usize, 0usize, false);
    loop {
        // Keep at least one maximum chunk ahead so every cut before EOF is a natural one.
        if !eof && end - start < MAX_CHUNK {
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
        let (_, count) = fastcdc::v2020::FastCDC::new(avail, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
            .cut(0, avail.len());
        let count = count.clamp(1, avail.len());
        each(&avail[..count])?;
        start += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for_each_chunk::<_, std::io::Error>(
            data,
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
        let expected: Vec<usize> =
            fastcdc::v2020::FastCDC::new(&data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
                .map(|c| c.length)
                .collect();
        let got: Vec<usize> = chunks_of(&data).iter().map(Vec::len).collect();
        assert_eq!(got, expected);
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
