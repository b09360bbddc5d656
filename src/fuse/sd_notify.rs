//! systemd readiness (`Type=notify`): tells the service manager through `$NOTIFY_SOCKET` when
//! the mount answers (`READY=1`), what it shows (`STATUS=`) and that it is stopping
//! (`STOPPING=1`). Outside systemd (no socket) every call does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends one notification (`KEY=VALUE` lines); failures only reach the debug log, as a mount
/// must never fail because its supervisor went away.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let addr = {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
            None => SocketAddr::from_pathname(std::path::Path::new(&path)),
        }
    };
    let sent = addr.and_then(|addr| {
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(state.as_bytes(), &addr)
    });
    if let Err(e) = sent {
        log::debug!("sd_notify {state:?}: {e}");
    }
}

/// The status line systemd shows for the mount.
pub fn status(snapshots: usize, mountpoint: &std::path::Path) -> String {
    format!(
        "STATUS=showing {snapshots} snapshot{} at {}",
        if snapshots == 1 { "" } else { "s" },
        mountpoint.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        // The variable is process-wide: set and read it in this one test only.
        std::env::set_var("NOTIFY_SOCKET", &path);
        notify("READY=1\nSTATUS=x");
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=x");
        assert_eq!(
            status(1, std::path::Path::new("/m")),
            "STATUS=showing 1 snapshot at /m"
        );
    }
}
