//! Reading subfolders ahead: `ls -R`, `find`, `du` and `rsync` list a folder and then each of its
//! subfolders, one kernel round trip after another. Loading the subfolders' trees on a spare
//! thread meanwhile takes the catalog read, zstd and decoding off that sequential path.

use crate::id::TreeId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Most subfolders read ahead per listed folder: a folder of 100k subfolders must not flush the
/// tree cache for a listing that may stop after a screenful.
pub const MAX_AHEAD: usize = 256;
/// Listed folders waiting to be read ahead; more are dropped (the reads happen on demand).
const QUEUE: usize = 32;

/// A thread loading trees into the cache; stops when dropped.
pub struct Prefetcher {
    tx: Option<SyncSender<Vec<TreeId>>>,
    /// Set when dropped: an unmount does not wait for queued work.
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Prefetcher {
    /// `load` brings one tree into the cache (errors are its business: the real access will
    /// report them).
    pub fn spawn(load: impl Fn(TreeId) + Send + 'static) -> std::io::Result<Prefetcher> {
        let (tx, rx) = sync_channel::<Vec<TreeId>>(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("bmbackup-ahead".into())
            .spawn(move || {
                for id in rx.iter().flatten() {
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    load(id);
                }
            })?;
        Ok(Prefetcher {
            tx: Some(tx),
            stop,
            handle: Some(handle),
        })
    }

    /// Queues `ids` unless the thread is already behind.
    pub fn ask(&self, ids: Vec<TreeId>) {
        if ids.is_empty() {
            return;
        }
        if let Some(tx) = &self.tx {
            match tx.try_send(ids) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => log::debug!("mount: read-ahead thread gone"),
            }
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
