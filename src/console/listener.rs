//! The console's connections, built so that no client can take it down: one intake thread
//! accepts every connection and reads request heads without blocking (poll), a bounded pool of
//! workers answers complete requests, and streamed downloads get threads of their own up to a
//! cap. What keeps it up:
//! - a connection costs one descriptor and a small buffer until its request is complete; at
//!   most [`Limits::max_pending`] wait (and [`Limits::per_client`] per address): a new one
//!   pushes out the oldest, so a flood of half-open connections makes room for a real request
//!   instead of filling the file table;
//! - a request head and body must arrive within [`Limits::head_timeout`];
//! - accept errors (EMFILE, ENFILE, ENOMEM…) close the oldest waiting connection and go on,
//!   the listener is never closed; the soft file limit is raised to the hard one at start;
//! - answers are written with a timeout, and every connection is closed after its answer.
//!
//! A streamed answer that fails midway (a damaged chunk) is cut off: no final chunk, fewer
//! bytes than its `Content-Length`, so curl and browsers report a failed transfer.

use super::http::{parse_head, reason, Body, Head, Method, Request, Response, MAX_BODY, MAX_HEAD};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bounds of [`serve`].
#[derive(Debug, Clone)]
pub struct Limits {
    pub workers: usize,
    pub max_pending: usize,
    pub per_client: usize,
    pub head_timeout: Duration,
    pub write_timeout: Duration,
    /// Complete requests waiting for a worker.
    pub queue: usize,
    /// Streamed answers (downloads) at once.
    pub max_streams: usize,
}

impl Limits {
    pub fn with_workers(workers: usize) -> Limits {
        Limits {
            workers: workers.clamp(1, 64),
            max_pending: 512,
            per_client: 256,
            head_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(60),
            queue: 128,
            max_streams: 16,
        }
    }
}

/// What answers a request.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A connection whose request is not complete yet.
struct Pending {
    stream: TcpStream,
    peer: std::net::SocketAddr,
    buf: Vec<u8>,
    since: Instant,
}

/// Serves `listener` forever (the intake runs on the calling thread).
pub fn serve(listener: TcpListener, limits: Limits, handler: Arc<Handler>) -> std::io::Result<()> {
    raise_file_limit();
    listener.set_nonblocking(true)?;
    let (tx, rx) = sync_channel::<(Request, TcpStream)>(limits.queue);
    let rx = Arc::new(parking_lot::Mutex::new(rx));
    let streams = Arc::new(AtomicUsize::new(0));
    for _ in 0..limits.workers {
        let rx = Arc::clone(&rx);
        let handler = Arc::clone(&handler);
        let streams = Arc::clone(&streams);
        let limits = limits.clone();
        std::thread::Builder::new()
            .name("console-worker".into())
            .spawn(move || worker(&rx, &*handler, &streams, &limits))?;
    }
    intake(&listener, &limits, &tx);
    Ok(())
}

/// Raises the soft limit of open files to the hard one: the caps above, not the file table,
/// are what bound the connections.
fn raise_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            log::debug!("console: file limit not raised: {e}");
        }
    }
}

fn intake(listener: &TcpListener, limits: &Limits, tx: &SyncSender<(Request, TcpStream)>) {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut pending: Vec<Pending> = Vec::new();
    let mut last_accept_warning: Option<Instant> = None;
    loop {
        let (listener_ready, ready) = {
            let mut fds = Vec::with_capacity(pending.len() + 1);
            fds.push(PollFd::new(listener, PollFlags::IN));
            for p in &pending {
                fds.push(PollFd::new(&p.stream, PollFlags::IN));
            }
            let timeout = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 250_000_000,
            };
            if let Err(e) = poll(&mut fds, Some(&timeout)) {
                if e != rustix::io::Errno::INTR {
                    log::warn!("console: poll: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            let any = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
            let ready: Vec<usize> = fds[1..]
                .iter()
                .enumerate()
                .filter(|(_, f)| f.revents().intersects(any))
                .map(|(i, _)| i)
                .collect();
            (fds[0].revents().intersects(any), ready)
        };
        // Highest index first, so removing one does not move the others still to read.
        let mut done: Vec<usize> = Vec::new();
        for &i in ready.iter().rev() {
            if read_some(&mut pending[i], tx) {
                done.push(i);
            }
        }
        done.sort_unstable();
        for i in done.into_iter().rev() {
            pending.swap_remove(i);
        }
        let now = Instant::now();
        pending.retain_mut(|p| {
            let alive = now.duration_since(p.since) < limits.head_timeout;
            if !alive {
                answer_now(&mut p.stream, 408, "the request took too long to arrive");
            }
            alive
        });
        if listener_ready {
            accept_all(listener, limits, &mut pending, &mut last_accept_warning);
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    limits: &Limits,
    pending: &mut Vec<Pending>,
    last_warning: &mut Option<Instant>,
) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                make_room(pending, limits, peer.ip());
                pending.push(Pending {
                    stream,
                    peer,
                    buf: Vec::new(),
                    since: Instant::now(),
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                // Out of descriptors or memory: free the oldest waiting connection and retry;
                // with none to free (workers hold them), wait a little. Never stop listening.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    log::warn!(
                        "console: accepting a connection failed ({e}); {} waiting connections, closing the oldest",
                        pending.len()
                    );
                    *last_warning = Some(Instant::now());
                }
                if pending.is_empty() {
                    std::thread::sleep(Duration::from_millis(20));
                    return;
                }
                pending.remove(0);
            }
        }
    }
}

/// Closes the oldest waiting connections of `ip` past its share, and the oldest of all past
/// the total, so that a new one always gets in.
fn make_room(pending: &mut Vec<Pending>, limits: &Limits, ip: IpAddr) {
    let mine = pending.iter().filter(|p| p.peer.ip() == ip).count();
    if mine >= limits.per_client {
        if let Some(i) = pending.iter().position(|p| p.peer.ip() == ip) {
            pending.remove(i);
        }
    }
    while pending.len() >= limits.max_pending {
        pending.remove(0);
    }
}

/// Reads what has arrived; true when the connection leaves the waiting list (handed to a
/// worker, answered, or closed).
fn read_some(p: &mut Pending, tx: &SyncSender<(Request, TcpStream)>) -> bool {
    let mut chunk = [0u8; 8192];
    loop {
        match p.stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => {
                p.buf.extend_from_slice(&chunk[..n]);
                if p.buf.len() > MAX_HEAD + MAX_BODY + 4 {
                    answer_now(&mut p.stream, 413, "request too large");
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    match parse_head(&p.buf, p.peer) {
        Head::Partial => false,
        Head::Bad(status, msg) => {
            answer_now(&mut p.stream, status, msg);
            true
        }
        Head::Complete {
            mut request,
            head_len,
            body_len,
        } => {
            if p.buf.len() < head_len + body_len {
                return false;
            }
            request.body = p.buf[head_len..head_len + body_len].to_vec();
            let Ok(stream) = p.stream.try_clone() else {
                return true;
            };
            if stream.set_nonblocking(false).is_err() {
                return true;
            }
            match tx.try_send((request, stream)) {
                Ok(()) => {}
                Err(TrySendError::Full((_, mut s))) => {
                    let _ = s.set_nonblocking(true);
                    answer_now(&mut s, 503, "the console is busy: try again in a moment");
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
            true
        }
    }
}

/// A short error answer written without blocking (into an empty send buffer it fits whole);
/// then the connection is closed.
fn answer_now(stream: &mut TcpStream, status: u16, message: &str) {
    let body = serde_json::json!({ "error": message }).to_string();
    let text = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

fn worker(
    rx: &parking_lot::Mutex<Receiver<(Request, TcpStream)>>,
    handler: &Handler,
    streams: &Arc<AtomicUsize>,
    limits: &Limits,
) {
    loop {
        let next = rx.lock().recv();
        let Ok((req, mut stream)) = next else { return };
        let _ = stream.set_write_timeout(Some(limits.write_timeout));
        let head_only = req.method == Method::Head;
        let resp = handler(&req);
        if matches!(resp.body, Body::Stream { .. }) && !head_only {
            if streams.fetch_add(1, Ordering::SeqCst) >= limits.max_streams {
                streams.fetch_sub(1, Ordering::SeqCst);
                let r = super::http::error(503, "too many downloads at once: try again later");
                let _ = write_response(&mut stream, r, false);
                continue;
            }
            let streams = Arc::clone(streams);
            let spawned = std::thread::Builder::new()
                .name("console-stream".into())
                .spawn(move || {
                    if let Err(e) = write_response(&mut stream, resp, false) {
                        log::warn!("console: download cut off: {e}");
                    }
                    streams.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                log::warn!("console: no thread for a download");
            }
            continue;
        }
        if let Err(e) = write_response(&mut stream, resp, head_only) {
            log::debug!("console: answer not sent: {e}");
        }
    }
}

/// Writes `resp` and closes the connection. A streamed body that cannot be read to its end
/// ends the connection without completing the answer, and the error is returned.
pub fn write_response(
    stream: &mut TcpStream,
    resp: Response,
    head_only: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = match &resp.body {
        Body::Bytes(b) => {
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
            false
        }
        Body::Stream {
            length: Some(n), ..
        } => {
            head.push_str(&format!("Content-Length: {n}\r\n"));
            false
        }
        Body::Stream { length: None, .. } => {
            head.push_str("Transfer-Encoding: chunked\r\n");
            true
        }
    };
    head.push_str("Connection: close\r\n\r\n");
    let result = match resp.body {
        Body::Bytes(b) => {
            let mut all = head.into_bytes();
            if !head_only {
                all.extend_from_slice(&b);
            }
            stream.write_all(&all)
        }
        Body::Stream { mut reader, length } => {
            stream.write_all(head.as_bytes())?;
            if head_only {
                Ok(())
            } else {
                copy_body(&mut *reader, stream, length, chunked)
            }
        }
    };
    match &result {
        Ok(()) => {
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Write);
            // Lets the client read the whole answer before the socket goes (closing with
            // unread input would reset the connection under it).
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        }
        Err(_) => abort(stream),
    }
    result
}

fn copy_body(
    reader: &mut dyn Read,
    out: &mut TcpStream,
    length: Option<u64>,
    chunked: bool,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent: u64 = 0;
    loop {
        let want = match length {
            Some(n) => usize::try_from(n - sent)
                .unwrap_or(usize::MAX)
                .min(buf.len()),
            None => buf.len(),
        };
        if want == 0 {
            return Ok(());
        }
        let got = match reader.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if got == 0 {
            return match length {
                Some(n) if sent < n => Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("the body ended after {sent} of {n} bytes"),
                )),
                _ if chunked => out.write_all(b"0\r\n\r\n"),
                _ => Ok(()),
            };
        }
        if chunked {
            out.write_all(format!("{got:x}\r\n").as_bytes())?;
            out.write_all(&buf[..got])?;
            out.write_all(b"\r\n")?;
        } else {
            out.write_all(&buf[..got])?;
        }
        sent += got as u64;
    }
}

/// Ends a connection at once with a reset, so the client cannot take a cut-off answer for a
/// whole one.
fn abort(stream: &TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(stream.as_fd(), Some(Duration::ZERO));
    let _ = stream.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A reader that fails after `ok` bytes, as a damaged chunk does.
    struct Failing {
        ok: usize,
    }
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.ok == 0 {
                return Err(std::io::Error::other("damaged chunk"));
            }
            let n = buf.len().min(self.ok);
            buf[..n].fill(b'x');
            self.ok -= n;
            Ok(n)
        }
    }

    fn exchange(resp: Response) -> (std::io::Result<()>, Vec<u8>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            let mut got = Vec::new();
            let _ = c.read_to_end(&mut got);
            got
        });
        let (mut s, _) = l.accept().unwrap();
        let r = write_response(&mut s, resp, false);
        drop(s);
        (r, client.join().unwrap())
    }

    #[test]
    fn a_failed_stream_never_ends_cleanly() {
        let (r, got) = exchange(Response::stream(Box::new(Failing { ok: 1000 }), Some(5000)));
        assert!(r.is_err());
        let text = String::from_utf8_lossy(&got);
        assert!(text.contains("Content-Length: 5000"), "{text}");
        let (r, got) = exchange(Response::stream(Box::new(Failing { ok: 1000 }), None));
        assert!(r.is_err());
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.contains("chunked") && !text.ends_with("0\r\n\r\n"),
            "{text}"
        );
        // A stream shorter than its announced length is a failure too.
        let (r, _) = exchange(Response::stream(
            Box::new(Cursor::new(vec![1u8; 10])),
            Some(20),
        ));
        assert!(r.is_err());
        let (r, got) = exchange(Response::stream(Box::new(Cursor::new(vec![1u8; 10])), None));
        assert!(r.is_ok());
        assert!(String::from_utf8_lossy(&got)
            .ends_with("a\r\n\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\r\n0\r\n\r\n"));
    }
}
