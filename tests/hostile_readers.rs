//! Forged stores against every reader (restore, mount, check, history, find, snapshots, stats):
//! each must refuse or report the forgery, write nothing outside DEST, stay within a memory
//! bound and finish. The stores are written through the real encoders (`Tree::encode`, the
//! pack builder, `Store::write_manifest`) by [`Crafter`], as anyone with write access to the
//! store could; byte-level damage is in `hostile_store.rs`.

mod common;

use bmbackup::id::{ChunkId, Digest, PackId, TreeId};
use bmbackup::model::{
    ChunkRef, Content, Entry, EntryKind, Manifest, SnapshotStatus, Timestamp, Tree,
};
use bmbackup::store::pack::{encode_frame, BlobKind, Codec, Frame, PackBuilder};
use bmbackup::store::Store;
use common::{is_mounted, mount_command, Env, KillOnDrop, MountGuard};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Peak memory any command may reach on these small forged stores (the debug binary alone
/// takes ~15 MiB).
const MEM_LIMIT_KIB: i64 = 256 * 1024;
/// Time any command may take.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Writes arbitrary trees, chunks and manifests into a store through the real encoders.
struct Crafter {
    store: Store,
    blobs: Vec<(BlobKind, Digest, Frame)>,
    codec: Codec,
}

impl Crafter {
    fn new(env: &Env) -> Crafter {
        Crafter {
            store: env.open_store(),
            blobs: Vec::new(),
            codec: Codec::new(3).unwrap(),
        }
    }

    fn put(&mut self, kind: BlobKind, data: &[u8]) -> Digest {
        let id = Digest::of(data);
        let frame = encode_frame(data, &id, &mut self.codec).unwrap();
        self.blobs.push((kind, id, frame));
        id
    }

    fn chunk(&mut self, data: &[u8]) -> ChunkRef {
        ChunkRef {
            id: ChunkId(self.put(BlobKind::Chunk, data)),
            len: data.len() as u32,
        }
    }

    /// A tree of exactly these entries, in this order (nothing is sorted or checked).
    fn tree(&mut self, entries: Vec<Entry>) -> TreeId {
        TreeId(self.put(BlobKind::Tree, &Tree { entries }.encode()))
    }

    /// Stores `entries` as a tree blob under the id `id`, which is not its hash.
    fn tree_under_false_id(&mut self, id: TreeId, entries: Vec<Entry>) {
        let bytes = Tree { entries }.encode();
        let mut raw = vec![0u8];
        raw.extend_from_slice(&bytes);
        self.blobs.push((
            BlobKind::Tree,
            id.0,
            Frame {
                bytes: raw,
                raw_len: bytes.len() as u32,
            },
        ));
    }

    /// Writes the blobs so far as one pack, and a manifest of `part` with root `root`.
    fn snapshot(&mut self, part: &str, root: TreeId, edit: impl FnOnce(&mut Manifest)) -> String {
        if !self.blobs.is_empty() {
            let mut b = PackBuilder::new();
            for (kind, id, frame) in self.blobs.drain(..) {
                b.add(kind, id, &frame);
            }
            let (bytes, id, _) = b.finish();
            self.store.write_pack(&PackId(id), &bytes).unwrap();
        }
        let mut m = Manifest {
            host: "evil".into(),
            part: part.into(),
            source: format!("/srv/{part}"),
            started_ns: 1_700_000_000_000_000_000,
            finished_ns: 1_700_000_000_000_000_001,
            root: root.to_hex(),
            files: 1,
            dirs: 1,
            bytes: 0,
            bytes_read: 0,
            bytes_added: 0,
            tool_version: "0".into(),
            status: SnapshotStatus::Complete,
            problems: Vec::new(),
            parent: None,
            root_meta: None,
            name: None,
            has_xattrs: None,
        };
        edit(&mut m);
        self.store.write_manifest(&m).unwrap().to_hex()
    }
}

fn entry(name: &[u8], kind: EntryKind, content: Content) -> Entry {
    Entry {
        name: name.to_vec(),
        kind,
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        size: 0,
        mtime: Timestamp {
            sec: 1_700_000_000,
            nsec: 0,
        },
        ctime: Timestamp::default(),
        ino: 0,
        nlink: 1,
        dev: 0,
        blocks: None,
        flags: 0,
        rdev: 0,
        target: Vec::new(),
        xattrs: Vec::new(),
        content,
    }
}

fn file(c: &mut Crafter, name: &[u8], data: &[u8]) -> Entry {
    let mut e = entry(name, EntryKind::File, Content::Chunks(vec![c.chunk(data)]));
    e.size = data.len() as u64;
    e
}

fn dir(name: &[u8], sub: TreeId) -> Entry {
    entry(name, EntryKind::Dir, Content::Tree(sub))
}

/// What one command did: exit code, the signal that killed it, its output, peak memory.
struct Ran {
    code: Option<i32>,
    signal: Option<i32>,
    out: String,
    max_rss_kib: i64,
}

impl Ran {
    /// Finished by itself, neither killed nor panicking, within the memory bound.
    fn assert_sane(&self, what: &str) {
        assert_eq!(self.signal, None, "{what} was killed: {}", self.out);
        assert!(
            !self.out.contains("panicked"),
            "{what} panicked: {}",
            self.out
        );
        assert!(
            self.max_rss_kib < MEM_LIMIT_KIB,
            "{what} took {} KiB: {}",
            self.max_rss_kib,
            self.out
        );
    }
}

/// Runs bmbackup with a deadline and measures its peak memory: through `/usr/bin/time` (CI
/// installs it), else `wait4`'s rusage, an upper bound that includes this test process's size
/// at fork time.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's `wait` cannot replace here
fn bounded(env: &Env, args: &[&str]) -> Ran {
    use std::os::unix::process::CommandExt;
    let log = tempfile::NamedTempFile::new().unwrap();
    let times = tempfile::NamedTempFile::new().unwrap();
    let have_time = Path::new("/usr/bin/time").exists();
    let mut cmd = if have_time {
        let mut c = env.command("/usr/bin/time");
        c.args(["-f", "%M", "-o"])
            .arg(times.path())
            .arg(common::BIN)
            .args(args);
        c
    } else {
        env.cmd(args)
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-buffer for wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for our own child; status and usage outlive the call.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if start.elapsed() > TIME_LIMIT {
            // SAFETY: killing our child's process group (time and bmbackup), reaping the child.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut usage);
            }
            panic!("{args:?} did not finish in {TIME_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = fs::read_to_string(log.path()).unwrap_or_default();
    let mut code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let mut signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let mut max_rss_kib = usage.ru_maxrss;
    if have_time {
        // "Command terminated by signal N" (then the figure), or just the figure.
        let t = fs::read_to_string(times.path()).unwrap_or_default();
        if let Some(n) = t.split("terminated by signal ").nth(1) {
            signal = n.split_whitespace().next().and_then(|n| n.parse().ok());
            code = None;
        }
        max_rss_kib = t
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(i64::MAX);
    }
    Ran {
        code,
        signal,
        out,
        max_rss_kib,
    }
}

/// Every path under `root` (not following symlinks), sorted.
fn listing(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        if let Ok(rd) = fs::read_dir(&p) {
            for e in rd {
                let p = e.unwrap().path();
                if fs::symlink_metadata(&p).unwrap().is_dir() {
                    todo.push(p.clone());
                }
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A forged snapshot and what readers must say about it.
struct Case {
    part: String,
    snap: String,
    /// A path inside it for `history`.
    probe: &'static str,
    /// Whether `restore` of the whole snapshot must fail (some forgeries only make one file
    /// wrong, which restore cannot know; check and the mount must still say so).
    restore_fails: bool,
}

fn forged_store(env: &Env) -> Vec<Case> {
    let mut c = Crafter::new(env);
    let mut cases = Vec::new();
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    let mut add = |c: &mut Crafter, part: &str, root: TreeId, probe, restore_fails| {
        let snap = c.snapshot(part, root, |_| {});
        cases.push(Case {
            part: part.into(),
            snap,
            probe,
            restore_fails,
        });
    };

    // Names that would leave their folder, in a folder holding a file to plant.
    for (i, bad) in [&b".."[..], b".", b"a/b", b"", b"a\0b", b"/etc", b"../../x"]
        .into_iter()
        .enumerate()
    {
        let pwned = file(&mut c, b"pwned", b"evil");
        let inner = c.tree(vec![pwned]);
        let planted = file(&mut c, bad, b"evil");
        let root = c.tree(vec![dir(bad, inner), planted]);
        let root = c.tree(vec![dir(b"d", root)]);
        add(&mut c, &format!("names/{i}"), root, "d/pwned", true);
    }

    // A symlink to a folder outside, then a folder of the same name holding a file.
    let mut link = entry(b"x", EntryKind::Symlink, Content::None);
    link.target = outside.to_str().unwrap().as_bytes().to_vec();
    let pwned = file(&mut c, b"pwned", b"evil");
    let inner = c.tree(vec![pwned]);
    let root = c.tree(vec![link, dir(b"x", inner)]);
    add(&mut c, "link-then-folder", root, "x/pwned", true);

    // A tree that holds itself: stored under an id that is not its hash.
    let me = TreeId(Digest::of(b"a tree that contains itself"));
    let ok = file(&mut c, b"ok", b"fine");
    c.tree_under_false_id(me, vec![dir(b"loop", me), ok]);
    add(&mut c, "self-loop", me, "loop/loop/ok", true);

    // A manifest naming a tree of another store.
    let foreign = TreeId(Digest::of(b"the root tree of another store"));
    add(&mut c, "foreign-root", foreign, "x", true);

    // Sizes that claim a terabyte; a folder made of chunks; a file made of a folder.
    let mut big = file(&mut c, b"big", b"x");
    big.size = 1 << 40;
    let root = c.tree(vec![big]);
    add(&mut c, "terabyte", root, "big", true);
    let sub = c.tree(Vec::new());
    let mut folder = file(&mut c, b"f", b"x");
    folder.kind = EntryKind::Dir;
    let mut filesub = dir(b"g", sub);
    filesub.kind = EntryKind::File;
    let root = c.tree(vec![folder, filesub]);
    add(&mut c, "wrong-content", root, "f", true);

    // One chunk, two lengths: a liar file claims the honest file's chunk is 1000 bytes.
    let honest = file(&mut c, b"a", b"0123456789");
    let mut liar = honest.clone();
    liar.name = b"b".to_vec();
    if let Content::Chunks(ch) = &mut liar.content {
        ch[0].len = 1000;
    }
    liar.size = 1000;
    let root = c.tree(vec![honest, liar]);
    add(&mut c, "two-lengths", root, "b", false);

    // A folder name that would climb out of HOST/PART on the mount.
    let ok = file(&mut c, b"ok", b"fine");
    let root = c.tree(vec![ok]);
    let snap = c.snapshot("bad-name", root, |m| m.name = Some("../../../etc".into()));
    cases.push(Case {
        part: "bad-name".into(),
        snap,
        probe: "ok",
        restore_fails: false,
    });

    cases
}

#[test]
fn forged_stores_are_refused_by_every_reader_within_bounds() {
    let env = Env::new();
    let cases = forged_store(&env);
    let watched = |p: &PathBuf| {
        let s = p.to_string_lossy();
        !s.contains("/dest-") && !s.contains("/store") && !s.contains("/cache")
    };
    let before: Vec<PathBuf> = listing(env.dir.path())
        .into_iter()
        .filter(watched)
        .collect();
    for case in &cases {
        let dest = env.path(&format!("dest-{}", case.part.replace('/', "-")));
        let r = bounded(&env, &["restore", &case.snap, dest.to_str().unwrap()]);
        r.assert_sane(&format!("restore {}", case.part));
        eprintln!(
            "restore {}: exit {:?}, {} KiB",
            case.part, r.code, r.max_rss_kib
        );
        if case.restore_fails {
            assert_ne!(
                r.code,
                Some(0),
                "restore {} succeeded: {}",
                case.part,
                r.out
            );
        }
        for p in listing(&dest) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !name.contains("pwned") || case.part == "self-loop",
                "{}",
                p.display()
            );
        }
        for args in [
            vec![
                "history", "--host", "evil", "--part", &case.part, case.probe,
            ],
            vec!["find", "--part", &case.part, "*"],
        ] {
            bounded(&env, &args).assert_sane(&format!("{args:?}"));
        }
    }
    let after: Vec<PathBuf> = listing(env.dir.path())
        .into_iter()
        .filter(watched)
        .collect();
    assert_eq!(before, after, "written outside every DEST");
    assert!(fs::read_dir(env.path("outside")).unwrap().next().is_none());

    let r = bounded(&env, &["check", "--json"]);
    r.assert_sane("check");
    assert_eq!(r.code, Some(1));
    let json = &r.out[r.out.find('{').unwrap()..];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let used: String = v["bad_blobs"].to_string();
    for case in cases.iter().filter(|c| c.part != "bad-name") {
        assert!(
            used.contains(&case.snap),
            "check does not name {}: {v:#}",
            case.part
        );
    }
    for args in [&["snapshots"][..], &["stats"]] {
        bounded(&env, args).assert_sane(&format!("{args:?}"));
    }
    let names = env.ok(&["snapshots", "--json"]);
    assert!(!names.contains("../"), "{names}");

    // The mount: every forged snapshot lists and reads as errors, the daemon survives.
    let mounted = MountedStore::new(&env);
    let last = |part: &str| mounted.mp.join("evil").join(part).join("last");
    for case in &cases {
        let budget = &mut 200;
        touch_everything(&last(&case.part), budget);
    }
    let two = last("two-lengths");
    assert_eq!(fs::read(two.join("a")).unwrap(), b"0123456789");
    let err = fs::read(two.join("b")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert_eq!(fs::read(two.join("a")).unwrap(), b"0123456789");
    let err = fs::read_dir(last("self-loop")).and_then(|mut d| d.next().transpose());
    assert!(err.is_err(), "{err:?}");
    let rss = mounted.max_rss_kib();
    eprintln!("mount daemon after every forged snapshot: {rss} KiB");
    assert!(rss < MEM_LIMIT_KIB, "mount took {rss} KiB");
    mounted.stop();
}

/// Lists and reads everything below `dir` (up to `budget` entries), ignoring errors.
fn touch_everything(dir: &Path, budget: &mut usize) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(e) = e else { continue };
        let p = e.path();
        match fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => touch_everything(&p, budget),
            Ok(md) if md.is_file() => {
                let _ = fs::read(&p);
            }
            _ => {}
        }
    }
}

/// `bmbackup mount --foreground` on the test's store, unmounted and stopped on drop.
struct MountedStore {
    mp: PathBuf,
    daemon: KillOnDrop,
    _guard: MountGuard,
}

impl MountedStore {
    fn new(env: &Env) -> MountedStore {
        let mp = env.path("mnt");
        fs::create_dir_all(&mp).unwrap();
        let daemon = KillOnDrop(Some(
            mount_command(&env.store(), &mp, &env.cache())
                .arg("--foreground")
                .stderr(fs::File::create(env.path("mount.log")).unwrap())
                .spawn()
                .unwrap(),
        ));
        let guard = MountGuard::new(&mp);
        let t = Instant::now();
        while !is_mounted(&mp) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "mount did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        MountedStore {
            mp,
            daemon,
            _guard: guard,
        }
    }

    /// The daemon's peak memory so far.
    fn max_rss_kib(&self) -> i64 {
        let pid = self.daemon.0.as_ref().unwrap().id();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// SIGTERM: the daemon unmounts and exits 0, so it survived everything it was shown.
    fn stop(mut self) {
        let child = self.daemon.0.take().unwrap();
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "mount daemon: {:?}", out.status);
    }
}

/// A tree holding one subtree twice over, 40 levels deep (2^40 paths to one file whose chunk
/// is missing), and a chain of folders deeper than any Linux path: check, find and history
/// finish within bounds, and restore of the chain writes only inside DEST.
#[test]
fn exponential_and_deep_trees_finish_within_bounds() {
    let env = Env::new();
    let mut c = Crafter::new(&env);
    let mut lost = file(&mut c, b"f", b"x");
    if let Content::Chunks(ch) = &mut lost.content {
        ch[0].id = ChunkId(Digest::of(b"a chunk that is in no pack"));
    }
    let mut t = c.tree(vec![lost]);
    for _ in 0..40 {
        t = c.tree(vec![dir(b"a", t), dir(b"b", t)]);
    }
    let bomb = c.snapshot("bomb", t, |m| {
        m.files = u64::MAX;
        m.dirs = u64::MAX;
        m.bytes = u64::MAX;
        m.bytes_read = u64::MAX;
        m.bytes_added = u64::MAX;
    });
    let depth = bmbackup::tree::MAX_DEPTH + 500;
    let bottom = file(&mut c, b"bottom", b"deep");
    let mut t = c.tree(vec![bottom]);
    for _ in 0..depth {
        t = c.tree(vec![dir(b"d", t)]);
    }
    let chain = c.snapshot("chain", t, |m| {
        m.started_ns = i64::MAX;
        m.finished_ns = i64::MIN;
    });

    let t0 = Instant::now();
    let r = bounded(&env, &["check", "--json"]);
    r.assert_sane("check");
    assert_eq!(r.code, Some(1), "{}", &r.out[..r.out.len().min(2000)]);
    let v: serde_json::Value = serde_json::from_str(&r.out[r.out.find('{').unwrap()..]).unwrap();
    let uses: usize = v["bad_blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["uses"].as_array().unwrap().len())
        .sum();
    assert!(
        uses <= bmbackup::integrity::check::MAX_USES_PER_SNAPSHOT + 10,
        "{uses}"
    );
    assert_eq!(v["uses_truncated"], true);
    let text = v["bad_blobs"].to_string();
    assert!(
        text.contains(&bomb) && text.contains(&chain),
        "{text:.2000}"
    );
    eprintln!(
        "check of 2^40 paths and a {depth}-deep chain: {:?}, {} KiB",
        t0.elapsed(),
        r.max_rss_kib
    );

    let r = bounded(&env, &["find", "--part", "bomb", "f"]);
    r.assert_sane("find in the bomb");
    assert!(r.out.contains("narrow the pattern"), "{}", r.out);
    let r = bounded(&env, &["find", "--part", "chain", "bottom"]);
    r.assert_sane("find in the chain");
    assert!(r.out.contains("deeper than"), "{}", r.out);
    let deep = "a/".repeat(40) + "f";
    let r = bounded(
        &env,
        &["history", "--host", "evil", "--part", "bomb", &deep],
    );
    r.assert_sane("history in the bomb");
    for args in [&["snapshots"][..], &["stats"], &["snapshots", "--json"]] {
        bounded(&env, args).assert_sane(&format!("{args:?}"));
    }
    // Restore of the chain: nothing outside DEST, whatever it manages to write.
    let dest = env.path("dest");
    let r = bounded(&env, &["restore", &chain, dest.to_str().unwrap()]);
    r.assert_sane("restore of the chain");
    let outside: Vec<PathBuf> = listing(env.dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(&dest) && !p.starts_with(env.store()))
        .filter(|p| !p.starts_with(env.cache()) && *p != env.config())
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    // Restore of a small corner of the bomb works.
    let corner = "a/".repeat(36);
    let dest = env.path("corner");
    let r = bounded(
        &env,
        &[
            "restore",
            &format!("{bomb}:{corner}"),
            dest.to_str().unwrap(),
        ],
    );
    r.assert_sane("restore of a corner of the bomb");
}

/// A file made of one chunk 200,000 times over: restore writes it (it is what such a file
/// is), within the memory bound, and reads the chunk from the store once per use only.
#[test]
fn a_chunk_repeated_many_times_restores_within_bounds() {
    let env = Env::new();
    let mut c = Crafter::new(&env);
    const TIMES: usize = 200_000;
    let one = c.chunk(b"0123456789abcdef");
    let mut f = entry(b"f", EntryKind::File, Content::Chunks(vec![one; TIMES]));
    f.size = 16 * TIMES as u64;
    let root = c.tree(vec![f]);
    let snap = c.snapshot("rep", root, |_| {});
    let dest = env.path("dest");
    let t0 = Instant::now();
    let r = bounded(&env, &["restore", &snap, dest.to_str().unwrap()]);
    r.assert_sane("restore");
    assert_eq!(r.code, Some(0), "{}", r.out);
    let data = fs::read(dest.join("f")).unwrap();
    assert_eq!(data.len(), 16 * TIMES);
    assert!(data.chunks(16).all(|c| c == b"0123456789abcdef"));
    eprintln!(
        "restore of {TIMES} repeats: {:?}, {} KiB",
        t0.elapsed(),
        r.max_rss_kib
    );
    for args in [&["check", "--read-data"][..], &["find", "f"]] {
        let r = bounded(&env, args);
        r.assert_sane(&format!("{args:?}"));
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.out);
    }
}

/// Hard-link groups that point a later path at an earlier one: restoring a subtree never
/// links to (or through) anything outside DEST, and a group mixing a symlink and a file never
/// writes through the symlink.
#[test]
fn hard_link_groups_never_reach_outside_dest() {
    let env = Env::new();
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("victim"), b"untouched").unwrap();
    let mut c = Crafter::new(&env);
    let linked = |c: &mut Crafter, name: &[u8], data: &[u8], ino| {
        let mut e = file(c, name, data);
        e.ino = ino;
        e.nlink = 2;
        e
    };
    let mut sym = entry(b"s", EntryKind::Symlink, Content::None);
    sym.target = outside.join("victim").to_str().unwrap().as_bytes().to_vec();
    sym.ino = 9;
    sym.nlink = 2;
    let fa = linked(&mut c, b"f", b"AAAA", 7);
    let a = c.tree(vec![fa, sym]);
    let gb = linked(&mut c, b"g", b"BBBB", 7);
    let tb = linked(&mut c, b"t", b"evil", 9);
    let b = c.tree(vec![gb, tb]);
    let root = c.tree(vec![dir(b"a", a), dir(b"b", b)]);
    let snap = c.snapshot("links", root, |_| {});

    let dest = env.path("dest");
    let r = bounded(
        &env,
        &["restore", &format!("{snap}:b"), dest.to_str().unwrap()],
    );
    r.assert_sane("restore of b");
    assert_eq!(fs::read(dest.join("g")).unwrap(), b"BBBB");
    assert!(fs::symlink_metadata(dest.join("t")).unwrap().is_file());
    assert_eq!(fs::read(dest.join("t")).unwrap(), b"evil");

    let whole = env.path("whole");
    let r = bounded(&env, &["restore", &snap, whole.to_str().unwrap()]);
    r.assert_sane("restore of everything");
    let r = bounded(
        &env,
        &["restore", "--overwrite", &snap, whole.to_str().unwrap()],
    );
    r.assert_sane("restore over it");
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"untouched");
    assert_eq!(listing(&outside), [outside.join("victim")]);
}
