//! What every command taking `--host`/`--part`/`--at` shares: the selection checked against the
//! store (a host or part it does not have is an error listing the HOST/PART pairs it has, the
//! same one `restore` gives), and `--at` applied to the snapshots of several parts, with the
//! errors `restore` gives when no snapshot is that old. A typo thus never passes as an empty
//! answer with exit 0 (a cron job with a misspelt part would silently do nothing forever).

use crate::config::Config;
use crate::model::Snapshot;
use crate::restore::when::{check_selection, pick_at, When, WhenError};

/// Fails unless the store has snapshots of `host` and each of `parts` (any host or part when not
/// given). A part the config file lists for this host, not backed up yet, is not a typo: it
/// passes and the command reports it has no snapshot.
pub fn check(
    all: &[Snapshot],
    host: Option<&str>,
    parts: &[&str],
    config: &Config,
) -> Result<(), WhenError> {
    let configured = |p: &str| {
        config.parts.keys().any(|k| k.trim_matches('/') == p)
            && host.is_none_or(|h| config.host.as_deref().is_none_or(|c| c == h))
    };
    if parts.is_empty() {
        return check_selection(all, host, None);
    }
    for part in parts {
        let part = part.trim_matches('/');
        if !configured(part) {
            check_selection(all, host, Some(part))?;
        }
    }
    Ok(())
}

/// For each host and part of `chosen` (sorted by host, part and time, as the catalog lists
/// them), the snapshot `at` selects, as `restore --at` would. A part with no snapshot that old is
/// left out (it did not exist yet), unless that leaves nothing: then the error is the one
/// `restore` gives (the oldest snapshots, or the names of that second), for the single part
/// searched or the first of several.
pub fn pick_each<'a>(
    chosen: Vec<(&'a Snapshot, String)>,
    at: &When,
) -> Result<Vec<(&'a Snapshot, String)>, WhenError> {
    let mut picked = Vec::new();
    let mut first_error = None;
    for group in chosen.chunk_by(|x, y| {
        x.0.manifest.host == y.0.manifest.host && x.0.manifest.part == y.0.manifest.part
    }) {
        let refs: Vec<&Snapshot> = group.iter().map(|(s, _)| *s).collect();
        let what = format!("{}/{}", refs[0].manifest.host, refs[0].manifest.part);
        match pick_at(&refs, at, &what) {
            Ok(s) => picked.extend(group.iter().filter(|(g, _)| g.id == s.id).cloned()),
            Err(e) => {
                log::info!("{e}");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if picked.is_empty() => Err(e),
        _ => Ok(picked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{SnapshotId, TreeId};
    use crate::model::Manifest;

    fn snap(host: &str, part: &str, ns: i64) -> Snapshot {
        Snapshot {
            id: SnapshotId::of(format!("{host}{part}{ns}").as_bytes()),
            root: TreeId::of(b""),
            manifest: Manifest::sample(host, part, ns, true),
        }
    }

    #[test]
    fn a_typo_names_what_exists_and_a_configured_part_passes() {
        let all = [snap("h", "mail/imap", 10), snap("h", "pg", 10)];
        let mut config = Config::default();
        assert!(check(&all, Some("h"), &["mail/imap"], &config).is_ok());
        assert!(check(&all, None, &["/pg/"], &config).is_ok());
        let e = check(&all, Some("h"), &["mail/imapp"], &config)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("h/mail/imapp") && e.contains("h/mail/imap, h/pg"),
            "{e}"
        );
        let e = check(&all, Some("x"), &[], &config)
            .unwrap_err()
            .to_string();
        assert!(e.contains("host x"), "{e}");
        config.parts.insert(
            "mail/archive".into(),
            toml::from_str("path = \"/a\"").unwrap(),
        );
        assert!(check(&all, None, &["mail/archive"], &config).is_ok());
    }

    #[test]
    fn at_leaves_out_younger_parts_unless_nothing_is_left() {
        let all = [snap("h", "a", 10), snap("h", "b", 30)];
        let named = crate::repo::named_snapshots(&all);
        let got = pick_each(named.clone(), &When::instant(20)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.manifest.part, "a");
        let e = pick_each(named, &When::instant(5)).unwrap_err();
        assert!(e.to_string().contains("oldest are"), "{e}");
    }
}
