//! Paged folders (format 1.3): a folder of more than [`PAGE_MAX`] entries is stored as a *tree
//! index* blob (tree encoding version 3) listing its pages, each an ordinary tree blob of
//! consecutive sorted entries. Page ends are content-defined on the names, so one new message
//! changes one or two pages and the others deduplicate across snapshots. This module owns the
//! index encoding, its hostile-input checks (the index itself, and each page against it), the
//! page-cutting rule ([`FolderBuilder`]) and position arithmetic; `repo::folder` reads folders
//! through it.

use crate::codec::{put_bytes, put_varint, DecodeError, Reader};
use crate::id::{Digest, TreeId};
use crate::model::{Entry, Tree};
use crate::tree::is_safe_name;

/// Tree encoding version of a tree index (versions 1 and 2 are ordinary trees, see `tree.rs`).
pub const TREE_INDEX_VERSION: u8 = 3;
/// A folder of at most this many entries stays one ordinary tree blob (byte-identical to 1.2);
/// it is also the largest page.
pub const PAGE_MAX: usize = 4096;
/// No page ends before this many entries (except a folder's last page).
pub const PAGE_MIN: usize = 256;
/// A page ends after a name whose hash has these bits zero: ~1 in 1024, so pages average
/// about PAGE_MIN + 1024 entries.
const CUT_MASK: u64 = 0x3ff;
/// Smallest encoded page reference: name length, one name byte, id, count.
const MIN_PAGE_REF_BYTES: usize = 1 + 1 + 32 + 1;

/// One page of a paged folder: its first name, blob and number of entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRef {
    pub first: Vec<u8>,
    pub id: TreeId,
    pub count: u32,
}

/// The decoded index of a paged folder, with each page's starting position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeIndex {
    pages: Vec<PageRef>,
    /// `starts[i]` = entries before page i; one more element: the folder's entry count.
    starts: Vec<u64>,
}

/// What a tree blob holds: a whole folder (or a page), or the index of a paged folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeBlob {
    Flat(Tree),
    Index(TreeIndex),
}

impl TreeBlob {
    /// Decodes an untrusted tree blob of any version.
    pub fn decode(data: &[u8]) -> Result<TreeBlob, DecodeError> {
        if data.first() == Some(&TREE_INDEX_VERSION) {
            TreeIndex::decode(data).map(TreeBlob::Index)
        } else {
            Tree::decode(data).map(TreeBlob::Flat)
        }
    }

    /// Rough heap size, for cache budgets.
    pub fn weight(&self) -> usize {
        match self {
            TreeBlob::Flat(t) => tree_weight(t),
            TreeBlob::Index(ix) => ix.pages.iter().map(|p| p.first.len() + 80).sum::<usize>() + 64,
        }
    }
}

/// Rough heap size of a decoded tree.
pub fn tree_weight(t: &Tree) -> usize {
    t.entries
        .iter()
        .map(|e| {
            let x: usize = e
                .xattrs
                .iter()
                .map(|x| x.name.len() + x.value.len() + 48)
                .sum();
            std::mem::size_of::<Entry>() + e.name.len() + e.target.len() + x + e.chunks().len() * 40
        })
        .sum::<usize>()
        + 64
}

fn bad(what: &'static str, offset: usize) -> DecodeError {
    DecodeError { what, offset }
}

impl TreeIndex {
    /// Builds an index from pages in order; checks it as a decoded one would be.
    pub fn new(pages: Vec<PageRef>) -> Result<TreeIndex, DecodeError> {
        if pages.len() < 2 {
            return Err(bad("tree index (fewer than two pages)", 0));
        }
        let mut starts = Vec::with_capacity(pages.len() + 1);
        let mut total = 0u64;
        for (i, p) in pages.iter().enumerate() {
            if !is_safe_name(&p.first) {
                return Err(bad("tree index page name", 0));
            }
            if p.count == 0 || p.count as usize > PAGE_MAX {
                return Err(bad("tree index page count (1 to 4096 entries)", 0));
            }
            if i > 0 && pages[i - 1].first >= p.first {
                return Err(bad(
                    "tree index order (pages must be sorted and disjoint)",
                    0,
                ));
            }
            starts.push(total);
            total += u64::from(p.count);
        }
        starts.push(total);
        Ok(TreeIndex { pages, starts })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.pages.len() * 64);
        out.push(TREE_INDEX_VERSION);
        put_varint(&mut out, self.pages.len() as u64);
        for p in &self.pages {
            put_bytes(&mut out, &p.first);
            out.extend_from_slice(&p.id.0 .0);
            put_varint(&mut out, u64::from(p.count));
        }
        out
    }

    /// Decodes an untrusted index: sorted, distinct, safe first names; page counts of 1 to
    /// [`PAGE_MAX`]; at least two pages; no trailing bytes.
    pub fn decode(data: &[u8]) -> Result<TreeIndex, DecodeError> {
        let mut r = Reader::new(data);
        if r.u8("tree version")? != TREE_INDEX_VERSION {
            return Err(bad("tree index version", 0));
        }
        let n = r.count("page count", MIN_PAGE_REF_BYTES)?;
        let mut pages = Vec::with_capacity(n);
        for _ in 0..n {
            let first = r.bytes("page first name")?.to_vec();
            let id = TreeId(Digest(r.array32("page id")?));
            let count = r.varint("page entry count")?;
            let count = u32::try_from(count).map_err(|_| bad("page entry count", 0))?;
            pages.push(PageRef { first, id, count });
        }
        if !r.is_empty() {
            return Err(bad(
                "trailing bytes after tree index",
                data.len() - r.remaining(),
            ));
        }
        TreeIndex::new(pages)
    }

    pub fn pages(&self) -> &[PageRef] {
        &self.pages
    }

    /// Entries in the folder, without reading any page.
    pub fn len(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Position of page `i`'s first entry.
    pub fn start(&self, i: usize) -> u64 {
        self.starts.get(i).copied().unwrap_or_else(|| self.len())
    }

    /// The page that would hold `name`, if any (names before the first page's are in none).
    pub fn page_for(&self, name: &[u8]) -> Option<usize> {
        let after = self.pages.partition_point(|p| p.first.as_slice() <= name);
        after.checked_sub(1)
    }

    /// The page holding global position `pos`.
    pub fn page_at(&self, pos: u64) -> Option<usize> {
        if pos >= self.len() {
            return None;
        }
        Some(self.starts.partition_point(|&s| s <= pos) - 1)
    }

    /// Checks a decoded page against its reference: the count and first name it announces,
    /// and its last name before the next page's first (pages do not overlap). Together with
    /// each page's own sort check, this makes the whole folder sorted and unique.
    pub fn check_page(&self, i: usize, page: &Tree) -> Result<(), DecodeError> {
        let Some(p) = self.pages.get(i) else {
            return Err(bad("page number", 0));
        };
        if page.entries.len() != p.count as usize {
            return Err(bad("page entry count (not what the index says)", 0));
        }
        if page.entries.first().map(|e| &e.name) != Some(&p.first) {
            return Err(bad("page first name (not what the index says)", 0));
        }
        if let (Some(next), Some(last)) = (self.pages.get(i + 1), page.entries.last()) {
            if last.name >= next.first {
                return Err(bad("page overlaps the next page", 0));
            }
        }
        Ok(())
    }
}

/// True when a page may end after `name`, its `n`th entry.
fn ends_page(name: &[u8], n: usize) -> bool {
    if n >= PAGE_MAX {
        return true;
    }
    if n < PAGE_MIN {
        return false;
    }
    let h = blake3::hash(name);
    let mut low = [0u8; 8];
    low.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(low) & CUT_MASK == 0
}

/// Writes one folder's entries, given in sorted order, as one tree blob or as pages and an
/// index, holding at most [`PAGE_MAX`] + 1 entries. `emit` stores an encoded blob and returns
/// its id.
#[derive(Default)]
pub struct FolderBuilder {
    buf: Vec<Entry>,
    pages: Vec<PageRef>,
    paged: bool,
}

impl FolderBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next entry (names must come in strictly increasing order; the decoder of the
    /// result checks it).
    pub fn push<E>(
        &mut self,
        e: Entry,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<TreeId, E>,
    ) -> Result<(), E> {
        if self.paged {
            return self.push_paged(e, emit);
        }
        self.buf.push(e);
        if self.buf.len() > PAGE_MAX {
            // Too big for one blob: cut what is buffered into pages from the start, as if it
            // had been paged all along, so the cuts depend on the names only.
            self.paged = true;
            let held = std::mem::take(&mut self.buf);
            for e in held {
                self.push_paged(e, emit)?;
            }
        }
        Ok(())
    }

    fn push_paged<E>(
        &mut self,
        e: Entry,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<TreeId, E>,
    ) -> Result<(), E> {
        let cut = ends_page(&e.name, self.buf.len() + 1);
        self.buf.push(e);
        if cut {
            self.flush_page(emit)?;
        }
        Ok(())
    }

    fn flush_page<E>(
        &mut self,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<TreeId, E>,
    ) -> Result<(), E> {
        let entries = std::mem::take(&mut self.buf);
        let Some(first) = entries.first().map(|e| e.name.clone()) else {
            return Ok(());
        };
        let count = entries.len() as u32;
        let id = emit(Tree { entries }.encode())?;
        self.pages.push(PageRef { first, id, count });
        Ok(())
    }

    /// Entries held, not yet written in a page.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Entries pushed so far.
    pub fn len(&self) -> u64 {
        self.pages.iter().map(|p| u64::from(p.count)).sum::<u64>() + self.buf.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes what is left and returns the folder's tree id (its one blob, or its index).
    pub fn finish<E>(
        mut self,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<TreeId, E>,
    ) -> Result<TreeId, E> {
        if !self.paged {
            return emit(
                Tree {
                    entries: std::mem::take(&mut self.buf),
                }
                .encode(),
            );
        }
        self.flush_page(emit)?;
        // More than PAGE_MAX entries in pages of at most PAGE_MAX: at least two pages, sorted.
        let index = TreeIndex {
            starts: Vec::new(),
            pages: std::mem::take(&mut self.pages),
        };
        emit(index.encode())
    }
}

#[cfg(test)]
mod tests;
