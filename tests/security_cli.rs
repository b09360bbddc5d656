//! Who can read backups: the store and the catalog are their owner's alone (folders 0700, files
//! 0600) whatever the umask, another local user can neither read a pack nor restore with their
//! own catalog, and a store left open to others (by an older bmbackup, or chmod'ed) is warned
//! about by every command, fails `check`, and is tightened by `repair --fix-modes`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::show;

const NOBODY: &str = "65534";

/// A store, a cache and a source under one temp folder that other users can traverse (the
/// harness makes it 0755), so that only bmbackup's own modes keep them out.
struct Env {
    env: common::Env,
    bin: PathBuf,
}

impl Env {
    fn new() -> Env {
        let env = common::Env::uninit();
        // A copy other users can run, wherever the build folder is.
        let bin = env.path("bmbackup");
        fs::copy(common::BIN, &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        Env { env, bin }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.env.path(p)
    }

    /// bmbackup under `umask`, as root, on the test's store and cache.
    fn cmd(&self, umask: &str, args: &[&str]) -> Command {
        let mut c = self.env.command("sh");
        c.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(&self.bin)
            .args(args);
        c
    }

    fn ok(&self, umask: &str, args: &[&str]) -> Output {
        let out = self.cmd(umask, args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", show(&out));
        out
    }

    /// A store with one backup of a source holding another user's private mail.
    fn with_backup(umask: &str) -> Env {
        let env = Env::new();
        let src = env.path("src");
        fs::create_dir_all(src.join("user/INBOX")).unwrap();
        let mail = src.join("user/INBOX/1.");
        fs::write(&mail, b"Subject: salary\n\nSECRET-PAYROLL-4242\n").unwrap();
        fs::set_permissions(&mail, fs::Permissions::from_mode(0o600)).unwrap();
        env.ok(umask, &["init", env.env.store().to_str().unwrap()]);
        let part = format!("mail/imap={}", src.display());
        env.ok(umask, &["backup", "--host", "h", "--part", &part]);
        env
    }
}

/// Runs `program args` as user nobody.
fn as_nobody(program: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
        ])
        .arg(program)
        .args(args)
        .env("HOME", "/nonexistent")
        .env_remove("BMBACKUP_STORE")
        .env_remove("BMBACKUP_CACHE")
        .env_remove("BMBACKUP_CONFIG")
        .output()
        .unwrap()
}

/// Every file and folder under `root` whose mode is not the private one, with its mode.
fn not_private(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let md = fs::symlink_metadata(&p).unwrap();
        let mode = md.permissions().mode() & 0o7777;
        let want = if md.is_dir() { 0o700 } else { 0o600 };
        if mode != want {
            out.push(format!("{} {mode:04o}", p.display()));
        }
        if md.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn store_and_cache_are_private_whatever_the_umask() {
    for umask in ["022", "000"] {
        let env = Env::with_backup(umask);
        // Commands that write: a second backup (locks, packs, manifest), check, repair (damage
        // folders), forget; each under the same umask.
        let part = format!("mail/imap={}", env.path("src").display());
        fs::write(env.path("src/user/INBOX/2."), b"another mail").unwrap();
        env.ok(umask, &["backup", "--host", "h", "--part", &part]);
        env.ok(umask, &["check"]);
        env.ok(umask, &["repair", "--now"]);
        let store = env.env.store();
        assert!(files_under(&store)
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".pack")));
        let wrong = not_private(&store);
        assert!(
            wrong.is_empty(),
            "umask {umask}: store not private: {wrong:?}"
        );
        let cache = env.env.cache();
        // (The catalog's -wal and -shm exist only while it is open: catalog's unit tests.)
        assert!(files_under(&cache)
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".sqlite")));
        let wrong = not_private(&cache);
        assert!(
            wrong.is_empty(),
            "umask {umask}: cache not private: {wrong:?}"
        );
        // An empty folder made for the store (a mount point, say) becomes private too.
        let given = env.path("given");
        fs::create_dir(&given).unwrap();
        fs::set_permissions(&given, fs::Permissions::from_mode(0o755)).unwrap();
        env.ok(umask, &["init", given.to_str().unwrap()]);
        let wrong = not_private(&given);
        assert!(wrong.is_empty(), "umask {umask}: {wrong:?}");
    }
}

#[test]
fn another_user_cannot_read_the_store_or_restore_from_it() {
    let env = Env::with_backup("022");
    let store = env.env.store();
    // Each pack, manifest and catalog file, and the store's folders, refuse nobody.
    let mut tried = 0;
    for f in files_under(&store)
        .into_iter()
        .chain(files_under(&env.env.cache()))
    {
        let out = as_nobody(Path::new("cat"), &[f.to_str().unwrap()]);
        assert!(!out.status.success(), "nobody read {}", f.display());
        tried += 1;
    }
    assert!(tried >= 4, "{tried}");
    let out = as_nobody(
        Path::new("grep"),
        &["-r", "SECRET-PAYROLL", store.to_str().unwrap()],
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("SECRET"));
    // With a catalog of their own, in a folder they may write.
    let theirs = env.path("theirs");
    fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let dest = theirs.join("out");
    let out = as_nobody(
        &env.bin,
        &[
            "--store",
            store.to_str().unwrap(),
            "--cache-dir",
            theirs.join("c").to_str().unwrap(),
            "restore",
            "h/mail/last",
            dest.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        show(&out).contains("ermission denied"),
        "says why: {}",
        show(&out)
    );
    let leaked: Vec<PathBuf> = if dest.exists() {
        files_under(&dest)
    } else {
        Vec::new()
    };
    assert!(leaked.is_empty(), "{leaked:?}");
    for cmd in [&["snapshots"][..], &["check"]] {
        let mut args = vec!["--store", store.to_str().unwrap(), "--cache-dir"];
        let c = theirs.join("c2");
        args.push(c.to_str().unwrap());
        args.extend_from_slice(cmd);
        let out = as_nobody(&env.bin, &args);
        assert!(!out.status.success(), "{cmd:?}: {}", show(&out));
        assert!(!String::from_utf8_lossy(&out.stdout).contains("h/mail"));
    }
}

#[test]
fn an_open_store_is_warned_about_failed_by_check_and_fixed_by_repair() {
    let env = Env::with_backup("022");
    let store = env.env.store();
    // What an older bmbackup left under umask 022: folders 0755, files 0644.
    let st = Command::new("chmod")
        .args(["-R", "go+rX", store.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = env.ok("022", &["snapshots"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("open to other users").count(),
        1,
        "warned once: {err}"
    );
    assert!(err.contains("repair --fix-modes"), "{err}");
    let out = env.cmd("022", &["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("open to other users"));
    let out = env.cmd("022", &["check", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["loose_modes"].as_array().unwrap().len() >= 5, "{v}");
    assert_eq!(v["ok"], false);

    let out = env.ok("022", &["repair", "--fix-modes"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("made private"));
    assert!(not_private(&store).is_empty(), "{:?}", not_private(&store));
    let out = env.ok("022", &["check"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("open to other users"));
    // One folder chmod'ed later is enough to be warned about.
    fs::set_permissions(store.join("snapshots"), fs::Permissions::from_mode(0o750)).unwrap();
    let out = env.ok("022", &["snapshots"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("open to other users"));
}
