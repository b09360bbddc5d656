//! Reading folders whatever their encoding (format 1.3 pages them): the one API every engine
//! uses to look a name up (O(log pages): one page read), go through a folder page by page, count
//! its entries without reading pages, or fetch the entry at a position. Pages are checked
//! against their index as they are read (`pages::TreeIndex::check_page`).

use super::{RepoError, Repository, Result};
use crate::id::TreeId;
use crate::model::{Entry, Tree};
use crate::pages::{PageRef, TreeBlob, TreeIndex};
use std::borrow::Cow;

/// A folder as stored: one tree, or the index of its pages.
pub struct Folder {
    pub id: TreeId,
    pub blob: TreeBlob,
}

impl Repository {
    /// A folder's top blob (no page is read yet).
    pub fn read_folder(&self, id: TreeId) -> Result<Folder> {
        Ok(Folder {
            id,
            blob: self.read_tree_blob(id)?,
        })
    }

    /// A whole folder in memory. For folders known to be small, or callers that need every
    /// entry at once; big folders are better read with [`Folder::for_each_page`].
    pub fn read_tree(&self, id: TreeId) -> Result<Tree> {
        let folder = self.read_folder(id)?;
        match folder.blob {
            TreeBlob::Flat(t) => Ok(t),
            TreeBlob::Index(ref ix) => {
                let mut entries = Vec::with_capacity(ix.len() as usize);
                for i in 0..ix.pages().len() {
                    entries.extend(folder.page(self, i)?.into_owned().entries);
                }
                Ok(Tree { entries })
            }
        }
    }

    /// Page `i` of a paged folder, checked against the index.
    pub fn read_page(&self, folder: TreeId, index: &TreeIndex, i: usize) -> Result<Tree> {
        let damaged = |id: TreeId, detail: String| RepoError::BadTree {
            id,
            path: self.store.root().display().to_string(),
            detail,
        };
        let Some(p) = index.pages().get(i) else {
            return Err(damaged(folder, format!("no page {i}")));
        };
        match self.read_tree_blob(p.id)? {
            TreeBlob::Index(_) => Err(damaged(
                p.id,
                format!("page {i} of folder {folder} is itself a tree index"),
            )),
            TreeBlob::Flat(t) => match index.check_page(i, &t) {
                Ok(()) => Ok(t),
                Err(e) => Err(damaged(p.id, format!("page {i} of folder {folder}: {e}"))),
            },
        }
    }
}

impl Folder {
    /// Entries in the folder (no page read).
    pub fn len(&self) -> u64 {
        match &self.blob {
            TreeBlob::Flat(t) => t.entries.len() as u64,
            TreeBlob::Index(ix) => ix.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pages of a paged folder (none for a flat one): what check, prune and diff walk.
    pub fn page_refs(&self) -> &[PageRef] {
        match &self.blob {
            TreeBlob::Flat(_) => &[],
            TreeBlob::Index(ix) => ix.pages(),
        }
    }

    /// Number of pages (a flat folder is one page).
    pub fn page_count(&self) -> usize {
        match &self.blob {
            TreeBlob::Flat(_) => 1,
            TreeBlob::Index(ix) => ix.pages().len(),
        }
    }

    /// Page `i` (the folder itself when flat).
    pub fn page(&self, repo: &Repository, i: usize) -> Result<Cow<'_, Tree>> {
        match &self.blob {
            TreeBlob::Flat(t) if i == 0 => Ok(Cow::Borrowed(t)),
            TreeBlob::Flat(_) => Ok(Cow::Owned(Tree::default())),
            TreeBlob::Index(ix) => Ok(Cow::Owned(repo.read_page(self.id, ix, i)?)),
        }
    }

    /// Looks `name` up, reading at most one page.
    pub fn lookup(&self, repo: &Repository, name: &[u8]) -> Result<Option<Entry>> {
        match &self.blob {
            TreeBlob::Flat(t) => Ok(t.find(name).cloned()),
            TreeBlob::Index(ix) => match ix.page_for(name) {
                None => Ok(None),
                Some(i) => Ok(repo.read_page(self.id, ix, i)?.find(name).cloned()),
            },
        }
    }

    /// The entry at position `pos` in name order (stable: a listing offset).
    pub fn entry_at(&self, repo: &Repository, pos: u64) -> Result<Option<Entry>> {
        match &self.blob {
            TreeBlob::Flat(t) => Ok(t.entries.get(pos as usize).cloned()),
            TreeBlob::Index(ix) => match ix.page_at(pos) {
                None => Ok(None),
                Some(i) => {
                    let page = repo.read_page(self.id, ix, i)?;
                    Ok(page.entries.into_iter().nth((pos - ix.start(i)) as usize))
                }
            },
        }
    }

    /// Calls `f` with each page in order, one in memory at a time.
    pub fn for_each_page<E: From<RepoError>>(
        &self,
        repo: &Repository,
        mut f: impl FnMut(&Tree) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        for i in 0..self.page_count() {
            let page = self.page(repo, i)?;
            f(&page)?;
        }
        Ok(())
    }

    /// Calls `f` with each entry in name order, one page in memory at a time.
    pub fn for_each_entry<E: From<RepoError>>(
        &self,
        repo: &Repository,
        mut f: impl FnMut(&Entry) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.for_each_page(repo, |t| t.entries.iter().try_for_each(&mut f))
    }
}

/// Looks names up in increasing order (a merge with another sorted listing): each page is read
/// at most once, and one page is held at a time.
pub struct Cursor<'r> {
    repo: &'r Repository,
    folder: Folder,
    page: Option<(usize, Tree)>,
}

impl<'r> Cursor<'r> {
    pub fn new(repo: &'r Repository, folder: Folder) -> Self {
        Cursor {
            repo,
            folder,
            page: None,
        }
    }

    pub fn folder(&self) -> &Folder {
        &self.folder
    }

    /// The entry named `name`, if the folder has one.
    pub fn find(&mut self, name: &[u8]) -> Result<Option<&Entry>> {
        let ix = match &self.folder.blob {
            TreeBlob::Flat(t) => return Ok(t.find(name)),
            TreeBlob::Index(ix) => ix,
        };
        let Some(i) = ix.page_for(name) else {
            return Ok(None);
        };
        if self.page.as_ref().map(|(at, _)| *at) != Some(i) {
            self.page = None;
            self.page = Some((i, self.repo.read_page(self.folder.id, ix, i)?));
        }
        Ok(self.page.as_ref().and_then(|(_, t)| t.find(name)))
    }
}
