//! The FUSE front end, the only code that touches fuser types and errno values: `mount` (this
//! file: options, the daemon, serving until unmounted), the kernel mount itself
//! (`kernel_mount`), the `Filesystem` adapter over the plain `Vfs` (`adapter`), process plumbing
//! (`daemon`), `-o` parsing (`options`), systemd readiness (`sd_notify`) and whether xattrs
//! are answered (`xattrs`).

mod adapter;
mod daemon;
pub mod kernel_mount;
mod options;
mod sd_notify;
mod xattrs;

pub use daemon::{daemonize, Daemon};
pub use options::{parse_options, OptionError, ParsedOptions, XattrMode};

use crate::vfs::{SnapshotSource, SourceError, Vfs, VfsConfig};
use adapter::Fs;
use fuser::{MountOption, Session, SessionACL};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How `bmbackup mount` mounts. `options` are raw `-o` strings; values given there
/// (`allow_other`, `cache_mib=`, `threads=`) win over the fields.
#[derive(Clone, Debug)]
pub struct MountOptions {
    pub allow_other: bool,
    /// Budget for decompressed chunks, MiB; trees get a fixed 16 MiB on top.
    pub cache_mib: usize,
    /// Threads serving kernel requests.
    pub threads: usize,
    pub options: Vec<String>,
    /// What the kernel's mount table shows as the source (the store's path); `-o fsname=`
    /// wins, and "bmbackup" stands in when neither is given.
    pub source: Option<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: false,
            cache_mib: 256,
            threads: 4,
            source: None,
            options: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Options(#[from] OptionError),
    #[error("cannot list the snapshots: {0}")]
    Source(#[from] SourceError),
    #[error("cannot mount on {path}: {source}")]
    Mount { path: PathBuf, source: io::Error },
    #[error("mount of {path} ended with an error: {source}")]
    Session { path: PathBuf, source: io::Error },
    #[error("cannot open the store: {0}")]
    Open(#[from] crate::repo::RepoError),
    #[error(transparent)]
    MountPoint(#[from] kernel_mount::MountPointError),
    #[error("the mount of {0} was taken away from outside (umount, fusermount3 -u); exiting so a supervisor can mount it again")]
    Vanished(PathBuf),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `bmbackup mount STORE MOUNTPOINT`: unless `foreground`, forks first and returns in the
/// parent only once the mount is up (what fstab and `mount.bmbackup` rely on); then opens the
/// repository (after the fork: SQLite must not cross it) and serves until unmounted.
///
/// Call before starting any thread.
pub fn mount_store(
    store: &Path,
    cache_dir: Option<&Path>,
    mountpoint: &Path,
    foreground: bool,
    opts: &MountOptions,
) -> Result<(), MountError> {
    bound_malloc_arenas();
    // The daemon leaves its cwd once ready; relative paths must not depend on it.
    let store = if crate::store::s3::is_s3(store) {
        store.to_path_buf()
    } else {
        std::path::absolute(store)?
    };
    let cache_dir = cache_dir.map(std::path::absolute).transpose()?;
    let mountpoint = std::path::absolute(mountpoint)?;
    let parsed = parse_options(&opts.options)?; // fail in the foreground, before forking
    daemon::clear_stale_mount(&mountpoint)?;
    kernel_mount::check_mount_point(&mountpoint, parsed.nonempty)?;
    let opts = &MountOptions {
        source: Some(
            opts.source
                .clone()
                .unwrap_or_else(|| store.display().to_string()),
        ),
        ..opts.clone()
    };
    let daemon = if foreground { None } else { Some(daemonize()?) };
    let repo = crate::repo::Repository::open(&store, cache_dir.as_deref())?;
    let vfs = Arc::new(Vfs::new(Arc::new(repo), vfs_config(opts)?)?);
    let end = serve(vfs, &mountpoint, opts, move || {
        if let Some(d) = daemon {
            d.ready();
        }
    })?;
    // Under a supervisor (systemd's Type=notify unit sets NOTIFY_SOCKET), a daemon whose mount
    // was taken away must not look like one that was stopped: exiting non-zero lets
    // `Restart=on-failure` mount it again. Started by hand, the admin's own umount is how such a
    // mount is meant to end: a quiet exit 0.
    match end {
        SessionEnd::Stopped => Ok(()),
        SessionEnd::FromOutside if std::env::var_os("NOTIFY_SOCKET").is_some() => {
            Err(MountError::Vanished(mountpoint))
        }
        SessionEnd::FromOutside => Ok(()),
    }
}

/// Why a served mount ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    /// SIGTERM/SIGINT: we unmounted it (or it was no longer ours to unmount).
    Stopped,
    /// Unmounted by someone else (umount, fusermount3 -u) while we served it.
    FromOutside,
}

/// Decoded trees get a fixed budget, not a share of the chunk cache: the daemon's whole
/// footprint besides chunks (trees, nodes, code, allocator) must stay within 64 MiB.
const TREE_CACHE_BYTES: usize = 16 << 20;

fn vfs_config(opts: &MountOptions) -> Result<VfsConfig, MountError> {
    let parsed = parse_options(&opts.options)?;
    let cache_mib = parsed.cache_mib.unwrap_or(opts.cache_mib).max(1);
    Ok(VfsConfig {
        chunk_cache_bytes: cache_mib << 20,
        tree_cache_bytes: TREE_CACHE_BYTES,
        ..VfsConfig::default()
    })
}

/// glibc gives every thread that allocates its own arena (up to 8 per core), each holding on
/// to freed chunk buffers: the daemon's RSS grew with its thread count, well past its caches.
/// Two arenas keep the serving threads from contending on one lock.
fn bound_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before the serving threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Mounts `source` read-only on `mountpoint` and serves it until unmounted (`fusermount3 -u`,
/// `umount`, SIGTERM or SIGINT).
pub fn mount(
    source: Arc<dyn SnapshotSource>,
    mountpoint: &Path,
    opts: &MountOptions,
) -> Result<(), MountError> {
    mount_then(source, mountpoint, opts, || {})
}

/// Like [`mount`], calling `ready` once the mount is visible (e.g. [`Daemon::ready`]).
pub fn mount_then(
    source: Arc<dyn SnapshotSource>,
    mountpoint: &Path,
    opts: &MountOptions,
    ready: impl FnOnce(),
) -> Result<(), MountError> {
    mount_vfs(
        Arc::new(Vfs::new(source, vfs_config(opts)?)?),
        mountpoint,
        opts,
        ready,
    )
}

/// Serves an existing `Vfs` (tests keep a handle on it to watch its node table). Caches are
/// as `vfs` was built; the cache fields of `opts` are not used.
pub fn mount_vfs(
    vfs: Arc<Vfs>,
    mountpoint: &Path,
    opts: &MountOptions,
    ready: impl FnOnce(),
) -> Result<(), MountError> {
    serve(vfs, mountpoint, opts, ready).map(drop)
}

fn serve(
    vfs: Arc<Vfs>,
    mountpoint: &Path,
    opts: &MountOptions,
    ready: impl FnOnce(),
) -> Result<SessionEnd, MountError> {
    let started = Instant::now();
    bound_malloc_arenas();
    let parsed = parse_options(&opts.options)?;
    daemon::clear_stale_mount(mountpoint)?;
    kernel_mount::check_mount_point(mountpoint, parsed.nonempty)?;
    let xattrs = Arc::new(xattrs::XattrPolicy::decide(
        parsed.xattr,
        &vfs.snapshots_with_xattrs(),
        mountpoint,
    ));
    log::info!("mount: {}", xattrs.describe());
    let status_of = mountpoint.to_path_buf();
    let (vfs_seen, xattrs_seen) = (Arc::clone(&vfs), Arc::clone(&xattrs));
    let _refresher = vfs.spawn_refresher(Duration::from_secs(2), move |n| {
        for warning in xattrs_seen.refreshed(&vfs_seen.snapshots_with_xattrs()) {
            log::warn!("{warning}");
        }
        sd_notify::notify(&format!(
            "{}{}",
            sd_notify::status(n, &status_of),
            xattrs_seen.status_note()
        ))
    })?;

    let mut config = fuser::Config::default();
    let source = parsed
        .fsname
        .clone()
        .or_else(|| opts.source.clone())
        .unwrap_or_else(|| "bmbackup".into());
    config.mount_options = vec![
        MountOption::FSName(source.clone()),
        MountOption::Subtype("bmbackup".into()),
        // The kernel checks permissions against the backed-up owners and modes; without this
        // anyone allowed on the mount could read everything.
        MountOption::DefaultPermissions,
        MountOption::RO,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoAtime,
    ];
    if parsed.noexec {
        config.mount_options.push(MountOption::NoExec);
    }
    config.acl = if opts.allow_other || parsed.allow_other {
        SessionACL::All
    } else if parsed.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(parsed.threads.unwrap_or(opts.threads).max(1));
    config.clone_fd = true;

    let path = mountpoint.to_path_buf();
    let mount_err = |source| MountError::Mount {
        path: path.clone(),
        source,
    };
    let vfs_for_status = Arc::clone(&vfs);
    let fs = Fs {
        vfs,
        no_open: false,
        no_xattr: !xattrs.answered,
    };
    let direct = kernel_mount::DirectMount {
        source: &source,
        allow_other: config.acl != SessionACL::Owner,
        noexec: parsed.noexec,
    };
    let acl = config.acl;
    let (mut session, own_dev) =
        match kernel_mount::mount_direct(mountpoint, &direct).map_err(mount_err)? {
            Some(fd) => {
                let dev = kernel_mount::device_of(mountpoint).map_err(mount_err)?;
                // No fuser Mount object: fuser never unmounts this by path (see kernel_mount).
                let session = Session::from_fd(fs, fd, acl, config).map_err(mount_err)?;
                (session, Some(dev))
            }
            None => (
                Session::new(fs, mountpoint, &config).map_err(mount_err)?,
                None,
            ),
        };
    let mut unmounter = session.unmount_callable();
    let mp = path.clone();
    let asked_to_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asked = Arc::clone(&asked_to_stop);
    let _signals = daemon::on_termination(move || {
        asked.store(true, std::sync::atomic::Ordering::SeqCst);
        sd_notify::notify("STOPPING=1");
        log::info!("mount: signal received, unmounting {}", mp.display());
        match own_dev {
            Some(dev) => match kernel_mount::unmount_if_ours(&mp, dev) {
                Ok(true) => {}
                Ok(false) => {
                    // Someone detached our mount (fusermount3 -uz) and the path shows another
                    // mount or none: leave it alone. Our detached mount may still be in use,
                    // so the session would not end by itself.
                    log::info!(
                        "mount: {} no longer shows this daemon's mount; leaving it alone",
                        mp.display()
                    );
                    std::process::exit(0);
                }
                Err(e) => log::error!("mount: cannot unmount {}: {e}", mp.display()),
            },
            None => {
                if let Err(e) = unmounter.unmount() {
                    log::warn!(
                        "mount: unmount of {} failed ({e}); detaching it",
                        mp.display()
                    );
                    if let Err(e) = daemon::lazy_unmount(&mp) {
                        log::error!("mount: {e}");
                    }
                }
            }
        }
    })?;
    log::info!("mount: {} ready in {:?}", path.display(), started.elapsed());
    ready();
    // The kernel queues requests until the session threads below read them, so the mount
    // answers from here on: what units ordered after ours need.
    sd_notify::notify(&format!(
        "READY=1\n{}{}",
        sd_notify::status(vfs_for_status.snapshot_count(), &path),
        xattrs.status_note()
    ));
    session.run().map_err(|source| MountError::Session {
        path: path.clone(),
        source,
    })?;
    if asked_to_stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(SessionEnd::Stopped);
    }
    log::warn!(
        "mount: {} was unmounted from outside (umount or fusermount3 -u)",
        path.display()
    );
    Ok(SessionEnd::FromOutside)
}
