//! Hooks: shell commands run around a backup (a part's `pre`/`post`, and the post-backup hook
//! BlueMind admins know as `/usr/bin/bm-post-full-backup.sh`), and the environment that tells
//! them what happened. Hooks run with `sh -c`, stdin from /dev/null (a hook must never wait for a
//! terminal under systemd) and our stdout/stderr, so their output lands in the same journal.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// BlueMind runs this script after its backups when it exists; so do we, unless configured off.
pub const BLUEMIND_POST_BACKUP_SCRIPT: &str = "/usr/bin/bm-post-full-backup.sh";

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{hook} hook `{command}` could not be started: {source}")]
    Start {
        hook: String,
        command: String,
        source: std::io::Error,
    },
    #[error("{hook} hook `{command}` failed ({status})")]
    Failed {
        hook: String,
        command: String,
        status: ExitStatus,
    },
}

/// Runs `command` with `sh -c` and `env` added to our environment; `hook` names it in errors
/// ("pre hook of part mail/imap").
pub fn run(hook: &str, command: &str, env: &[(String, String)]) -> Result<(), HookError> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    // `backup` ignores SIGPIPE for itself; hooks (pg_dump | gzip …) get the usual default.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
    let status = cmd.status().map_err(|source| HookError::Start {
        hook: hook.to_string(),
        command: command.to_string(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            hook: hook.to_string(),
            command: command.to_string(),
            status,
        })
    }
}

/// The post-backup command: the configured one (an empty string disables it), else BlueMind's
/// script when it exists on this server.
pub fn post_backup_command(configured: Option<&str>) -> Option<String> {
    match configured {
        Some(c) if c.trim().is_empty() => None,
        Some(c) => Some(c.to_string()),
        None if Path::new(BLUEMIND_POST_BACKUP_SCRIPT).exists() => {
            Some(BLUEMIND_POST_BACKUP_SCRIPT.to_string())
        }
        None => None,
    }
}

/// How one part, or a whole run, went. A run is `complete` when every part made a complete
/// snapshot and every hook succeeded, `failed` when no part made a snapshot, else `partial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Complete,
    Partial,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Partial => "partial",
            Status::Failed => "failed",
        }
    }
}

/// What a part's hooks are told about it.
#[derive(Debug, Clone)]
pub struct PartInfo<'a> {
    pub part: &'a str,
    /// The part's source folder, as configured.
    pub path: &'a Path,
    pub host: &'a str,
    pub store: &'a Path,
}

/// Environment of a part's `pre` hook: `BMBACKUP_PART`, `_PATH`, `_HOST`, `_STORE`.
pub fn pre_env(p: &PartInfo<'_>) -> Vec<(String, String)> {
    vec![
        ("BMBACKUP_PART".into(), p.part.to_string()),
        ("BMBACKUP_PATH".into(), p.path.display().to_string()),
        ("BMBACKUP_HOST".into(), p.host.to_string()),
        ("BMBACKUP_STORE".into(), p.store.display().to_string()),
    ]
}

/// Environment of a part's `post` hook: the `pre` variables plus `BMBACKUP_SNAPSHOT_ID` (empty
/// when no snapshot was made) and `BMBACKUP_STATUS` (complete, partial or failed).
pub fn post_env(
    p: &PartInfo<'_>,
    snapshot_id: Option<&str>,
    status: Status,
) -> Vec<(String, String)> {
    let mut env = pre_env(p);
    env.push((
        "BMBACKUP_SNAPSHOT_ID".into(),
        snapshot_id.unwrap_or("").to_string(),
    ));
    env.push(("BMBACKUP_STATUS".into(), status.as_str().to_string()));
    env
}

/// A snapshot made by this run, as the post-backup hook sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewSnapshot {
    pub host: String,
    pub part: String,
    /// Folder name in the mount and in `HOST/PART/DATE` specs, e.g. `2026-11-26_020000`.
    pub date: String,
    /// Full hex id.
    pub id: String,
    /// `complete` or `partial`.
    pub status: String,
}

/// Environment of the post-backup hook: `BMBACKUP_STORE`, `BMBACKUP_STATUS` (of the whole run),
/// `BMBACKUP_SNAPSHOTS` (count), `BMBACKUP_SNAPSHOT_<i>_{HOST,PART,DATE,ID,STATUS}` for i from 1,
/// `BMBACKUP_SNAPSHOTS_JSON` (the same as an array of objects) and `BMBACKUP_FAILED_PARTS`
/// (space-separated names of the parts that made no snapshot).
pub fn post_backup_env(
    store: &Path,
    status: Status,
    snapshots: &[NewSnapshot],
    failed_parts: &[String],
) -> Vec<(String, String)> {
    let mut env = vec![
        ("BMBACKUP_STORE".to_string(), store.display().to_string()),
        ("BMBACKUP_STATUS".to_string(), status.as_str().to_string()),
        (
            "BMBACKUP_SNAPSHOTS".to_string(),
            snapshots.len().to_string(),
        ),
        (
            "BMBACKUP_SNAPSHOTS_JSON".to_string(),
            serde_json::to_string(snapshots).unwrap_or_else(|_| "[]".into()),
        ),
        ("BMBACKUP_FAILED_PARTS".to_string(), failed_parts.join(" ")),
    ];
    for (i, s) in snapshots.iter().enumerate() {
        let n = i + 1;
        for (key, value) in [
            ("HOST", &s.host),
            ("PART", &s.part),
            ("DATE", &s.date),
            ("ID", &s.id),
            ("STATUS", &s.status),
        ] {
            env.push((format!("BMBACKUP_SNAPSHOT_{n}_{key}"), value.clone()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_sees_its_environment_and_no_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let info = PartInfo {
            part: "mail/imap",
            path: Path::new("/var/spool/cyrus"),
            host: "10.0.0.5",
            store: Path::new("/srv/store"),
        };
        let cmd = format!(
            "read line; echo \"read=$? $BMBACKUP_PART $BMBACKUP_STATUS $BMBACKUP_SNAPSHOT_ID\" > {}",
            out.display()
        );
        run("post", &cmd, &post_env(&info, Some("abc"), Status::Partial)).unwrap();
        // `read` fails at end of input: stdin is /dev/null, not our terminal.
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "read=1 mail/imap partial abc\n"
        );
    }

    #[test]
    fn failure_names_the_hook_and_the_command() {
        let e = run("pre hook of part bm/pgsql", "exit 7", &[]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("pre hook of part bm/pgsql") && msg.contains("exit 7"),
            "{msg}"
        );
        assert!(matches!(e, HookError::Failed { status, .. } if status.code() == Some(7)));
    }

    #[test]
    fn post_backup_environment() {
        let snaps = vec![
            NewSnapshot {
                host: "10.0.0.5".into(),
                part: "bm/pgsql".into(),
                date: "2026-11-26_020000".into(),
                id: "aa".into(),
                status: "complete".into(),
            },
            NewSnapshot {
                host: "10.0.0.5".into(),
                part: "mail/imap".into(),
                date: "2026-11-26_020001".into(),
                id: "bb".into(),
                status: "partial".into(),
            },
        ];
        let env = post_backup_env(Path::new("/s"), Status::Partial, &snaps, &["bm/es".into()]);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(get("BMBACKUP_SNAPSHOTS"), "2");
        assert_eq!(get("BMBACKUP_STATUS"), "partial");
        assert_eq!(get("BMBACKUP_SNAPSHOT_2_PART"), "mail/imap");
        assert_eq!(get("BMBACKUP_SNAPSHOT_1_DATE"), "2026-11-26_020000");
        assert_eq!(get("BMBACKUP_FAILED_PARTS"), "bm/es");
        let json: serde_json::Value = serde_json::from_str(get("BMBACKUP_SNAPSHOTS_JSON")).unwrap();
        assert_eq!(json[1]["id"], "bb");
    }

    #[test]
    fn empty_post_backup_hook_disables_the_default() {
        assert_eq!(post_backup_command(Some("")), None);
        assert_eq!(post_backup_command(Some("x")).as_deref(), Some("x"));
    }
}
