//! `find`: names matching a glob across snapshots, from tree metadata only (the catalog's copies
//! of trees; no chunk is read). Results are memoized per tree id (and, for patterns that match
//! whole paths, per the tree's path), so a subtree unchanged across N snapshots is searched once.

use crate::id::TreeId;
use crate::model::EntryKind;
use crate::repo::{RepoError, Repository};
use crate::restore::glob::Glob;
use crate::tree::MAX_DEPTH;
use std::collections::HashMap;
use std::rc::Rc;

/// Most matches one folder (with everything below it) may give: beyond, the pattern is too
/// broad to be useful, or a forged tree holds one subtree millions of times over, and the
/// results (kept per folder for reuse) must not take all memory.
pub const MAX_MATCHES: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("more than {MAX_MATCHES} matches under {0:?}; narrow the pattern (or search one part with --part)")]
    TooMany(String),
    #[error("folders nest deeper than {MAX_DEPTH} levels at {0:?}: a damaged or forged tree; run `bmbackup check`")]
    TooDeep(String),
}

/// One match, relative to the tree searched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// `/`-separated raw bytes.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub size: u64,
    pub mtime_sec: i64,
}

pub struct Finder<'r> {
    repo: &'r Repository,
    glob: Glob,
    memo: HashMap<(TreeId, Vec<u8>), Rc<Vec<Found>>>,
    /// Distinct (tree, path) pairs searched: what memoization saves shows here.
    pub trees_searched: u64,
}

impl<'r> Finder<'r> {
    pub fn new(repo: &'r Repository, glob: Glob) -> Self {
        Finder {
            repo,
            glob,
            memo: HashMap::new(),
            trees_searched: 0,
        }
    }

    /// Every match under the snapshot root `root`, paths relative to it.
    pub fn find(&mut self, root: TreeId) -> Result<Rc<Vec<Found>>, FindError> {
        self.search(root, Vec::new(), 0)
    }

    /// `prefix` is the tree's path from the root; it is part of the memo key only for path
    /// patterns, whose matches depend on it.
    fn search(
        &mut self,
        id: TreeId,
        prefix: Vec<u8>,
        depth: usize,
    ) -> Result<Rc<Vec<Found>>, FindError> {
        if depth > MAX_DEPTH {
            return Err(FindError::TooDeep(
                String::from_utf8_lossy(&prefix).into_owned(),
            ));
        }
        let key = (
            id,
            if self.glob.is_path() {
                prefix.clone()
            } else {
                Vec::new()
            },
        );
        if let Some(hit) = self.memo.get(&key) {
            return Ok(Rc::clone(hit));
        }
        self.trees_searched += 1;
        // Page by page: a paged folder is never held whole.
        let repo = self.repo;
        let folder = repo.read_folder(id)?;
        let mut out = Vec::new();
        for i in 0..folder.page_count() {
            let page = folder.page(repo, i)?;
            for e in &page.entries {
                let full = join(&prefix, &e.name);
                if self.glob.matches_entry(&e.name, &full) {
                    out.push(Found {
                        path: e.name.clone(),
                        kind: e.kind,
                        size: e.size,
                        mtime_sec: e.mtime.sec,
                    });
                }
                if let Some(sub) = e.subtree() {
                    let below = self.search(sub, full, depth + 1)?;
                    if out.len() + below.len() > MAX_MATCHES {
                        return Err(FindError::TooMany(
                            String::from_utf8_lossy(&prefix).into_owned(),
                        ));
                    }
                    out.extend(below.iter().map(|f| Found {
                        path: join(&e.name, &f.path),
                        ..f.clone()
                    }));
                }
            }
        }
        let out = Rc::new(out);
        self.memo.insert(key, Rc::clone(&out));
        Ok(out)
    }
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() {
        return b.to_vec();
    }
    let mut v = Vec::with_capacity(a.len() + 1 + b.len());
    v.extend_from_slice(a);
    v.push(b'/');
    v.extend_from_slice(b);
    v
}
