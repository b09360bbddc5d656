//! Prometheus textfile metrics after each backup run (`metrics_dir` in the config).

mod common;
use common::*;
use std::fs;

/// The value of the line `name{labels} value`.
fn value(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn each_run_writes_metrics_and_a_failed_run_keeps_the_last_success() {
    let env = Env::new();
    let dir = env.path("textfile");
    fs::create_dir(&dir).unwrap();
    env.write_config(&format!("metrics_dir = \"{}\"\n", dir.display()));
    let src = env.path("src");
    write(&src.join("a"), &bytes(100_000, 1));
    write(&src.join("b"), b"bb");
    let part = format!("mail/imap={}", src.display());
    env.ok(&["backup", "--part", &part]);
    let prom = dir.join("bmbackup.prom");
    let text = fs::read_to_string(&prom).unwrap();
    let l = "{host=\"10.0.0.5\",part=\"mail/imap\"}";
    let m = |name: &str| value(&text, &format!("{name}{l}"));
    assert_eq!(m("bmbackup_status"), Some(0.0), "{text}");
    assert_eq!(m("bmbackup_snapshot_files"), Some(2.0), "{text}");
    assert_eq!(m("bmbackup_snapshot_bytes"), Some(100_002.0), "{text}");
    assert!(m("bmbackup_bytes_added").unwrap() > 0.0, "{text}");
    assert!(m("bmbackup_last_run_duration_seconds").unwrap() >= 0.0);
    let success = m("bmbackup_last_success_timestamp_seconds").unwrap();
    let snap = &env.snapshots()[0];
    assert_eq!(success, snap["finished_ns"].as_i64().unwrap() as f64 / 1e9);
    let store = value(
        &text,
        &format!(
            "bmbackup_store_size_bytes{{store=\"{}\"}}",
            env.store().display()
        ),
    )
    .unwrap();
    assert_eq!(store, dir_size(&env.store()) as f64, "{text}");
    assert!(text.contains("# TYPE bmbackup_status gauge"));

    // A failed run: status 2, the last success still the earlier snapshot's.
    fs::rename(&src, env.path("moved")).unwrap();
    env.code(&["backup", "--part", &part], 1);
    let text = fs::read_to_string(&prom).unwrap();
    let m = |name: &str| value(&text, &format!("{name}{l}"));
    assert_eq!(m("bmbackup_status"), Some(2.0), "{text}");
    assert_eq!(m("bmbackup_last_success_timestamp_seconds"), Some(success));
    assert_eq!(m("bmbackup_bytes_added"), Some(0.0));
    // Only the file itself in the folder: no temporary file left behind.
    assert_eq!(names(&dir), ["bmbackup.prom"]);
}
