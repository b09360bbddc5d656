//! Reading file content: the byte-bounded LRU that holds decoded chunks and trees, and the
//! mapping of a read's byte range to chunks (prefix sums + `partition_point`).

use crate::model::ChunkRef;
use lru::LruCache;
use parking_lot::Mutex;
use std::hash::Hash;
use std::sync::Arc;

/// An LRU bounded by the summed weight (bytes) of its values, not their count: chunk and tree
/// sizes vary by orders of magnitude, and memory is what must stay bounded.
pub struct ByteLru<K: Hash + Eq, V> {
    inner: Mutex<Inner<K, V>>,
    /// Held while loading a missing value: readahead sends several reads of one chunk at once,
    /// and it should be fetched and decompressed once, not once per thread.
    loading: [Mutex<()>; LOAD_STRIPES],
}

const LOAD_STRIPES: usize = 32;

struct Inner<K: Hash + Eq, V> {
    lru: LruCache<K, (Arc<V>, usize)>,
    used: usize,
    cap: usize,
}

impl<K: Hash + Eq, V> ByteLru<K, V> {
    pub fn new(cap_bytes: usize) -> Self {
        ByteLru {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                used: 0,
                cap: cap_bytes,
            }),
            loading: std::array::from_fn(|_| Mutex::new(())),
        }
    }

    /// True if `k` is cached; does not count as a use.
    pub fn contains(&self, k: &K) -> bool {
        self.inner.lock().lru.contains(k)
    }

    pub fn get(&self, k: &K) -> Option<Arc<V>> {
        self.inner.lock().lru.get(k).map(|(v, _)| v.clone())
    }

    /// The cached value, or `load`'s (value, weight), cached. Loads of keys in one `stripe`
    /// (any well-mixed byte of the key) run one at a time, so concurrent misses of one key
    /// load it once.
    pub fn get_or_load<E>(
        &self,
        k: &K,
        stripe: u8,
        load: impl FnOnce() -> Result<(V, usize), E>,
    ) -> Result<Arc<V>, E>
    where
        K: Clone,
    {
        if let Some(v) = self.get(k) {
            return Ok(v);
        }
        let _loading = self.loading[usize::from(stripe) % LOAD_STRIPES].lock();
        if let Some(v) = self.get(k) {
            return Ok(v);
        }
        let (v, weight) = load()?;
        let v = Arc::new(v);
        self.insert(k.clone(), v.clone(), weight);
        Ok(v)
    }

    /// Inserts and evicts least recently used values until the budget holds. The newest value
    /// always stays, even alone over budget: a mailbox folder with a million messages decodes
    /// to a tree bigger than the tree budget, and re-decoding it for every lookup would make
    /// the folder unusable. Memory stays bounded by max(budget, largest value).
    pub fn insert(&self, k: K, v: Arc<V>, weight: usize) {
        let mut g = self.inner.lock();
        if let Some((_, old)) = g.lru.put(k, (v, weight)) {
            g.used -= old;
        }
        g.used += weight;
        while g.used > g.cap && g.lru.len() > 1 {
            match g.lru.pop_lru() {
                Some((_, (_, w))) => g.used -= w,
                None => break,
            }
        }
    }

    pub fn used_bytes(&self) -> usize {
        self.inner.lock().used
    }
}

/// Where a file's chunks end: `ends[i]` is the file offset just past chunk `i`.
pub fn chunk_ends(chunks: &[ChunkRef]) -> Vec<u64> {
    let mut total = 0u64;
    chunks
        .iter()
        .map(|c| {
            total += u64::from(c.len);
            total
        })
        .collect()
}

/// `lseek`'s `SEEK_DATA` (`hole` false) or `SEEK_HOLE` (`hole` true) from `offset` in a file of
/// these chunks: the first offset at or after it in data (resp. in a hole, the end of the file
/// counting as one). `None` means ENXIO: at or past the end, or no data after `offset`. Holes
/// are the chunks a backup recorded as holes ([`crate::holes`]).
pub fn seek_hole_or_data(
    chunks: &[ChunkRef],
    ends: &[u64],
    offset: u64,
    hole: bool,
) -> Option<u64> {
    let size = ends.last().copied().unwrap_or(0);
    if offset >= size {
        return None;
    }
    let first = ends.partition_point(|&e| e <= offset);
    for i in first..chunks.len() {
        if crate::holes::is_hole_chunk(&chunks[i]) == hole {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            return Some(start.max(offset));
        }
    }
    if hole {
        Some(size)
    } else {
        None
    }
}

/// One piece of a read: bytes `start..end` of chunk `index`.
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    pub index: usize,
    pub start: usize,
    pub end: usize,
}

/// The chunk pieces covering `offset..offset+len`, clipped to the end of the file.
pub fn pieces(ends: &[u64], offset: u64, len: u64) -> Vec<Piece> {
    let stop = offset
        .saturating_add(len)
        .min(ends.last().copied().unwrap_or(0));
    let mut out = Vec::new();
    let mut pos = offset;
    // The first chunk whose end lies past `offset`.
    let mut i = ends.partition_point(|&e| e <= offset);
    while pos < stop && i < ends.len() {
        let chunk_start = if i == 0 { 0 } else { ends[i - 1] };
        let end = ends[i].min(stop);
        out.push(Piece {
            index: i,
            start: (pos - chunk_start) as usize,
            end: (end - chunk_start) as usize,
        });
        pos = end;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_finds_recorded_holes() {
        let mut hole = Vec::new();
        crate::holes::hole_chunks::<()>(2 << 20, |c| {
            hole.push(c);
            Ok(())
        })
        .unwrap();
        let data = |n: u8| ChunkRef {
            id: crate::id::ChunkId::of(&[n; 10]),
            len: 10,
        };
        // data 0..10, hole 10..2MiB+10, data ..+10
        let chunks = [vec![data(1)], hole, vec![data(2)]].concat();
        let ends = chunk_ends(&chunks);
        let h = 10 + (2u64 << 20);
        assert_eq!(seek_hole_or_data(&chunks, &ends, 0, false), Some(0));
        assert_eq!(seek_hole_or_data(&chunks, &ends, 3, true), Some(10));
        assert_eq!(seek_hole_or_data(&chunks, &ends, 10, false), Some(h));
        assert_eq!(seek_hole_or_data(&chunks, &ends, 5000, true), Some(5000));
        assert_eq!(seek_hole_or_data(&chunks, &ends, h + 1, true), Some(h + 10));
        assert_eq!(seek_hole_or_data(&chunks, &ends, h + 10, false), None);
        // A file that ends in a hole has no data after it.
        let n = chunks.len() - 1;
        assert_eq!(seek_hole_or_data(&chunks[..n], &ends[..n], 11, false), None);
        // Dense files: all data, one hole at the end.
        let dense = [data(1), data(2)];
        assert_eq!(
            seek_hole_or_data(&dense, &chunk_ends(&dense), 4, true),
            Some(20)
        );
    }
    use crate::id::{ChunkId, Digest};

    fn refs(lens: &[u32]) -> Vec<ChunkRef> {
        lens.iter()
            .map(|&len| ChunkRef {
                id: ChunkId(Digest([0; 32])),
                len,
            })
            .collect()
    }

    #[test]
    fn pieces_cover_exactly_the_range() {
        let ends = chunk_ends(&refs(&[10, 5, 20]));
        assert_eq!(ends, [10, 15, 35]);
        assert_eq!(
            pieces(&ends, 0, 10),
            [Piece {
                index: 0,
                start: 0,
                end: 10
            }]
        );
        assert_eq!(
            pieces(&ends, 8, 10),
            [
                Piece {
                    index: 0,
                    start: 8,
                    end: 10
                },
                Piece {
                    index: 1,
                    start: 0,
                    end: 5
                },
                Piece {
                    index: 2,
                    start: 0,
                    end: 3
                }
            ]
        );
        assert_eq!(
            pieces(&ends, 15, 100),
            [Piece {
                index: 2,
                start: 0,
                end: 20
            }]
        );
        assert_eq!(pieces(&ends, 35, 10), []);
        assert_eq!(pieces(&ends, 1000, 10), []);
        assert_eq!(pieces(&[], 0, 10), []);
        assert_eq!(pieces(&ends, u64::MAX, u64::MAX), []);
        // Every byte once, in order, for every offset and length.
        for off in 0..36 {
            for len in 0..40 {
                let got: usize = pieces(&ends, off, len)
                    .iter()
                    .map(|p| p.end - p.start)
                    .sum();
                assert_eq!(got as u64, (off + len).min(35).saturating_sub(off));
            }
        }
    }

    #[test]
    fn lru_is_bounded_by_bytes() {
        let c: ByteLru<u32, Vec<u8>> = ByteLru::new(100);
        c.insert(1, Arc::new(vec![0; 60]), 60);
        c.insert(2, Arc::new(vec![0; 30]), 30);
        assert!(c.get(&1).is_some()); // 1 is now most recent
        c.insert(3, Arc::new(vec![0; 30]), 30); // evicts 2
        assert!(c.get(&2).is_none());
        assert!(c.get(&1).is_some() && c.get(&3).is_some());
        assert_eq!(c.used_bytes(), 90);
        c.insert(3, Arc::new(vec![0; 10]), 10); // replace updates the weight
        assert_eq!(c.used_bytes(), 70);
        // Over budget alone: kept, everything else goes.
        c.insert(4, Arc::new(vec![0; 500]), 500);
        assert!(c.get(&4).is_some() && c.get(&1).is_none() && c.get(&3).is_none());
        assert_eq!(c.used_bytes(), 500);
        c.insert(5, Arc::new(vec![0; 20]), 20);
        assert!(c.get(&4).is_none() && c.get(&5).is_some());
        assert_eq!(c.used_bytes(), 20);
    }

    #[test]
    fn concurrent_misses_load_once() {
        let c: Arc<ByteLru<u32, u32>> = Arc::new(ByteLru::new(100));
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, loads) = (c.clone(), loads.clone());
                std::thread::spawn(move || {
                    c.get_or_load(&7, 7, || {
                        loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        Ok::<_, ()>((42, 4))
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(*t.join().unwrap(), 42);
        }
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            c.get_or_load(&8, 8, || Err::<(u32, usize), _>("boom")),
            Err("boom")
        );
    }
}
