//! Tests of the spool generator and the daily churn: determinism of bytes and metadata, preset
//! sizes, and the fractions a simulated day changes.

use super::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A hash of every name, kind, mode, size, mtime (ns) and content under `root` (root excluded).
fn fingerprint(root: &Path) -> Result<(blake3::Hash, u64), Box<dyn std::error::Error>> {
    fn walk(dir: &Path, rel: &Path, h: &mut blake3::Hasher, n: &mut u64) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let m = std::fs::symlink_metadata(e.path())?;
            let rel = rel.join(e.file_name());
            h.update(rel.as_os_str().as_bytes());
            for v in [
                u64::from(m.mode()),
                m.size(),
                m.mtime() as u64,
                m.mtime_nsec() as u64,
            ] {
                h.update(&v.to_le_bytes());
            }
            if m.is_dir() {
                walk(&e.path(), &rel, h, n)?;
            } else {
                *n += 1;
                h.update(&std::fs::read(e.path())?);
            }
        }
        Ok(())
    }
    let mut h = blake3::Hasher::new();
    let mut n = 0;
    walk(root, Path::new(""), &mut h, &mut n)?;
    Ok((h.finalize(), n))
}

fn count_messages(root: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.flatten()
            .map(|e| {
                let name = e.file_name();
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    u64::from(
                        name.as_bytes().ends_with(b".") && name.as_bytes()[0].is_ascii_digit(),
                    )
                }
            })
            .sum()
    }
    walk(root)
}

#[test]
fn same_seed_same_spool_other_seed_other_spool() -> TestResult {
    let dir = tempfile::tempdir()?;
    let spec = SpoolSpec::demo();
    let a = generate_spool(&dir.path().join("a"), &spec)?;
    let b = generate_spool(&dir.path().join("b"), &spec)?;
    assert_eq!(a, b);
    let fa = fingerprint(&dir.path().join("a"))?;
    assert_eq!(fa, fingerprint(&dir.path().join("b"))?);
    assert_eq!(fa.1, a.files);
    let other = SpoolSpec { seed: 99, ..spec };
    generate_spool(&dir.path().join("c"), &other)?;
    assert_ne!(fa.0, fingerprint(&dir.path().join("c"))?.0);
    // A non-empty root is refused rather than mixed with old data.
    assert!(matches!(
        generate_spool(&dir.path().join("a"), &spec),
        Err(GenError::NotEmpty { .. })
    ));
    Ok(())
}

#[test]
fn demo_preset_has_the_documented_shape() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("spool");
    let t = Instant::now();
    let s = generate_spool(&root, &SpoolSpec::demo())?;
    let elapsed = t.elapsed();
    assert_eq!(s.users, 10);
    assert!((400..=650).contains(&s.files), "{s:?}");
    assert!((1 << 20..=12 << 20).contains(&s.bytes), "{s:?}");
    assert!(elapsed.as_secs() < 10, "took {elapsed:?}"); // < 1 s in release; debug is slower
    assert_eq!(count_messages(&root), s.message_files);
    // About 20% of messages go to several mailboxes.
    let shared = s.shared_messages as f64 / s.messages as f64;
    assert!((0.1..0.3).contains(&shared), "{s:?}");
    assert!(s.unique_message_bytes < s.bytes);
    // The layout a per-user restore relies on.
    let user = root.join("bluemind.test/user");
    let first = std::fs::read_dir(&user)?
        .flatten()
        .next()
        .ok_or("no user")?
        .path();
    for f in [
        "cyrus.header",
        "cyrus.index",
        "cyrus.cache",
        "Sent/cyrus.index",
        "Archive/cyrus.cache",
    ] {
        assert!(first.join(f).is_file(), "{f} missing in {first:?}");
    }
    let msg = std::fs::read_dir(&first)?
        .flatten()
        .find(|e| e.file_name().as_bytes().ends_with(b"."))
        .ok_or("no message in INBOX")?;
    let text = std::fs::read(msg.path())?;
    assert!(text.starts_with(b"Return-Path: <"));
    assert_eq!(msg.metadata()?.mode() & 0o7777, 0o600);
    Ok(())
}

#[test]
fn a_day_changes_the_expected_fractions_deterministically() -> TestResult {
    let dir = tempfile::tempdir()?;
    let spec = SpoolSpec {
        messages_per_user: 200,
        ..SpoolSpec::demo()
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let s = generate_spool(&a, &spec)?;
    generate_spool(&b, &spec)?;
    let before = fingerprint(&a)?;
    let d = simulate_day(&a, 7, 1)?;
    assert_eq!(d, simulate_day(&b, 7, 1)?);
    assert_eq!(fingerprint(&a)?, fingerprint(&b)?);
    assert_ne!(fingerprint(&a)?.0, before.0);
    let n = s.message_files;
    assert_eq!(d.messages_before, n);
    assert!(
        d.new_files >= n / 100 && d.new_files <= n / 100 + 4,
        "{d:?}"
    );
    assert_eq!(d.deleted, (n as f64 * 0.003).round() as u64);
    assert_eq!(d.moved, (n as f64 * 0.002).round() as u64);
    assert_eq!(count_messages(&a), n + d.new_files - d.deleted);
    assert!(d.touched_folders > 0 && d.touched_folders < s.folders);
    // Days compose: day 2 after day 1 works on the result (indexes and caches stay readable).
    let d2 = simulate_day(&a, 7, 2)?;
    assert_eq!(d2.messages_before, n + d.new_files - d.deleted);
    // Another seed gives another day.
    simulate_day(&b, 8, 1)?;
    assert_ne!(fingerprint(&a)?.0, fingerprint(&b)?.0);
    Ok(())
}

/// Sizes and timings of the presets: `cargo test --release --lib preset_report -- --ignored --nocapture`.
#[test]
#[ignore]
fn preset_report() -> TestResult {
    let dir = tempfile::tempdir()?;
    for (name, spec) in [
        ("demo", SpoolSpec::demo()),
        ("quick", SpoolSpec::quick()),
        ("full", SpoolSpec::full()),
    ] {
        let root = dir.path().join(name);
        let t = Instant::now();
        let s = generate_spool(&root, &spec)?;
        let gen = t.elapsed();
        let t = Instant::now();
        let d = simulate_day(&root, 1, 1)?;
        println!(
            "{name}: {} files, {} MiB ({} MiB unique messages), {} messages, {} shared, generated in {gen:.2?}; day 1: {d:?} in {:.2?}",
            s.files,
            s.bytes >> 20,
            s.unique_message_bytes >> 20,
            s.messages,
            s.shared_messages,
            t.elapsed()
        );
        std::fs::remove_dir_all(&root)?;
    }
    Ok(())
}

/// The demo spool is pinned: if this fails, generated data changed for everyone (benchmarks,
/// stored test expectations). Change the pins only on purpose, and say so in the commit.
#[test]
fn demo_spool_is_pinned() -> TestResult {
    let dir = tempfile::tempdir()?;
    let s = generate_spool(dir.path(), &SpoolSpec::demo())?;
    let (hash, files) = fingerprint(dir.path())?;
    assert_eq!(
        (s.files, s.messages, s.message_files, s.bytes),
        PINNED_DEMO_COUNTS
    );
    assert_eq!(files, s.files);
    assert_eq!(hash.to_hex().as_str(), PINNED_DEMO_HASH);
    Ok(())
}
// (files, messages, message files, bytes) and the fingerprint of names, modes, sizes, mtimes, content.
const PINNED_DEMO_COUNTS: (u64, u64, u64, u64) = (540, 333, 450, 4_005_420);
const PINNED_DEMO_HASH: &str = "ba345c3569c05a0ba5b94a17c834ebef18e2c50a1490b46b940a7e66195b8b37";

#[test]
fn bad_specs_are_refused_before_touching_the_disk() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("never");
    for spec in [
        SpoolSpec {
            users: 0,
            ..SpoolSpec::demo()
        },
        SpoolSpec {
            domains: 11,
            ..SpoolSpec::demo()
        },
        SpoolSpec {
            shared_ratio: 1.5,
            ..SpoolSpec::demo()
        },
        SpoolSpec {
            max_attachment_size: 10,
            ..SpoolSpec::demo()
        },
    ] {
        assert!(
            matches!(generate_spool(&root, &spec), Err(GenError::InvalidSpec(_))),
            "{spec:?}"
        );
    }
    assert!(!root.exists());
    // A day on something that is not a spool is an error naming the file, not a panic.
    std::fs::create_dir_all(dir.path().join("d/user/u"))?;
    std::fs::write(dir.path().join("d/user/u/cyrus.index"), b"garbage")?;
    let err = simulate_day(dir.path(), 1, 1)
        .err()
        .ok_or("accepted garbage")?;
    assert!(err.to_string().contains("cyrus.index"), "{err}");
    Ok(())
}
