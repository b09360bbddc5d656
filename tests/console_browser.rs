//! The console in a real browser: Debian's chromium, driven headless by playwright-core
//! (tests/browser/console.mjs), logs in (a wrong password first), finds last night's snapshot,
//! downloads a file, restores a user through the wizard, starts a backup; this test checks the
//! bytes and files on disk. The screenshots land in docs/screenshots/ (the README shows them).
//! Without chromium or `npm ci --prefix tests/browser` this test fails and says how to install
//! them (`.ci/run` does).

mod common;
use bmbackup::gen::{generate_spool, SpoolSpec};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    let path = std::env::var_os("BMBACKUP_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: install it with `apt-get install -y chromium` (.ci/run does), or set BMBACKUP_CHROMIUM",
        path.display()
    );
    path
}

fn browser_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix tests/browser` (.ci/run does)"
    );
    dir
}

/// Regular files below `dir`, relative, skipping Cyrus' own cyrus.* files and `skip`.
fn mail_files(dir: &Path, skip: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walk(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| p.strip_prefix(dir).unwrap().to_path_buf())
        .filter(|p| skip.is_empty() || !p.to_string_lossy().starts_with(skip))
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("cyrus.")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_console_in_chromium() {
    let (chromium, browser) = (chromium(), browser_dir());
    let env = Env::new();
    let spool = env.path("spool");
    let orig = env.path("orig");
    generate_spool(&spool, &SpoolSpec::demo()).unwrap();
    generate_spool(&orig, &SpoolSpec::demo()).unwrap();
    // write_config sets host = "10.0.0.5".
    let host = "10.0.0.5";
    env.write_config(&format!(
        "[parts.\"mail/imap\"]\npath = \"{}\"\n",
        spool.display()
    ));
    // A week-old snapshot, then last night's.
    env.ok(&["backup", "--simulate-time", "8d"]);
    env.ok(&["backup"]);
    let before = env.snapshots().len();
    let console = env.console();

    let (local, domain) = users(&spool)[2].clone();
    let user = format!("{local}@{domain}");
    let user_dir = Path::new(&domain).join("user").join(&local);
    let file = std::fs::read_dir(spool.join(&user_dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.to_string_lossy().contains("cyrus."))
        .min()
        .unwrap()
        .file_name()
        .unwrap()
        .to_owned();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let download_to = env.path("downloaded");
    let cfg = serde_json::json!({
        "url": console.url(),
        "password": CONSOLE_PASSWORD,
        "chromium": chromium,
        "host": host,
        "part": "mail/imap",
        "dirs": [domain, "user", local],
        "file": file.to_string_lossy(),
        "download_to": download_to,
        "user": user,
        "screenshots": shots,
    });
    let started = std::time::Instant::now();
    let out = Command::new("node")
        .arg(browser.join("console.mjs"))
        .arg(cfg.to_string())
        .output()
        .expect("node is missing: install nodejs (apt-get install -y nodejs npm)");
    let log = std::fs::read_to_string(&console.log).unwrap_or_default();
    assert!(
        out.status.success(),
        "the browser script failed: {}\nconsole log:\n{log}",
        show(&out)
    );
    eprintln!("browser script: {:.1} s", started.elapsed().as_secs_f64());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    eprintln!("{seen:#}");

    // No script error and no Content-Security-Policy violation in the page.
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    // The wrong password was refused and showed nothing.
    assert!(
        seen["refused"].as_str().unwrap().contains("wrong password"),
        "{seen}"
    );
    assert_eq!(seen["nav_hidden_after_refusal"], true);
    assert!(seen["overview"].as_str().unwrap().contains("mail/imap"));
    // The file's bytes, downloaded through the browser, are the source's.
    assert_eq!(
        std::fs::read(&download_to).unwrap(),
        std::fs::read(spool.join(&user_dir).join(&file)).unwrap()
    );
    // Cyrus names messages `N.`; the browser drops the trailing dot from a saved name.
    assert_eq!(
        seen["download_name"],
        file.to_string_lossy().trim_end_matches('.')
    );
    assert!(seen["download_failure"].is_null(), "{seen}");
    assert!(
        seen["download_line"]
            .as_str()
            .unwrap()
            .contains("downloaded"),
        "{seen}"
    );
    assert_eq!(seen["history_rows"], 2);
    assert_eq!(seen["date_options"], 2, "{seen}");
    assert!(
        seen["snapshot_label"]
            .as_str()
            .unwrap()
            .contains("complete"),
        "{seen}"
    );
    // Owners by name where this machine knows the id (the generated spool is root's).
    assert!(
        seen["owner_cell"].as_str().unwrap().contains("root"),
        "{seen}"
    );
    assert_eq!(seen["runs_rows"], 2, "{seen}");
    assert_eq!(seen["check"], "no damage", "{seen}");
    assert_eq!(seen["favicon"], 200);
    // Only dates with a snapshot, newest first; D-7 picks the week-old one.
    let dates = seen["dates"].as_array().unwrap();
    assert_eq!(dates.len(), 2, "{seen}");
    assert_eq!(seen["d7"], dates[1]);
    // The user's mail is back in a new Restored-<date> folder, byte for byte, and the next
    // step (reconstruct) is shown with its copy button.
    assert_eq!(seen["restore"], "complete", "{seen}");
    assert_eq!(seen["restore_progress"], 100.0);
    assert!(
        seen["restore_figures"]
            .as_str()
            .unwrap()
            .ends_with("written"),
        "{seen}"
    );
    assert!(seen["next_commands"]
        .as_str()
        .unwrap()
        .contains("reconstruct"));
    assert_eq!(seen["copy_button"], true);
    let restored: Vec<PathBuf> = std::fs::read_dir(spool.join(&user_dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("Restored-")
        })
        .collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    let want = mail_files(&orig.join(&user_dir), "Restored-");
    let got = mail_files(&restored[0], "");
    assert_eq!(got, want);
    assert!(!want.is_empty());
    for p in &want {
        assert_eq!(
            std::fs::read(restored[0].join(p)).unwrap(),
            std::fs::read(orig.join(&user_dir).join(p)).unwrap(),
            "{}",
            p.display()
        );
    }
    // The backup ran to the end and wrote a snapshot.
    assert_eq!(seen["backup"], "complete", "{seen}");
    assert_eq!(env.snapshots().len(), before + 1);
    // Both were logged with who started them and what.
    assert!(
        log.contains("started a restore") && log.contains(&user),
        "{log}"
    );
    assert!(log.contains("started a backup"), "{log}");
    for shot in ["overview", "browse", "wizard", "runs"] {
        assert!(shots.join(format!("{shot}.png")).metadata().unwrap().len() > 10_000);
    }
}

#[test]
fn a_damaged_download_fails_in_chromium_and_the_page_says_so() {
    let (chromium, browser) = (chromium(), browser_dir());
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("folder")).unwrap();
    std::fs::write(src.join("folder/big"), bytes(6 << 20, 7)).unwrap();
    env.write_config(&format!(
        "[parts.\"files/data\"]\npath = \"{}\"\n",
        src.display()
    ));
    env.ok(&["backup"]);
    let pack = env
        .pack_files()
        .into_iter()
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    flip(&pack, pack.metadata().unwrap().len() / 2);
    let console = env.console();
    let cfg = serde_json::json!({
        "url": console.url(),
        "password": CONSOLE_PASSWORD,
        "chromium": chromium,
        "dirs": ["folder"],
        "file": "big",
    });
    let out = Command::new("node")
        .arg(browser.join("damaged.mjs"))
        .arg(cfg.to_string())
        .output()
        .expect("node is missing: install nodejs (apt-get install -y nodejs npm)");
    assert!(
        out.status.success(),
        "the browser script failed: {}",
        show(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    eprintln!("{seen:#}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["cookies"], 0, "{seen}");
    assert!(
        seen["failure"].is_string(),
        "the browser saved a damaged file as complete: {seen}"
    );
    assert!(
        seen["line"].as_str().unwrap().contains("DOWNLOAD FAILED"),
        "{seen}"
    );
    assert_eq!(seen["second_tab_logged_out"], true);
}
