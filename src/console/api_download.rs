//! Downloads: a file's bytes, or a folder as a tar archive, streamed as they are read from the
//! store (a thread writes into a socket pair that the answer reads, so memory stays bounded
//! whatever the size). Backed-up content is never shown by the browser: every download is an
//! `attachment` of type `application/octet-stream`, and `nosniff` is on every answer.

use super::http::{error, header};
use super::paths::resolve_node;
use super::server::Ctx;
use crate::model::{ChunkRef, Entry, EntryKind};
use crate::repo::Repository;
use crate::restore::ls::{components, Node};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use tiny_http::{Response, ResponseBox, StatusCode};

/// `GET /api/download/<snapshot>/<path…>`.
pub fn download(ctx: &Ctx<'_>, id: &str, rest: &[&str]) -> ResponseBox {
    let (snap, path, node) = match resolve_node(ctx, id, rest) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let comps = components(&path);
    let repo = match ctx.app.open_repo() {
        Ok(r) => r,
        Err(e) => return error(503, &e.to_string()),
    };
    let (mine, theirs) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => return error(500, &e.to_string()),
    };
    let base = comps
        .last()
        .map(|c| c.to_vec())
        .unwrap_or_else(|| snap.manifest.part.replace('/', "_").into_bytes());
    let m = &snap.manifest;
    log::info!(target: super::LOG_TARGET, "{}: download {}/{}/{}:{}", ctx.who, m.host, m.part, snap.id.short(), String::from_utf8_lossy(&path));
    let (name, length) = match node {
        Node::Entry(e) if e.subtree().is_none() => {
            if e.kind != EntryKind::File {
                return error(400, "only files and folders can be downloaded");
            }
            let length = usize::try_from(e.size).ok();
            std::thread::spawn(move || {
                let mut out = mine;
                if let Err(err) = write_file(&repo, e.chunks(), &mut out) {
                    log::warn!("console: download stopped: {err}");
                }
            });
            (base, length)
        }
        node => {
            let Some(tree) = node.subtree() else {
                return error(400, "nothing to download");
            };
            let top = PathBuf::from(std::ffi::OsStr::from_bytes(&base));
            std::thread::spawn(move || {
                let mut b = tar::Builder::new(mine);
                b.mode(tar::HeaderMode::Complete);
                let r = write_tree(&repo, tree, &top, &mut b).and_then(|()| b.finish());
                if let Err(err) = r {
                    // The archive then lacks its end, so the browser's copy is seen as broken.
                    log::warn!("console: folder download stopped: {err}");
                }
            });
            let mut n = base;
            n.extend_from_slice(b".tar");
            (n, None)
        }
    };
    let mut r = Response::new(
        StatusCode(200),
        Vec::new(),
        Box::new(theirs) as Box<dyn Read + Send>,
        length,
        None,
    );
    for (k, v) in [
        ("Content-Type", "application/octet-stream".to_string()),
        ("Content-Disposition", disposition(&name)),
    ] {
        if let Some(h) = header(k, &v) {
            r.add_header(h);
        }
    }
    r
}

/// `attachment` with an ASCII fallback name and the exact name percent-encoded (RFC 6266).
fn disposition(name: &[u8]) -> String {
    let ascii: String = name
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"._-@+".contains(&b) {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        super::api_browse::encode(name)
    )
}

fn chunk_bytes(repo: &Repository, c: &ChunkRef) -> std::io::Result<Vec<u8>> {
    if crate::holes::is_hole_chunk(c) {
        return Ok(crate::holes::zeros(c).to_vec());
    }
    repo.read_chunk(c.id).map_err(std::io::Error::other)
}

fn write_file(repo: &Repository, chunks: &[ChunkRef], out: &mut dyn Write) -> std::io::Result<()> {
    for c in chunks {
        out.write_all(&chunk_bytes(repo, c)?)?;
    }
    out.flush()
}

/// A file's content as a reader, one chunk at a time (for the tar builder).
struct ChunkReader<'a> {
    repo: &'a Repository,
    chunks: &'a [ChunkRef],
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some((c, rest)) = self.chunks.split_first() else {
                return Ok(0);
            };
            self.buf = chunk_bytes(self.repo, c)?;
            self.pos = 0;
            self.chunks = rest;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn tar_header(e: &Entry, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(e.mode & 0o7777);
    h.set_uid(u64::from(e.uid));
    h.set_gid(u64::from(e.gid));
    h.set_mtime(u64::try_from(e.mtime.sec).unwrap_or(0));
    h.set_size(size);
    h
}

fn write_tree<W: Write>(
    repo: &Repository,
    tree: crate::id::TreeId,
    at: &std::path::Path,
    b: &mut tar::Builder<W>,
) -> std::io::Result<()> {
    let t = repo.read_tree(tree).map_err(std::io::Error::other)?;
    for e in &t.entries {
        let path = at.join(std::ffi::OsStr::from_bytes(&e.name));
        match e.kind {
            EntryKind::Dir => {
                let mut h = tar_header(e, tar::EntryType::Directory, 0);
                b.append_data(&mut h, &path, std::io::empty())?;
                if let Some(sub) = e.subtree() {
                    write_tree(repo, sub, &path, b)?;
                }
            }
            EntryKind::File => {
                let mut h = tar_header(e, tar::EntryType::Regular, e.size);
                let reader = ChunkReader {
                    repo,
                    chunks: e.chunks(),
                    buf: Vec::new(),
                    pos: 0,
                };
                b.append_data(&mut h, &path, reader)?;
            }
            EntryKind::Symlink => {
                let mut h = tar_header(e, tar::EntryType::Symlink, 0);
                b.append_link(&mut h, &path, std::ffi::OsStr::from_bytes(&e.target))?;
            }
            // Devices, fifos and sockets: `bmbackup restore` puts them back; a download skips them.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn the_file_name_cannot_break_the_header() {
        let d = disposition(b"a\"b\r\nSet-Cookie: x;\xff.eml");
        assert!(
            d.starts_with("attachment; filename=\"a_b__Set-Cookie__x__.eml\"; filename*=UTF-8''")
        );
        assert!(!d.contains('\r') && !d.contains('\n'));
        assert!(d.ends_with("a%22b%0D%0ASet-Cookie%3A%20x%3B%FF.eml"), "{d}");
    }
}
