//! Prometheus metrics of a backup run for node_exporter's textfile collector: one file,
//! `bmbackup.prom`, in the configured `metrics_dir`, replaced atomically after every run so the
//! collector never reads half of it. The figures come from this run and from the store (the
//! last success of a part survives a failed run because it is the newest complete snapshot's),
//! so an admin's alerting sees a missed or failing backup:
//! `time() - bmbackup_last_success_timestamp_seconds > 26*3600`.

use crate::model::{Snapshot, SnapshotStatus};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

pub const FILE_NAME: &str = "bmbackup.prom";

/// How one part of the run went, as the metrics tell it.
#[derive(Debug, Clone)]
pub struct PartRun {
    pub part: String,
    /// None when no snapshot was written (a failed part or hook).
    pub status: Option<SnapshotStatus>,
    pub seconds: f64,
    pub bytes_added: u64,
}

/// The value of `bmbackup_status`: 0 complete, 1 partial, 2 failed.
fn status_value(s: Option<SnapshotStatus>) -> u8 {
    match s {
        Some(SnapshotStatus::Complete) => 0,
        Some(SnapshotStatus::Partial) => 1,
        None => 2,
    }
}

/// A label value with `\`, `"` and newlines escaped as the exposition format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text of the metrics file for `host`'s `parts` at `now_ns`, given every snapshot of the
/// store and its size on disk.
pub fn render(
    host: &str,
    parts: &[PartRun],
    snapshots: &[Snapshot],
    store: &Path,
    store_bytes: u64,
    now_ns: i64,
) -> String {
    let secs = |ns: i64| ns as f64 / 1e9;
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let of_part = |part: &str| -> Vec<&Snapshot> {
        snapshots
            .iter()
            .filter(|s| s.manifest.host == host && s.manifest.part == part)
            .collect()
    };
    let labels = |part: &str| format!("host=\"{}\",part=\"{}\"", label(host), label(part));
    let each = |f: &dyn Fn(&PartRun) -> Option<String>| {
        parts
            .iter()
            .filter_map(|p| f(p).map(|v| (labels(&p.part), v)))
            .collect::<Vec<_>>()
    };
    metric(
        "bmbackup_last_success_timestamp_seconds",
        "When the newest complete snapshot of the part finished (Unix time).",
        each(&|p| {
            of_part(&p.part)
                .into_iter()
                .filter(|s| s.manifest.status == SnapshotStatus::Complete)
                .map(|s| s.manifest.finished_ns)
                .max()
                .map(|ns| format!("{}", secs(ns)))
        }),
    );
    metric(
        "bmbackup_last_run_timestamp_seconds",
        "When the last backup run of the part ended (Unix time), whatever its status.",
        each(&|_| Some(format!("{}", secs(now_ns)))),
    );
    metric(
        "bmbackup_last_run_duration_seconds",
        "How long the last backup of the part took.",
        each(&|p| Some(format!("{:.3}", p.seconds))),
    );
    metric(
        "bmbackup_status",
        "Outcome of the last backup of the part: 0 complete, 1 partial (some files not backed up), 2 failed.",
        each(&|p| Some(status_value(p.status).to_string())),
    );
    let newest = |p: &PartRun| {
        of_part(&p.part)
            .into_iter()
            .max_by_key(|s| s.manifest.started_ns)
    };
    metric(
        "bmbackup_snapshot_files",
        "Regular files in the newest snapshot of the part.",
        each(&|p| newest(p).map(|s| s.manifest.files.to_string())),
    );
    metric(
        "bmbackup_snapshot_bytes",
        "Size of the files in the newest snapshot of the part.",
        each(&|p| newest(p).map(|s| s.manifest.bytes.to_string())),
    );
    metric(
        "bmbackup_bytes_added",
        "New data the last backup of the part added to the store (compressed).",
        each(&|p| Some(p.bytes_added.to_string())),
    );
    metric(
        "bmbackup_store_size_bytes",
        "Size of the store on disk.",
        vec![(
            format!("store=\"{}\"", label(&store.display().to_string())),
            store_bytes.to_string(),
        )],
    );
    out
}

/// The run's traffic with a store on S3 (nothing for a local store): requests per operation,
/// bytes each way, retries, failed requests and time spent waiting for replies, as counters
/// of this run (the file is rewritten after every run).
pub fn render_s3(store: &Path, t: &crate::store::s3http::Totals) -> String {
    if t.request_count() == 0 {
        return String::new();
    }
    let store = format!("store=\"{}\"", label(&store.display().to_string()));
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    metric(
        "bmbackup_s3_requests",
        "Requests the last run sent to S3, by operation (retries included).",
        crate::store::s3http::Totals::OPS
            .iter()
            .zip(t.requests)
            .map(|(op, n)| (format!("{store},op=\"{op}\""), n.to_string()))
            .collect(),
    );
    let one = |v: String| vec![(store.clone(), v)];
    metric(
        "bmbackup_s3_bytes_uploaded",
        "Request bodies the last run sent to S3.",
        one(t.bytes_up.to_string()),
    );
    metric(
        "bmbackup_s3_bytes_downloaded",
        "Reply bodies the last run received from S3 (egress).",
        one(t.bytes_down.to_string()),
    );
    metric(
        "bmbackup_s3_retries",
        "Requests the last run sent again after a transient failure.",
        one(t.retries.to_string()),
    );
    metric(
        "bmbackup_s3_failed_requests",
        "Requests of the last run that failed for good.",
        one(t.failures.to_string()),
    );
    metric(
        "bmbackup_s3_request_seconds",
        "Time the last run waited for S3 replies, summed over requests.",
        one(format!("{:.3}", t.latency.as_secs_f64())),
    );
    metric(
        "bmbackup_s3_request_max_seconds",
        "The slowest S3 request of the process.",
        one(format!("{:.3}", t.latency_max.as_secs_f64())),
    );
    out
}

/// Bytes of the files below `dir` (the store's size on disk, without following links).
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

/// Replaces `dir/bmbackup.prom` with `text`: written to a temporary file in the same folder,
/// synced, then renamed over the old one.
pub fn write_atomically(dir: &Path, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        // The collector runs as another user: the file must be readable.
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        std::fs::rename(&tmp, dir.join(FILE_NAME))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
    }

    #[test]
    fn a_failed_part_keeps_its_last_success_and_says_failed() {
        let text = render(
            "10.0.0.1",
            &[PartRun {
                part: "mail/imap".into(),
                status: None,
                seconds: 1.5,
                bytes_added: 0,
            }],
            &[],
            Path::new("/srv/store"),
            42,
            2_000_000_000_000_000_000,
        );
        assert!(text.contains("bmbackup_status{host=\"10.0.0.1\",part=\"mail/imap\"} 2\n"));
        // No complete snapshot: no success time rather than a made-up one.
        assert!(!text.contains("bmbackup_last_success_timestamp_seconds{"));
        assert!(text.contains("bmbackup_store_size_bytes{store=\"/srv/store\"} 42\n"));
    }

    #[test]
    fn s3_traffic_is_rendered_only_for_s3() {
        let none = crate::store::s3http::Totals::default();
        assert_eq!(render_s3(Path::new("/srv/store"), &none), "");
        let t = crate::store::s3http::Totals {
            requests: [3, 8, 1, 2, 0],
            retries: 1,
            bytes_up: 1000,
            bytes_down: 20,
            latency: std::time::Duration::from_millis(1500),
            ..none
        };
        let text = render_s3(Path::new("s3://b/p"), &t);
        assert!(
            text.contains("bmbackup_s3_requests{store=\"s3://b/p\",op=\"PUT\"} 8\n"),
            "{text}"
        );
        assert!(text.contains("bmbackup_s3_bytes_uploaded{store=\"s3://b/p\"} 1000\n"));
        assert!(text.contains("bmbackup_s3_retries{store=\"s3://b/p\"} 1\n"));
        assert!(text.contains("bmbackup_s3_request_seconds{store=\"s3://b/p\"} 1.500\n"));
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "a 1\n").unwrap();
        write_atomically(dir.path(), "b 2\n").unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "b 2\n"
        );
    }
}
