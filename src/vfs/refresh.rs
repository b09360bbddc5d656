//! Keeping the view current: `last` and the dated folders follow the store by themselves,
//! because a thread re-lists the snapshots every few seconds and swaps the layout when the set
//! of snapshot ids changed.

use super::layout::Layout;
use super::{SourceError, Vfs};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

impl Vfs {
    /// Picks up new and forgotten snapshots; true if the layout changed.
    pub fn refresh(&self) -> Result<bool, SourceError> {
        // The source's own answer is not enough: another process (the backup itself) may have
        // brought a shared catalog up to date already. Compare with what is shown.
        self.source.refresh()?;
        let snapshots = self.source.snapshots()?;
        let mut ids: Vec<_> = snapshots.iter().map(|s| s.id).collect();
        ids.sort();
        if ids == self.layout.read().snapshot_ids() {
            return Ok(false);
        }
        *self.layout.write() = Arc::new(Layout::build(&snapshots));
        Ok(true)
    }

    /// Snapshots shown now.
    pub fn snapshot_count(&self) -> usize {
        self.layout.read().snapshot_ids().len()
    }

    /// Snapshots shown now that have extended attributes or may have (their manifest does not
    /// say), by mount-relative path: what `xattr=auto` decides on.
    pub fn snapshots_with_xattrs(&self) -> Vec<String> {
        self.layout.read().with_xattrs().to_vec()
    }

    /// Calls `refresh` every `every` on a thread until the returned guard is dropped; `changed`
    /// is told the new number of snapshots whenever the list changes.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        every: Duration,
        changed: impl Fn(usize) + Send + 'static,
    ) -> std::io::Result<Refresher> {
        let (stop, rx) = mpsc::channel::<()>();
        let vfs = self.clone();
        let handle = std::thread::Builder::new()
            .name("bmbackup-refresh".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    match vfs.refresh() {
                        Ok(true) => {
                            log::info!("mount: snapshot list changed");
                            changed(vfs.snapshot_count());
                        }
                        Ok(false) => {}
                        Err(e) => log::warn!("mount: cannot refresh the snapshot list: {e}"),
                    }
                }
            })?;
        Ok(Refresher {
            stop: Some(stop),
            handle: Some(handle),
        })
    }
}

/// Stops the refresh thread when dropped.
pub struct Refresher {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Refresher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
