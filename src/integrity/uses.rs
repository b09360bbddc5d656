//! The second pass of `check`: which snapshots and paths use each lost blob. It walks every
//! snapshot again, descending only into trees that lead to lost blobs, and stops at caps, so a
//! forged tree holding one subtree 2^40 times over (or nesting deeper than any path) costs
//! bounded time and memory.

use super::check::{BlobUse, LostBlobs, Scan};
use crate::id::{Digest, SnapshotId, TreeId};
use crate::model::{Manifest, Tree};
use crate::pages::TreeBlob;
use crate::store::pack::BlobKind;
use crate::store::Store;
use crate::tree::MAX_DEPTH;
use std::collections::HashMap;

/// Walks every snapshot again, descending only into trees that lead to lost blobs, and lists
/// each use of each lost blob.
pub(super) fn find_uses(
    store: &Store,
    scan: &Scan,
    bad: &LostBlobs,
) -> (HashMap<(BlobKind, Digest), Vec<BlobUse>>, bool) {
    let mut uses: HashMap<(BlobKind, Digest), Vec<BlobUse>> = HashMap::new();
    let mut dirty: HashMap<Digest, bool> = HashMap::new();
    let mut recorded = 0;
    let mut truncated = false;
    for (sid, m) in &scan.manifests {
        let Ok(root) = m.root.parse::<TreeId>() else {
            continue;
        };
        let mut walk = Walk {
            recorded: &mut recorded,
            here: 0,
            truncated: &mut truncated,
            store,
            scan,
            bad,
            dirty: &mut dirty,
            uses: &mut uses,
            snap: (sid, m),
        };
        walk.tree(root, &mut Vec::new(), 0);
    }
    (uses, truncated)
}

/// At most this many uses of lost blobs are listed per snapshot, and in all: a forged tree
/// holding one subtree 2^40 times over must not make `check` list (or walk) 2^40 paths, nor
/// hide the damage of the snapshots after it.
pub const MAX_USES_PER_SNAPSHOT: usize = 10_000;
pub const MAX_USES: usize = 200_000;

struct Walk<'a> {
    /// Uses recorded so far, over every blob and snapshot.
    recorded: &'a mut usize,
    /// Uses recorded in this snapshot.
    here: usize,
    /// Set when a cap left uses out.
    truncated: &'a mut bool,
    store: &'a Store,
    scan: &'a Scan,
    bad: &'a LostBlobs,
    dirty: &'a mut HashMap<Digest, bool>,
    uses: &'a mut HashMap<(BlobKind, Digest), Vec<BlobUse>>,
    snap: (&'a SnapshotId, &'a Manifest),
}

impl Walk<'_> {
    fn full(&self) -> bool {
        *self.recorded >= MAX_USES || self.here >= MAX_USES_PER_SNAPSHOT
    }

    fn record(&mut self, id: (BlobKind, Digest), path: &[u8]) {
        if self.full() {
            *self.truncated = true;
            return;
        }
        *self.recorded += 1;
        self.here += 1;
        let (sid, m) = self.snap;
        self.uses.entry(id).or_default().push(BlobUse {
            snapshot: sid.to_hex(),
            host: m.host.clone(),
            part: m.part.clone(),
            path: if path.is_empty() {
                "/".into()
            } else {
                String::from_utf8_lossy(path).into_owned()
            },
        });
    }

    /// Records the lost blobs below `id` (at `path`); returns whether there were any.
    fn tree(&mut self, id: TreeId, path: &mut Vec<u8>, depth: usize) -> bool {
        if self.bad.contains_key(&(BlobKind::Tree, id.0)) {
            self.record((BlobKind::Tree, id.0), path);
            return true;
        }
        if self.dirty.get(&id.0) == Some(&false) {
            return false;
        }
        // Every use that will be listed is listed: walking on could only take time; and the
        // recursion stops where find_bad stopped (deeper is a forged tree).
        if self.full() || depth > MAX_DEPTH {
            *self.truncated |= self.full();
            return self.dirty.get(&id.0).copied().unwrap_or(true);
        }
        let Ok(blob) = self.scan.read_tree_blob(self.store, &id) else {
            return false;
        };
        let any = match blob {
            TreeBlob::Flat(tree) => self.entries(&tree, path, depth),
            TreeBlob::Index(ix) => {
                let mut any = false;
                for (i, p) in ix.pages().iter().enumerate() {
                    if self.bad.contains_key(&(BlobKind::Tree, p.id.0)) {
                        self.record((BlobKind::Tree, p.id.0), path);
                        any = true;
                    } else if let Ok(page) = self.scan.read_page(self.store, &ix, i) {
                        any |= self.entries(&page, path, depth);
                    }
                }
                any
            }
        };
        self.dirty.insert(id.0, any);
        any
    }

    /// Records the lost blobs of one folder's (or page's) entries and below.
    fn entries(&mut self, tree: &Tree, path: &mut Vec<u8>, depth: usize) -> bool {
        let mut any = false;
        for e in &tree.entries {
            let len = path.len();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&e.name);
            for c in e.chunks() {
                let key = (BlobKind::Chunk, c.id.0);
                if self.bad.contains_key(&key) {
                    any = true;
                    // One use per file even when it holds the chunk twice.
                    if self.uses.get(&key).and_then(|u| u.last()).is_none_or(|u| {
                        u.path.as_bytes() != path.as_slice() || u.snapshot != self.snap.0.to_hex()
                    }) {
                        self.record(key, path);
                    }
                }
            }
            if let Some(sub) = e.subtree() {
                any |= self.tree(sub, path, depth + 1);
            }
            path.truncate(len);
        }
        any
    }
}
