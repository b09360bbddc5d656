//! `xattr=auto`, the default: whether the mount answers extended-attribute requests, decided
//! once at mount time from what the snapshots' manifests record, and the warning when a later
//! backup adds a snapshot with xattrs to a mount that answers none. The "none" answer (ENOSYS)
//! is remembered by the kernel until the filesystem is unmounted, so only a remount shows them.

use super::options::XattrMode;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The mount's xattr answer and what it has told the admin about it.
pub(super) struct XattrPolicy {
    /// Requests are answered from the snapshots; false: ENOSYS for the mount's whole life.
    pub(super) answered: bool,
    mode: XattrMode,
    mountpoint: PathBuf,
    /// Snapshots with xattrs that this (auto-off) mount hides, each warned about once.
    hidden: Mutex<BTreeSet<String>>,
}

impl XattrPolicy {
    /// `with_xattrs`: the snapshots shown at mount time that have xattrs or may have (their
    /// manifest does not say), as [`crate::vfs::Vfs::snapshots_with_xattrs`] lists them.
    pub(super) fn decide(mode: XattrMode, with_xattrs: &[String], mountpoint: &Path) -> Self {
        let answered = match mode {
            XattrMode::On => true,
            XattrMode::Off => false,
            XattrMode::Auto => !with_xattrs.is_empty(),
        };
        XattrPolicy {
            answered,
            mode,
            mountpoint: mountpoint.to_path_buf(),
            hidden: Mutex::new(BTreeSet::new()),
        }
    }

    /// What the mount log says about the choice.
    pub(super) fn describe(&self) -> String {
        match (self.mode, self.answered) {
            (XattrMode::Auto, false) => "no snapshot has extended attributes: xattr requests answer \"not supported\" for the whole mount (xattr=auto; remount after a backup that records some)".into(),
            (XattrMode::Auto, true) => "some snapshots have (or may have) extended attributes: shown (xattr=auto)".into(),
            (XattrMode::On, _) => "extended attributes shown (-o xattr)".into(),
            (XattrMode::Off, _) => "extended attributes not shown (-o noxattr)".into(),
        }
    }

    /// After the snapshot list changed: the warnings due, one per snapshot with xattrs that
    /// this mount hides because `xattr=auto` turned them off and that was not named before.
    pub(super) fn refreshed(&self, with_xattrs: &[String]) -> Vec<String> {
        if self.answered || self.mode != XattrMode::Auto {
            return Vec::new();
        }
        let mut hidden = self.hidden.lock();
        // A forgotten snapshot no longer counts; one seen again later is named again.
        hidden.retain(|s| with_xattrs.contains(s));
        let mp = self.mountpoint.display();
        with_xattrs
            .iter()
            .filter(|s| hidden.insert((*s).clone()))
            .map(|s| {
                format!(
                    "mount: snapshot {s} has extended attributes, which this mount does not show: \
                     it was mounted when no snapshot had any (xattr=auto), and the kernel keeps \
                     that answer until unmounted. Remount to see them: `systemctl restart \
                     bmbackup-mount` (or `fusermount3 -u {mp}` and mount again); `-o xattr` \
                     always shows them"
                )
            })
            .collect()
    }

    /// Appended to the systemd STATUS= line.
    pub(super) fn status_note(&self) -> String {
        if self.answered {
            return String::new();
        }
        let hidden = self.hidden.lock().len();
        match (self.mode, hidden) {
            (XattrMode::Auto, 0) => "; xattrs off (none stored)".into(),
            (XattrMode::Auto, n) => format!(
                "; {n} snapshot{} with xattrs not shown until remount",
                if n == 1 { "" } else { "s" }
            ),
            _ => "; xattrs off (-o noxattr)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn auto_is_off_only_when_no_snapshot_may_have_xattrs() {
        let mp = Path::new("/m");
        let some = names(&["h/p/2026-11-30_020000"]);
        assert!(!XattrPolicy::decide(XattrMode::Auto, &[], mp).answered);
        assert!(XattrPolicy::decide(XattrMode::Auto, &some, mp).answered);
        assert!(XattrPolicy::decide(XattrMode::On, &[], mp).answered);
        assert!(!XattrPolicy::decide(XattrMode::Off, &some, mp).answered);
    }

    #[test]
    fn a_hidden_snapshot_is_named_once() {
        let p = XattrPolicy::decide(XattrMode::Auto, &[], Path::new("/m"));
        assert_eq!(p.status_note(), "; xattrs off (none stored)");
        assert!(p.refreshed(&[]).is_empty());
        let one = names(&["h/p/2026-11-30_020000"]);
        let w = p.refreshed(&one);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("h/p/2026-11-30_020000") && w[0].contains("systemctl restart"));
        assert!(p.refreshed(&one).is_empty(), "warned once");
        assert_eq!(
            p.status_note(),
            "; 1 snapshot with xattrs not shown until remount"
        );
        let two = names(&["h/p/2026-11-30_020000", "h/q/2026-11-30_030000"]);
        assert_eq!(p.refreshed(&two).len(), 1);
        // Mounts that show xattrs, or were told not to, have nothing to warn about.
        for mode in [XattrMode::On, XattrMode::Off] {
            assert!(XattrPolicy::decide(mode, &[], Path::new("/m"))
                .refreshed(&two)
                .is_empty());
        }
        let on = XattrPolicy::decide(XattrMode::Auto, &one, Path::new("/m"));
        assert!(on.refreshed(&two).is_empty());
        assert_eq!(on.status_note(), "");
    }
}
