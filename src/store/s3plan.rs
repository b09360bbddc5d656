//! A read plan for a store on S3: the byte ranges a restore will read, in its order, turned
//! into few requests. Reads of one pack closer than [`GAP`] are merged into one range of at most
//! [`MAX_RANGE`]; ranges are fetched in the order of their first use, up to [`IN_FLIGHT`] at
//! once, and each is kept until every read planned in it has been served, so each needed byte
//! is downloaded once (blobs are not read in pack order: the same window used to be fetched
//! again and again). At most [`HELD_MAX`] bytes are held; beyond that the oldest ranges are
//! dropped (and fetched again if still needed).

use std::collections::HashMap;
use std::sync::Arc;

/// Reads this close in a pack are fetched by one request: the gap costs less than a round trip.
pub const GAP: u64 = 256 << 10;
/// The largest range one request fetches.
pub const MAX_RANGE: u64 = 8 << 20;
/// Requests in flight at once.
pub const IN_FLIGHT: usize = 8;
/// Bytes of fetched ranges kept for reads still to come.
pub const HELD_MAX: u64 = 256 << 20;

struct Range {
    key: String,
    start: u64,
    end: u64,
    /// Bytes of planned reads in this range not served yet.
    remaining: u64,
    data: Option<Arc<Vec<u8>>>,
    fetching: bool,
}

/// The planned ranges and what is held of them.
pub struct Plan {
    /// In the order of first use.
    ranges: Vec<Range>,
    /// Per key: `(start, end, index in ranges)`, sorted by start.
    by_key: HashMap<String, Vec<(u64, u64, usize)>>,
    held: u64,
}

/// A range to fetch: its index, key, start and end.
pub type Fetch = (usize, String, u64, u64);

impl Plan {
    /// The plan for `reads` (`(key, offset, len)` in the order they will be made).
    pub fn new(reads: &[(String, u64, usize)]) -> Plan {
        let mut per: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
        for (k, o, n) in reads {
            per.entry(k.as_str())
                .or_default()
                .push((*o, o.saturating_add(*n as u64)));
        }
        let mut by_key: HashMap<String, Vec<(u64, u64, usize)>> = HashMap::new();
        for (k, mut v) in per {
            v.sort_unstable();
            let mut merged: Vec<(u64, u64, usize)> = Vec::new();
            for (s, e) in v {
                match merged.last_mut() {
                    Some(last)
                        if s <= last.1.saturating_add(GAP)
                            && e.max(last.1) - last.0 <= MAX_RANGE =>
                    {
                        last.1 = last.1.max(e)
                    }
                    _ => merged.push((s, e, usize::MAX)),
                }
            }
            by_key.insert(k.to_string(), merged);
        }
        let mut ranges: Vec<Range> = Vec::new();
        for (k, o, n) in reads {
            let Some(list) = by_key.get_mut(k.as_str()) else {
                continue;
            };
            let Some(i) = list.partition_point(|r| r.0 <= *o).checked_sub(1) else {
                continue;
            };
            let r = &mut list[i];
            if r.2 == usize::MAX {
                r.2 = ranges.len();
                ranges.push(Range {
                    key: k.clone(),
                    start: r.0,
                    end: r.1,
                    remaining: 0,
                    data: None,
                    fetching: false,
                });
            }
            ranges[r.2].remaining += *n as u64;
        }
        Plan {
            ranges,
            by_key,
            held: 0,
        }
    }

    /// Ranges and bytes planned, for the log.
    pub fn size(&self) -> (usize, u64) {
        (
            self.ranges.len(),
            self.ranges.iter().map(|r| r.end - r.start).sum(),
        )
    }

    /// The range that holds `len` bytes at `offset` of `key`, if planned.
    pub fn find(&self, key: &str, offset: u64, len: usize) -> Option<usize> {
        let list = self.by_key.get(key)?;
        let i = list.partition_point(|r| r.0 <= offset).checked_sub(1)?;
        let (s, e, idx) = list[i];
        (offset >= s && offset.saturating_add(len as u64) <= e && idx < self.ranges.len())
            .then_some(idx)
    }

    /// Whether range `idx` is held.
    pub fn is_held(&self, idx: usize) -> bool {
        self.ranges[idx].data.is_some()
    }

    /// Serves a read from held range `idx`; the range is dropped once all its reads are served.
    pub fn take(&mut self, idx: usize, offset: u64, len: usize) -> Option<Vec<u8>> {
        let r = &mut self.ranges[idx];
        let data = r.data.as_ref()?;
        let from = usize::try_from(offset - r.start).ok()?;
        let bytes = data.get(from..from.checked_add(len)?)?.to_vec();
        r.remaining = r.remaining.saturating_sub(len as u64);
        if r.remaining == 0 {
            if let Some(d) = r.data.take() {
                self.held -= d.len() as u64;
            }
        }
        Some(bytes)
    }

    /// What to fetch for a read in range `idx`: it and the next ranges of the plan not held
    /// nor being fetched, up to [`IN_FLIGHT`] and [`HELD_MAX`]; marked as being fetched.
    pub fn batch(&mut self, idx: usize) -> Vec<Fetch> {
        let mut out = Vec::new();
        let mut held = self.held;
        for i in idx..self.ranges.len() {
            if out.len() == IN_FLIGHT {
                break;
            }
            let r = &mut self.ranges[i];
            if i != idx && (r.data.is_some() || r.remaining == 0 || r.fetching) {
                continue;
            }
            let size = r.end - r.start;
            if i != idx && held + size > HELD_MAX {
                break;
            }
            held += size;
            r.fetching = true;
            out.push((i, r.key.clone(), r.start, r.end));
        }
        out
    }

    /// Range `idx` arrived (or failed: `None`).
    pub fn fetched(&mut self, idx: usize, data: Option<Vec<u8>>) {
        let r = &mut self.ranges[idx];
        r.fetching = false;
        if let Some(d) = data {
            if r.data.is_none() && r.remaining > 0 {
                self.held += d.len() as u64;
                r.data = Some(Arc::new(d));
            }
        }
        // Over the budget: drop the ranges first used longest ago.
        let mut i = 0;
        while self.held > HELD_MAX && i < self.ranges.len() {
            if i != idx {
                if let Some(d) = self.ranges[i].data.take() {
                    self.held -= d.len() as u64;
                }
            }
            i += 1;
        }
    }

    /// Drops what is held of `key` (the object changed or went away).
    pub fn forget(&mut self, key: &str) {
        for r in self.ranges.iter_mut().filter(|r| r.key == key) {
            if let Some(d) = r.data.take() {
                self.held -= d.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(k: &str, o: u64, n: usize) -> (String, u64, usize) {
        (k.to_string(), o, n)
    }

    #[test]
    fn close_reads_merge_and_ranges_follow_first_use() {
        let reads = vec![
            r("b", 1000, 100),
            r("a", 0, 100),
            r("a", 200, 100),     // close to the first: same range
            r("a", 1 << 20, 100), // a MiB away: its own range
            r("b", 0, 10),        // before b's first read, still close: same range
            r("a", 250, 10),      // overlapping, again
        ];
        let p = Plan::new(&reads);
        let spans: Vec<(&str, u64, u64)> = p
            .ranges
            .iter()
            .map(|r| (r.key.as_str(), r.start, r.end))
            .collect();
        assert_eq!(
            spans,
            [
                ("b", 0, 1100),
                ("a", 0, 300),
                ("a", 1 << 20, (1 << 20) + 100)
            ]
        );
        assert_eq!(p.ranges[1].remaining, 210);
        assert_eq!(p.find("a", 200, 100), Some(1));
        assert_eq!(p.find("a", 290, 100), None, "past the range");
        assert_eq!(p.find("c", 0, 1), None);
    }

    #[test]
    fn ranges_are_capped_and_served_once() {
        let reads: Vec<_> = (0..20u64).map(|i| r("p", i << 20, 1 << 20)).collect();
        let mut p = Plan::new(&reads);
        assert!(p.ranges.iter().all(|r| r.end - r.start <= MAX_RANGE));
        assert_eq!(p.ranges.len(), 3, "20 MiB in ranges of at most 8 MiB");
        let batch = p.batch(0);
        assert_eq!(batch.len(), 3, "all ahead at once");
        for (i, _, s, e) in batch {
            p.fetched(i, Some(vec![7u8; (e - s) as usize]));
        }
        assert_eq!(
            p.batch(1).len(),
            1,
            "only the asked range: the rest is held"
        );
        p.fetched(1, None);
        for (_, o, n) in &reads {
            let idx = p.find("p", *o, *n).unwrap();
            assert_eq!(p.take(idx, *o, *n).unwrap().len(), *n);
        }
        assert_eq!(p.held, 0, "every range dropped once served");
    }
}
