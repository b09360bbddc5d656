//! Downloads: a file's bytes, or a folder as a tar archive, streamed as they are read from the
//! store, so memory stays bounded whatever the size. A download is asked for with the session
//! (`POST /api/download/<snapshot>/<path…>`, which answers a single-use ticket, see
//! [`super::downloads`]) and fetched by the browser at `/download/<ticket>`.
//!
//! A file is sent with its `Content-Length`; a folder's tar is chunked. A chunk that cannot be
//! read (damage) cuts the transfer off — fewer bytes than announced, or no final chunk — so
//! curl and browsers report a failed download instead of saving a short file as complete, and
//! the ticket's state tells the page what went wrong. Backed-up content is never shown by the
//! browser: every download is an `attachment` of type `application/octet-stream`, and
//! `nosniff` is on every answer.

use super::app::{App, Ctx};
use super::downloads::{State, Target};
use super::http::{error, json, Response};
use super::paths::{node_in, resolve_node, snapshot_id};
use crate::model::{ChunkRef, Entry, EntryKind};
use crate::repo::Repository;
use crate::restore::ls::{components, Node};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// `POST /api/download/<snapshot>/<path…>`: checks that the path names a file or folder and
/// answers a ticket for it.
pub fn ticket(ctx: &Ctx<'_>, id: &str, rest: &[&str]) -> Response {
    let (snap, path, node) = match resolve_node(ctx, id, rest) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match &node {
        Node::Entry(e) if e.subtree().is_none() && e.kind != EntryKind::File => {
            return error(400, "only files and folders can be downloaded");
        }
        _ => {}
    }
    let target = Target {
        snapshot: snap.id.to_hex(),
        path,
        who: ctx.who.clone(),
    };
    match ctx.app.downloads.issue(target) {
        Some(t) => json(
            200,
            &serde_json::json!({ "ticket": t, "url": format!("/download/{t}") }),
        ),
        None => error(503, "no random source (/dev/urandom) for a ticket"),
    }
}

/// `GET /api/downloads/<ticket>`: how that download went.
pub fn status(ctx: &Ctx<'_>, token: &str) -> Response {
    let Some(state) = ctx.app.downloads.state(token, &ctx.who) else {
        return error(404, "no such download");
    };
    let v = match state {
        State::Waiting => serde_json::json!({ "state": "waiting", "bytes": 0 }),
        State::Running { bytes } => serde_json::json!({ "state": "running", "bytes": bytes }),
        State::Done { bytes } => serde_json::json!({ "state": "done", "bytes": bytes }),
        State::Failed { bytes, error } => {
            serde_json::json!({ "state": "failed", "bytes": bytes, "error": error })
        }
    };
    json(200, &v)
}

/// `GET /download/<ticket>`: the download itself (no session: the ticket is the credential).
pub fn download(app: &Arc<App>, repo: &Repository, token: &str) -> Response {
    let Some(target) = app.downloads.take(token) else {
        return error(
            410,
            "this download link was used or has expired: download again from the page",
        );
    };
    let Ok(id) = snapshot_id(&target.snapshot) else {
        return error(400, "bad ticket");
    };
    let snap = match repo.resolve(id) {
        Ok(s) => s,
        Err(e) => return error(404, &e.to_string()),
    };
    let node = match node_in(repo, &snap, &target.path) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let own = match app.open_repo() {
        Ok(r) => r,
        Err(e) => return error(503, &e.to_string()),
    };
    let comps = components(&target.path);
    let base = comps
        .last()
        .map(|c| c.to_vec())
        .unwrap_or_else(|| snap.manifest.part.replace('/', "_").into_bytes());
    let m = &snap.manifest;
    log::info!(target: super::LOG_TARGET, "{}: download {}/{}/{}:{}", target.who, m.host, m.part, snap.id.short(), String::from_utf8_lossy(&target.path));
    let (name, reader, length): (Vec<u8>, Box<dyn Read + Send>, Option<u64>) = match node {
        Node::Entry(e) if e.subtree().is_none() => {
            if e.kind != EntryKind::File {
                return error(400, "only files and folders can be downloaded");
            }
            let file = FileReader {
                repo: own,
                chunks: e.chunks().to_vec(),
                next: 0,
                buf: Vec::new(),
                pos: 0,
            };
            (base, Box::new(file), Some(e.size))
        }
        node => {
            let Some(tree) = node.subtree() else {
                return error(400, "nothing to download");
            };
            let top = PathBuf::from(std::ffi::OsStr::from_bytes(&base));
            let (tx, rx) = sync_channel(4);
            std::thread::spawn(move || {
                let sink = ChannelWriter { tx: tx.clone() };
                let mut b = tar::Builder::new(sink);
                b.mode(tar::HeaderMode::Complete);
                let r = write_tree(&own, tree, &top, &mut b)
                    .and_then(|()| b.finish())
                    .and_then(|()| b.get_mut().flush());
                let _ = match r {
                    Ok(()) => tx.send(Piece::End),
                    Err(e) => tx.send(Piece::Failed(e.to_string())),
                };
            });
            let mut n = base;
            n.extend_from_slice(b".tar");
            (
                n,
                Box::new(ChannelReader {
                    rx,
                    buf: Vec::new(),
                    pos: 0,
                    ended: false,
                }),
                None,
            )
        }
    };
    let mut r = Response::stream(
        Box::new(Watch {
            app: Arc::clone(app),
            token: token.to_string(),
            bytes: 0,
            length,
            inner: reader,
        }),
        length,
    );
    r.add_header("Content-Type", "application/octet-stream");
    r.add_header("Content-Disposition", &disposition(&name));
    r
}

/// Counts what a download sends and records how it ended in its ticket.
struct Watch {
    app: Arc<App>,
    token: String,
    bytes: u64,
    length: Option<u64>,
    inner: Box<dyn Read + Send>,
}

impl Read for Watch {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(out) {
            Ok(0) => {
                let state = match self.length {
                    Some(n) if self.bytes < n => State::Failed {
                        bytes: self.bytes,
                        error: format!("the file ended after {} of {n} bytes", self.bytes),
                    },
                    _ => State::Done { bytes: self.bytes },
                };
                self.app.downloads.set(&self.token, state);
                Ok(0)
            }
            Ok(n) => {
                self.bytes += n as u64;
                let state = if self.length == Some(self.bytes) {
                    State::Done { bytes: self.bytes }
                } else {
                    State::Running { bytes: self.bytes }
                };
                self.app.downloads.set(&self.token, state);
                Ok(n)
            }
            Err(e) => {
                log::warn!(target: super::LOG_TARGET, "download cut off after {} bytes: {e}", self.bytes);
                self.app.downloads.set(
                    &self.token,
                    State::Failed {
                        bytes: self.bytes,
                        error: e.to_string(),
                    },
                );
                Err(e)
            }
        }
    }
}

/// A piece of a folder's tar, from the thread that builds it.
enum Piece {
    Data(Vec<u8>),
    End,
    Failed(String),
}

struct ChannelWriter {
    tx: SyncSender<Piece>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .send(Piece::Data(buf.to_vec()))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "download closed"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The tar as the answer reads it: ends only when the builder said it finished, so a builder
/// that failed or vanished is an error, never a clean end.
struct ChannelReader {
    rx: Receiver<Piece>,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Piece::Data(d)) => {
                    self.buf = d;
                    self.pos = 0;
                }
                Ok(Piece::End) => self.ended = true,
                Ok(Piece::Failed(e)) => return Err(std::io::Error::other(e)),
                Err(_) => return Err(std::io::Error::other("the archive stopped before its end")),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A file's content read chunk by chunk from a repository of its own.
struct FileReader {
    repo: Repository,
    chunks: Vec<ChunkRef>,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for FileReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(c) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            self.buf = chunk_bytes(&self.repo, c)?;
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
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
