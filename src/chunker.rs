//! Content-defined chunking (FastCDC 2020): cut points depend on content, not offsets, so an
//! insertion in a file only changes the chunks around it. Files below the minimum are one chunk.

use std::io::Read;

pub const MIN_CHUNK: usize = 256 << 10;
pub const AVG_CHUNK: usize = 1 << 20;
pub const MAX_CHUNK: usize = 4 << 20;

/// Calls `each` with every chunk of `reader`, in order. Stops at the first error.
pub fn for_each_chunk<R: Read, E>(
    reader: R,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let cdc = fastcdc::v2020::StreamCDC::new(reader, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
    for chunk in cdc {
        let chunk = chunk.map_err(|e| match e {
            fastcdc::v2020::Error::IoError(io) => io_error(io),
            other => io_error(std::io::Error::other(other.to_string())),
        })?;
        each(&chunk.data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for_each_chunk::<_, std::io::Error>(
            data,
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
