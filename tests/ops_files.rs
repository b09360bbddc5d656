//! Checks the operations files that are not Rust: the mount(8) helper, the systemd units, the
//! Makefile's install target and the example configuration. Each runs the real tool (sh, make,
//! systemd-analyze) and is skipped, loudly, only when that tool is missing.

mod common;

use common::{show, walk, BIN};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helper() -> PathBuf {
    repo().join("mount-helpers/mount.bmbackup")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn write_script(path: &Path, body: &str) {
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn systemd_units_pass_verify() {
    if !have("systemd-analyze") {
        eprintln!("SKIPPED: systemd-analyze not installed");
        return;
    }
    let out = Command::new(repo().join("systemd/verify"))
        .output()
        .unwrap();
    eprintln!("{}", show(&out));
    assert!(
        out.status.success(),
        "systemd/verify failed:\n{}",
        show(&out)
    );
}

#[test]
fn helper_is_valid_sh() {
    let out = Command::new("sh").arg("-n").arg(helper()).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let mode = fs::metadata(helper()).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "the helper must be executable in git");
}

/// Runs the helper (under `invoked_as`, for the fuse.bmbackup symlink) with a fake bmbackup that
/// records its arguments; returns the exit code and the arguments, None when it was not run.
fn run_helper(dir: &Path, invoked_as: &Path, args: &[&str]) -> (i32, Option<Vec<String>>) {
    let record = dir.join("args");
    let _ = fs::remove_file(&record);
    let fake = dir.join("fake-bmbackup");
    write_script(
        &fake,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
            record.display()
        ),
    );
    let out = Command::new("sh")
        .arg(invoked_as)
        .args(args)
        .env("BMBACKUP_BIN", &fake)
        .output()
        .unwrap();
    let recorded = fs::read_to_string(&record)
        .ok()
        .map(|s| s.lines().map(str::to_string).collect());
    (out.status.code().unwrap_or(-1), recorded)
}

#[test]
fn helper_filters_options_and_execs_bmbackup_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let fuse_link = tmp.path().join("mount.fuse.bmbackup");
    std::os::unix::fs::symlink(helper(), &fuse_link).unwrap();
    let mount = |opts: &str| -> Vec<String> {
        let mut v = vec!["mount", "/srv/store", "/mnt/x"];
        if !opts.is_empty() {
            v.extend(["-o", opts]);
        }
        v.into_iter().map(str::to_string).collect()
    };
    // (case, helper arguments, what the fake bmbackup receives: None when it is not run)
    type Case<'a> = (&'a str, Vec<&'a str>, Option<Vec<String>>);
    let table: Vec<Case> = vec![
        (
            "fstab options: noauto and _netdev are mount(8)'s",
            vec![
                "/srv/store",
                "/mnt/x",
                "-o",
                "ro,allow_other,_netdev,noauto",
            ],
            Some(mount("ro,allow_other")),
        ),
        (
            "what mount passes for defaults, options first",
            vec![
                "-o",
                "rw,nosuid,nodev,relatime,x-systemd.automount,comment=a*,nofail,cache_mib=64",
                "/srv/store",
                "/mnt/x",
            ],
            Some(mount("cache_mib=64")),
        ),
        (
            "-n -v combined, nothing left to pass",
            vec![
                "/srv/store",
                "/mnt/x",
                "-nv",
                "-o",
                "rw,default_permissions",
            ],
            Some(mount("")),
        ),
        (
            "no options at all",
            vec!["/srv/store", "/mnt/x"],
            Some(mount("")),
        ),
        (
            "unknown options reach bmbackup, which reports them",
            vec!["/srv/store", "/mnt/x", "-o", "ro,cachemib=64"],
            Some(mount("ro,cachemib=64")),
        ),
        (
            "sloppy drops unknown options",
            vec!["/srv/store", "/mnt/x", "-s", "-o", "ro,cachemib=64"],
            Some(mount("ro")),
        ),
        (
            "-t and the legacy bmbackup# spec",
            vec![
                "bmbackup#/srv/store",
                "/mnt/x",
                "-t",
                "fuse.bmbackup",
                "-oallow_other",
            ],
            Some(mount("allow_other")),
        ),
        (
            "fake mount does nothing",
            vec!["/srv/store", "/mnt/x", "-f", "-o", "ro"],
            None,
        ),
    ];
    for (name, args, want) in table {
        for invoked_as in [helper(), fuse_link.clone()] {
            let (code, got) = run_helper(tmp.path(), &invoked_as, &args);
            assert_eq!(code, 0, "{name} via {}", invoked_as.display());
            assert_eq!(got, want, "{name} via {}", invoked_as.display());
        }
    }
    for bad in [
        vec!["/srv/store"],
        vec!["/srv/store", "/mnt/x", "extra"],
        vec!["/srv/store", "/mnt/x", "-o"],
        vec!["/srv/store", "/mnt/x", "-q"],
    ] {
        let (code, got) = run_helper(tmp.path(), &helper(), &bad);
        assert_eq!((code, got), (1, None), "{bad:?}");
    }
}

#[test]
fn helper_without_binary_fails_clearly() {
    let out = Command::new("sh")
        .arg(helper())
        .args(["/srv/store", "/mnt/x"])
        .env("BMBACKUP_BIN", "/nonexistent/bmbackup")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bmbackup"));
}

#[test]
fn make_install_and_uninstall_respect_destdir_and_prefix() {
    if !have("make") {
        eprintln!("SKIPPED: make not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("root");
    // The real binary: install strips it and runs it to write the man pages and completions.
    let bin = Path::new(BIN);
    let make = |target: &str| {
        let out = Command::new("make")
            .current_dir(repo())
            .arg("-s")
            .arg(target)
            .arg(format!("DESTDIR={}", dest.display()))
            .arg(format!("BIN={}", bin.display()))
            .arg("PREFIX=/usr")
            .output()
            .unwrap();
        assert!(out.status.success(), "make {target}:\n{}", show(&out));
    };
    make("install");
    // Without DESTDIR (a real install; only shown here with -n) the hint starts with init.
    let dry = Command::new("make")
        .current_dir(repo())
        .args(["-n", "install", "BIN=/bin/true"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("Next: bmbackup init"),
        "{}",
        show(&dry)
    );

    let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o777;
    let text = |p: &str| fs::read_to_string(dest.join(p)).unwrap();
    assert_eq!(mode("usr/bin/bmbackup"), 0o755);
    // Stripped: smaller than the binary it came from, and without a symbol table.
    let installed = fs::read(dest.join("usr/bin/bmbackup")).unwrap();
    assert!(installed.len() < fs::metadata(bin).unwrap().len() as usize);
    assert!(!installed.windows(8).any(|w| w == b".symtab\0"));
    let out = Command::new(dest.join("usr/bin/bmbackup"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("bmbackup "));
    // Man pages for the command and each subcommand; completions for bash and zsh.
    for page in [
        "bmbackup",
        "bmbackup-backup",
        "bmbackup-restore",
        "bmbackup-diff",
    ] {
        let man = text(&format!("usr/share/man/man1/{page}.1"));
        assert!(
            man.starts_with(".ie") || man.contains(".TH "),
            "{page}: {man}"
        );
    }
    assert!(!dest.join("usr/share/man/man1/bmbackup-docs.1").exists());
    // The sections issue 25 asked for, and no SEE ALSO entry without its page.
    let main = text("usr/share/man/man1/bmbackup.1");
    for section in [
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            main.contains(&format!(".SH {section}"))
                || main.contains(&format!(".SH \"{section}\"")),
            "{section}"
        );
    }
    assert!(text("usr/share/man/man5/bmbackup.toml.5").contains("metrics_dir"));
    for page in fs::read_dir(dest.join("usr/share/man/man1")).unwrap() {
        let page = page.unwrap().path();
        let man = fs::read_to_string(&page)
            .unwrap()
            .replace("\\-", "-")
            .replace("\\fB", "")
            .replace("\\fR", "");
        for (i, _) in man.match_indices("(1)").chain(man.match_indices("(5)")) {
            let start = man[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                .map_or(0, |p| p + 1);
            let (name, section) = (&man[start..i], &man[i + 1..i + 2]);
            let target = dest.join(format!("usr/share/man/man{section}/{name}.{section}"));
            assert!(
                target.exists(),
                "{}: {name}({section}) has no page",
                page.display()
            );
        }
    }
    assert!(text("usr/share/fish/vendor_completions.d/bmbackup.fish").contains("restore-user"));
    assert!(text("usr/share/bash-completion/completions/bmbackup").contains("restore-user"));
    assert!(text("usr/share/zsh/site-functions/_bmbackup").starts_with("#compdef bmbackup"));
    assert_eq!(mode("sbin/mount.bmbackup"), 0o755);
    assert!(text("sbin/mount.bmbackup").contains("\nDEFAULT_BIN=/usr/bin/bmbackup\n"));
    let link = fs::read_link(dest.join("sbin/mount.fuse.bmbackup")).unwrap();
    assert_eq!(link, Path::new("mount.bmbackup"));
    for unit in [
        "bmbackup.service",
        "bmbackup.timer",
        "bmbackup-mount.service",
    ] {
        let path = format!("etc/systemd/system/{unit}");
        assert_eq!(mode(&path), 0o644, "{unit}");
        let body = text(&path);
        assert!(
            !body.contains("/usr/local/bin"),
            "{unit} not rewritten for PREFIX"
        );
    }
    assert!(text("etc/systemd/system/bmbackup.service")
        .contains("ExecStart=/usr/bin/bmbackup backup --config /etc/bmbackup/bmbackup.toml"));
    assert_eq!(
        text("etc/bmbackup/bmbackup.toml.example"),
        fs::read_to_string(repo().join("examples/bmbackup.toml")).unwrap()
    );

    // A real configuration survives uninstall, with its directory.
    fs::write(dest.join("etc/bmbackup/bmbackup.toml"), "store = \"/x\"\n").unwrap();
    make("uninstall");
    let mut left: Vec<String> = walk(&dest)
        .into_iter()
        .filter(|p| !fs::symlink_metadata(p).unwrap().is_dir())
        .map(|p| p.strip_prefix(&dest).unwrap().display().to_string())
        .collect();
    left.sort();
    assert_eq!(left, ["etc/bmbackup/bmbackup.toml"]);
}

#[test]
fn example_config_is_accepted_by_the_config_parser() {
    let path = repo().join("examples/bmbackup.toml");
    // The real parser, which rejects unknown keys: the example cannot drift from the code.
    let config = bmbackup::config::Config::load(&path).unwrap();
    assert_eq!(config.store.as_deref(), Some(Path::new("/srv/bmstore")));
    assert!(config.host.is_some());
    assert!(config.compression_level.is_some());
    let want = [
        ("bm/es", "/var/spool/bm-elasticsearch", true),
        ("bm/pgsql", "/var/lib/bmbackup/pgsql", true),
        ("filehosting/data", "/var/spool/bm-filehosting", true),
        ("mail/archive", "/var/spool/bm-hsm", true),
        ("mail/imap", "/var/spool/cyrus/data", true),
        ("mail/imap-meta", "/var/lib/cyrus", true),
    ];
    let got: Vec<(&str, &Path, bool)> = config
        .parts
        .iter()
        .map(|(name, p)| (name.as_str(), p.path.as_path(), p.enabled))
        .collect();
    let want: Vec<(&str, &Path, bool)> =
        want.iter().map(|&(n, p, e)| (n, Path::new(p), e)).collect();
    assert_eq!(got, want);
    // Archives are switched off by BlueMind's own switch, not by `enabled`.
    assert!(config.backup_emails && !config.backup_archived_emails);
    let backed_up: Vec<String> = config
        .parts_to_back_up()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(!backed_up.contains(&"mail/archive".to_string()));
    assert!(config.parts["bm/pgsql"].pre.is_some());
    let policy = config.retention.as_ref().unwrap().policy().unwrap();
    assert_eq!(policy.keep_ages, [7, 15, 30]);
}
