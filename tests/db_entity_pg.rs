//! `restore-user USER --what KIND` for kinds declared over a database part
//! (`[db_entities.KIND]`), against a real PostgreSQL 15 (Debian's `postgresql-15`; the test
//! runs its own throwaway instance as the "live" database, as nobody, socket only). The
//! shipped example (`examples/db-entities/`: a BlueMind-like schema and its kinds) is loaded,
//! dumped (folder, custom and plain formats), backed up, changed (events deleted, changed,
//! made; a calendar deleted), and then alice's calendar as of the first backup is exported
//! (.ics checked), shown by a dry run (nothing changes) and applied (what was missing is back,
//! what was made or changed since is kept). After every run, failed or interrupted (SIGINT)
//! ones too, no throwaway PostgreSQL runs and its folder is gone.

mod common;

use common::{show, Env};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HOST: &str = "10.8.8.8";
const BIN15: &str = "/usr/lib/postgresql/15/bin";

/// The "live" database server: a private PostgreSQL 15 run as nobody, stopped on drop.
struct LivePg {
    dir: PathBuf,
    child: Child,
}

fn as_nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("{BIN15}/{program}"))
        .env("LC_ALL", "C");
    c
}

impl LivePg {
    fn start(env: &Env) -> LivePg {
        assert!(
            Path::new(BIN15).join("postgres").exists(),
            "PostgreSQL 15 is not installed: apt-get install postgresql-15 (bash .ci/run does)"
        );
        let dir = env.path("live");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let out = as_nobody("initdb")
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "bm", "--auth=trust", "-E", "UTF8", "--locale=C", "-N"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", show(&out));
        let child = as_nobody("postgres")
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-c", "listen_addresses=", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pg = LivePg { dir, child };
        let t0 = Instant::now();
        while !Command::new(format!("{BIN15}/pg_isready"))
            .arg("-h")
            .arg(&pg.dir)
            .arg("-q")
            .status()
            .unwrap()
            .success()
        {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "live PostgreSQL did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg.sql("postgres", "CREATE DATABASE bj");
        let schema = fs::read_to_string(example("schema.sql")).unwrap();
        pg.sql("bj", &schema);
        pg
    }

    /// Runs `sql` on `db` (as root through the socket); returns psql's unaligned output.
    fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(format!("{BIN15}/psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "bm",
                "-d",
                db,
            ])
            .arg("-h")
            .arg(&self.dir)
            .arg("-c")
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", show(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn conninfo(&self) -> String {
        format!("host={} dbname=bj user=bm", self.dir.display())
    }

    /// pg_dump of bj: `-Fd` into `dest` (a new folder), or `-Fc`/`-Fp` into the file `dest`.
    fn dump(&self, format: &str, dest: &Path) {
        let out = Command::new(format!("{BIN15}/pg_dump"))
            .args(["-U", "bm", "-d", "bj", format, "-f"])
            .arg(dest)
            .arg("-h")
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_dump: {}", show(&out));
    }

    /// Every item of every container: "container uid|item uid|displayname|text" (text on one
    /// line).
    fn items(&self) -> Vec<String> {
        self.sql(
            "bj",
            "SELECT c.uid || '|' || i.uid || '|' || i.displayname || '|'
                    || translate(coalesce(e.ics, v.vcard, ''), E'\\r\\n', '  ')
               FROM t_container c JOIN t_container_item i ON i.container_id = c.id
               LEFT JOIN t_calendar_vevent e ON e.item_id = i.id
               LEFT JOIN t_addressbook_vcard v ON v.item_id = i.id
              ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect()
    }
}

impl Drop for LivePg {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown, which still frees its shared memory.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/db-entities")
        .join(name)
}

fn vevent(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//BlueMind//EN\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART;TZID=Europe/Paris:20261201T100000\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// The example data: alice (two calendars, an address book) and bob (one calendar).
const DATA: &str = "
INSERT INTO t_directory_entry VALUES
  ('u-alice', 'example.com', 'alice', 'Alice'), ('u-bob', 'example.com', 'bob', 'Bob');
INSERT INTO t_container (uid, container_type, name, owner, domain_uid) VALUES
  ('calendar:Default:u-alice', 'calendar', 'Alice', 'u-alice', 'example.com'),
  ('calendar:work:u-alice', 'calendar', 'Work', 'u-alice', 'example.com'),
  ('book:Contacts:u-alice', 'addressbook', 'Contacts', 'u-alice', 'example.com'),
  ('calendar:Default:u-bob', 'calendar', 'Bob', 'u-bob', 'example.com');
";

fn add_event(pg: &LivePg, container: &str, uid: &str, summary: &str) {
    let ics = vevent(uid, summary).replace('\'', "''");
    pg.sql(
        "bj",
        &format!(
            "WITH i AS (INSERT INTO t_container_item (container_id, uid, displayname, created, updated)
                 SELECT id, '{uid}', '{summary}', '2026-11-01 10:00+00', '2026-11-02 11:00+00'
                   FROM t_container WHERE uid = '{container}' RETURNING id)
             INSERT INTO t_calendar_vevent SELECT id, '{ics}' FROM i"
        ),
    );
}

fn add_contact(pg: &LivePg, uid: &str, name: &str) {
    pg.sql(
        "bj",
        &format!(
            "WITH i AS (INSERT INTO t_container_item (container_id, uid, displayname)
                 SELECT id, '{uid}', '{name}' FROM t_container WHERE uid = 'book:Contacts:u-alice' RETURNING id)
             INSERT INTO t_addressbook_vcard SELECT id, E'BEGIN:VCARD\\nVERSION:3.0\\nUID:{uid}\\nFN:{name}\\nEND:VCARD\\n' FROM i"
        ),
    );
}

/// The example config with the test's live database, work folder and extra kinds.
fn config(env: &Env, pg: &LivePg) -> String {
    let work = env.path("work");
    let text = fs::read_to_string(example("bmbackup.toml"))
        .unwrap()
        .replace(
            "live = \"host=/var/run/postgresql dbname=bj user=bj\"",
            &format!("live = \"{}\"", pg.conninfo()),
        )
        .replace("live_as = \"postgres\"\n", "")
        .replace(
            "part = \"bm/pgsql\"\n",
            &format!("part = \"bm/pgsql\"\nwork_dir = \"{}\"\n", work.display()),
        );
    assert!(text.contains(&pg.conninfo()) && !text.contains("live_as = "));
    let start = text.find("[db_entities.calendar-db]").unwrap();
    let end = text.find("[db_entities.contacts-db]").unwrap();
    let calendar = &text[start..end];
    let variant = |name: &str, part: &str, dump: &str| {
        calendar
            .replace(
                "[db_entities.calendar-db]",
                &format!("[db_entities.{name}]"),
            )
            .replace("part = \"bm/pgsql\"", &format!("part = \"{part}\""))
            .replace("dump = \"\"", &format!("dump = \"{dump}\""))
    };
    let typo = variant("typo-apply", "bm/pgsql", "").replace(
        "INSERT INTO t_calendar_vevent (item_id, ics)",
        "INSERT INTO t_calendar_vevnt (item_id, ics)",
    );
    let null = variant("null-apply", "bm/pgsql", "")
        .replace("SELECT i.id, r.ics", "SELECT i.id, NULL::text");
    assert!(typo.contains("t_calendar_vevnt") && null.contains("NULL::text"));
    let broken =
        variant("broken", "bm/pgsql", "").replace("JOIN t_calendar_vevent", "JOIN t_no_such_table");
    format!(
        "post_backup_hook = \"\"\n{text}\n{}\n{}\n{}\n{}\n{}\n{typo}\n{null}\n{broken}",
        variant("calendar-c", "bm/pgsql-c", "bj.dump"),
        variant("calendar-p", "bm/pgsql-p", "sql/bj.sql"),
        variant("calendar-t", "bm/pgsql-c", "bj.tar"),
        variant("calendar-99", "bm/pgsql-99", "bj.dump"),
        variant("calendar-cut", "bm/pgsql-cut", "bj.dump"),
    )
}

/// No throwaway PostgreSQL left: the work folder is empty and no process names it.
fn assert_no_instance(env: &Env) {
    let work = env.path("work");
    let left: Vec<String> = fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", work.display());
    let needle = work.to_string_lossy().into_owned();
    for p in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        if let Ok(cmd) = fs::read(p.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            assert!(!cmd.contains(&needle), "still running: {cmd}");
        }
    }
}

/// Runs bmbackup; prints and returns (output, seconds).
fn timed(env: &Env, args: &[&str]) -> (Output, f64) {
    let t0 = Instant::now();
    let out = env.run(args);
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "bmbackup {} -> {} in {secs:.2} s\n{}",
        args.join(" "),
        out.status,
        show(&out)
    );
    (out, secs)
}

fn ok(env: &Env, args: &[&str]) -> (String, String) {
    let (out, _) = timed(env, args);
    assert!(out.status.success(), "{args:?}: {}", show(&out));
    assert_no_instance(env);
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn calendar_from_the_database_dump_exported_shown_and_applied() {
    let env = Env::new();
    let pg = LivePg::start(&env);
    pg.sql("bj", DATA);
    for (uid, summary) in [("e1", "Standup"), ("e2", "Dentist"), ("e3", "Review")] {
        add_event(&pg, "calendar:Default:u-alice", uid, summary);
    }
    add_event(&pg, "calendar:work:u-alice", "w1", "Sprint");
    add_event(&pg, "calendar:Default:u-bob", "b1", "Bob lunch");
    add_contact(&pg, "c1", "Carol");
    add_contact(&pg, "c2", "Dave");
    let work = env.path("work");
    fs::create_dir(&work).unwrap();
    fs::write(env.config(), config(&env, &pg)).unwrap();

    // The dumps of day 1 (every format) and their backup.
    let (dir_src, c_src, p_src, v99_src) = (
        env.path("src-d"),
        env.path("src-c"),
        env.path("src-p"),
        env.path("src-99"),
    );
    let dump_all = || {
        for d in [&dir_src, &c_src, &p_src] {
            let _ = fs::remove_dir_all(d);
        }
        pg.dump("-Fd", &dir_src);
        fs::create_dir(&c_src).unwrap();
        pg.dump("-Fc", &c_src.join("bj.dump"));
        pg.dump("-Ft", &c_src.join("bj.tar"));
        fs::create_dir_all(p_src.join("sql")).unwrap();
        pg.dump("-Fp", &p_src.join("sql/bj.sql"));
    };
    dump_all();
    // A dump that names PostgreSQL 99 in its header.
    fs::create_dir(&v99_src).unwrap();
    let mut bytes = fs::read(c_src.join("bj.dump")).unwrap();
    let head = bytes.len().min(300);
    for i in 0..head - 3 {
        if &bytes[i..i + 3] == b"15." {
            bytes[i..i + 2].copy_from_slice(b"99");
        }
    }
    fs::write(v99_src.join("bj.dump"), bytes).unwrap();
    // A custom dump cut in the middle: pg_restore fails while the instance runs.
    let cut_src = env.path("src-cut");
    fs::create_dir(&cut_src).unwrap();
    let whole = fs::read(c_src.join("bj.dump")).unwrap();
    fs::write(cut_src.join("bj.dump"), &whole[..whole.len() / 2]).unwrap();
    let mut day1 = String::new();
    for (part, src) in [
        ("bm/pgsql", &dir_src),
        ("bm/pgsql-c", &c_src),
        ("bm/pgsql-p", &p_src),
        ("bm/pgsql-99", &v99_src),
        ("bm/pgsql-cut", &cut_src),
    ] {
        // The last one's name: as --at, the whole second it names, so every part's day-1
        // snapshot and none of day 2 (backed up more than a second later).
        day1 = env.backup(HOST, part, src)["name"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let before = pg.items();

    // Since then: e2 deleted, e1 changed, e4 made, the work calendar deleted; then day 2's
    // backup, which --at day 1 must not take.
    pg.sql("bj", "DELETE FROM t_container_item WHERE uid = 'e2'");
    pg.sql(
        "bj",
        &format!(
            "UPDATE t_calendar_vevent SET ics = '{}' WHERE item_id = (SELECT id FROM t_container_item WHERE uid = 'e1');
             UPDATE t_container_item SET displayname = 'Standup (moved)', version = 2 WHERE uid = 'e1'",
            vevent("e1", "Standup (moved)")
        ),
    );
    add_event(&pg, "calendar:Default:u-alice", "e4", "New since");
    pg.sql(
        "bj",
        "DELETE FROM t_container WHERE uid = 'calendar:work:u-alice'",
    );
    std::thread::sleep(Duration::from_millis(1100));
    dump_all();
    env.backup(HOST, "bm/pgsql", &dir_src);
    let changed = pg.items();
    assert_ne!(before, changed);

    let user = "alice@example.com";
    let base = |what: &'static str| {
        vec![
            "restore-user",
            user,
            "--host",
            HOST,
            "--what",
            what,
            "--at",
            &day1,
        ]
    };

    // Export (folder dump): one .ics per calendar of day 1, bob's events not in them.
    let out_dir = env.path("out");
    let mut args = base("calendar-db");
    let out_s = out_dir.to_str().unwrap().to_string();
    args.extend(["--to", &out_s]);
    let (stdout, stderr) = ok(&env, &args);
    assert!(stderr.contains("took "), "{stderr}");
    assert!(stdout.contains("4 object(s) of calendar-db"), "{stdout}");
    let cal_dir = out_dir.join(user).join("calendar-db");
    let default = fs::read_to_string(cal_dir.join("calendar_Default_u-alice.ics")).unwrap();
    let work_ics = fs::read_to_string(cal_dir.join("calendar_work_u-alice.ics")).unwrap();
    for uid in [
        "UID:e1\r\n",
        "UID:e2\r\n",
        "UID:e3\r\n",
        "SUMMARY:Standup\r\n",
    ] {
        assert!(default.contains(uid), "{uid} missing: {default}");
    }
    assert!(
        !default.contains("moved") && !default.contains("UID:e4") && !default.contains("UID:b1")
    );
    assert!(default.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
    assert!(default.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
    assert_eq!(default.matches("BEGIN:VTIMEZONE").count(), 1);
    assert_eq!(default.matches("BEGIN:VEVENT").count(), 3);
    assert!(work_ics.contains("UID:w1\r\n") && work_ics.matches("BEGIN:VEVENT").count() == 1);
    assert_eq!(fs::read_dir(&cal_dir).unwrap().count(), 2);
    // A rerun finds the same files.
    let (stdout, _) = ok(&env, &args);
    assert!(stdout.contains("unchanged"), "{stdout}");

    // The same export from the custom, tar and plain dumps: the same bytes.
    for kind in ["calendar-c", "calendar-t", "calendar-p"] {
        let dir = env.path(&format!("out-{kind}"));
        let mut args = base(kind);
        let d = dir.to_str().unwrap().to_string();
        args.extend(["--to", &d]);
        ok(&env, &args);
        let same = fs::read_to_string(
            dir.join(user)
                .join(kind)
                .join("calendar_Default_u-alice.ics"),
        )
        .unwrap();
        assert_eq!(same, default, "{kind}");
    }
    // Contacts as vCards.
    let mut args = base("contacts-db");
    args.extend(["--to", &out_s]);
    ok(&env, &args);
    let vcf = fs::read_to_string(
        out_dir
            .join(user)
            .join("contacts-db/book_Contacts_u-alice.vcf"),
    )
    .unwrap();
    assert!(
        vcf.contains("FN:Carol\r\n") && vcf.contains("FN:Dave\r\n"),
        "{vcf}"
    );

    // Dry run of the apply: the objects are listed, nothing changes.
    let mut args = base("calendar-db");
    args.push("--dry-run");
    let (stdout, _) = ok(&env, &args);
    assert!(stdout.contains("uid=e2 summary=Dentist"), "{stdout}");
    assert!(stdout.contains("would apply"), "{stdout}");
    assert!(stdout.contains("checked on the live database"), "{stdout}");
    assert_eq!(pg.items(), changed, "a dry run changed the live database");
    // A dry run finds a misspelt table in apply; nothing changes.
    let mut args = base("typo-apply");
    args.push("--dry-run");
    let (out, _) = timed(&env, &args);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("t_calendar_vevnt"), "{}", show(&out));
    assert_no_instance(&env);
    // A statement that fails when run, after two that worked: nothing is kept (one transaction).
    let (out, _) = timed(&env, &base("null-apply"));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        show(&out).contains("not changed") && show(&out).contains("null value"),
        "{}",
        show(&out)
    );
    assert_eq!(pg.items(), changed, "a failed apply left changes");
    assert_no_instance(&env);

    // Apply: what was missing is back, what was made or changed since is kept.
    let (stdout, _) = ok(&env, &base("calendar-db"));
    assert!(
        stdout.contains("statement 1: INSERT 0 1: calendar:work:u-alice"),
        "{stdout}"
    );
    assert!(stdout.contains("statement 2: INSERT 0 2"), "{stdout}");
    let now = pg.items();
    let has = |prefix: &str| now.iter().find(|l| l.starts_with(prefix)).cloned();
    assert!(has("calendar:Default:u-alice|e2|Dentist|")
        .unwrap()
        .contains("SUMMARY:Dentist"));
    assert!(has("calendar:work:u-alice|w1|Sprint|")
        .unwrap()
        .contains("UID:w1"));
    assert!(has("calendar:Default:u-alice|e1|Standup (moved)|")
        .unwrap()
        .contains("moved"));
    assert!(has("calendar:Default:u-alice|e4|New since|").is_some());
    assert_eq!(now.len(), changed.len() + 2, "{now:#?}");
    let mut expected = before.clone();
    expected.retain(|l| !l.contains("|e1|"));
    expected.extend(
        changed
            .iter()
            .filter(|l| l.contains("|e1|") || l.contains("|e4|"))
            .cloned(),
    );
    expected.sort();
    let mut got = now.clone();
    got.sort();
    assert_eq!(got, expected);
    // Applied again: nothing left to put back.
    let (stdout, _) = ok(&env, &base("calendar-db"));
    assert!(
        stdout.contains("statement 1: INSERT 0 0") && stdout.contains("statement 3: INSERT 0 0"),
        "{stdout}"
    );
    assert_eq!(pg.items(), now);

    // A misspelt user: an error, not "nothing".
    let (out, _) = timed(
        &env,
        &[
            "restore-user",
            "alcie@example.com",
            "--host",
            HOST,
            "--what",
            "calendar-db",
            "--at",
            &day1,
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("no calendar-db objects"));
    assert_no_instance(&env);

    // A selection that fails midway: the error, and no instance left.
    let (out, _) = timed(&env, &base("broken"));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("t_no_such_table"), "{}", show(&out));
    assert_no_instance(&env);
    assert_eq!(pg.items(), now);

    // Loading fails midway (a cut dump): the error, and no instance left.
    let (out, _) = timed(&env, &base("calendar-cut"));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("pg_restore failed"), "{}", show(&out));
    assert_no_instance(&env);

    // A dump that needs a PostgreSQL that is not installed.
    let (out, _) = timed(&env, &base("calendar-99"));
    assert!(
        show(&out).contains("needs PostgreSQL 99") && show(&out).contains("installed: 15"),
        "{}",
        show(&out)
    );
    assert_no_instance(&env);

    // Ctrl-C while the throwaway instance runs: it is stopped and its folder removed.
    let mut args = base("calendar-db");
    let d = env.path("out-int").to_str().unwrap().to_string();
    args.extend(["--to", &d]);
    let mut child = env
        .cmd(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let needle = format!("{}/bmbackup-pg-", work.display());
    wait_for_postmaster(&needle);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = {
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        eprintln!("interrupted: {status}: {err}");
        status
    };
    assert!(!out.success());
    assert_no_instance(&env);

    // kill -9: the postmaster gets SIGQUIT (parent-death signal) and stops; the next run
    // removes the folder left behind.
    let mut child = env
        .cmd(&base("calendar-db"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_postmaster(&needle);
    child.kill().unwrap();
    child.wait().unwrap();
    let t0 = Instant::now();
    while running(&needle) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the postmaster outlived kill -9 of bmbackup"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        1,
        "the killed run's folder"
    );
    let mut args = base("calendar-db");
    args.push("--dry-run");
    ok(&env, &args);
    drop(pg);
}

/// True when a process's command line contains `needle`.
fn running(needle: &str) -> bool {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .any(|p| {
            fs::read(p.path().join("cmdline"))
                .map(|cmd| String::from_utf8_lossy(&cmd).contains(needle))
                .unwrap_or(false)
        })
}

/// Waits until a throwaway postmaster (initdb done) runs in a folder named by `needle`.
fn wait_for_postmaster(needle: &str) {
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no instance started"
        );
        let found = fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .any(|p| {
                fs::read(p.path().join("cmdline"))
                    .map(|cmd| {
                        let cmd = String::from_utf8_lossy(&cmd);
                        cmd.contains(needle) && cmd.contains("unix_socket_directories")
                    })
                    .unwrap_or(false)
            });
        if found {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_example_kinds_are_accepted_as_shipped() {
    let config = bmbackup::config::Config::load(&example("bmbackup.toml")).unwrap();
    let kinds: Vec<&str> = bmbackup::restore::db_entity::kinds(&config)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(kinds, ["calendar-db", "contacts-db"]);
    let cal = &config.db_entities["calendar-db"];
    assert_eq!((cal.part.as_str(), cal.dump.as_str()), ("bm/pgsql", ""));
    assert_eq!(cal.apply.len(), 3);
    assert_eq!(cal.live_as.as_deref(), Some("postgres"));
    assert_eq!(cal.run_as, "nobody");
}

#[test]
fn the_console_offers_the_database_kinds_and_exports_one() {
    let env = Env::new();
    let pg = LivePg::start(&env);
    pg.sql("bj", DATA);
    add_event(&pg, "calendar:Default:u-alice", "e1", "Standup");
    add_event(&pg, "calendar:Default:u-alice", "e2", "Dentist");
    fs::create_dir(env.path("work")).unwrap();
    fs::write(env.config(), config(&env, &pg)).unwrap();
    let src = env.path("src-d");
    pg.dump("-Fd", &src);
    let snap = env.backup(HOST, "bm/pgsql", &src);
    let c = env.console();
    let token = c.login();
    let kinds = c.get(&token, "/api/kinds").json();
    let names: Vec<&str> = kinds["db"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"db:calendar-db"), "{kinds}");
    let dates = c
        .get(
            &token,
            &format!("/api/dates?kind=db:calendar-db&host={HOST}"),
        )
        .json();
    assert_eq!(dates.as_array().unwrap().len(), 1, "{dates}");
    let out = env.path("out");
    let body = serde_json::json!({
        "kind": "db:calendar-db", "object": "alice@example.com",
        "snapshot": snap["id"], "dest": "to", "to": out,
    });
    let plan = c.post(&token, "/api/restore/plan", &body);
    assert_eq!(plan.status, 200, "{}", plan.text());
    assert!(plan.text().contains("exported into"), "{}", plan.text());
    let run = c.post(&token, "/api/restore/run", &body);
    assert_eq!(run.status, 200, "{}", run.text());
    let id = run.json()["job"].as_u64().unwrap();
    let mut job = serde_json::Value::Null;
    for _ in 0..600 {
        job = c.get(&token, &format!("/api/jobs/{id}")).json();
        if job["running"] == false {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(job["outcome"], "complete", "{job}");
    let cal = out.join("alice@example.com").join("calendar-db");
    let text: String = fs::read_dir(&cal)
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        text.contains("Standup") && text.contains("Dentist"),
        "{text}"
    );
    // Applying needs a confirmation naming the live database.
    let mut apply = body.clone();
    apply["dest"] = serde_json::json!("inplace");
    let refused = c.post(&token, "/api/restore/run", &apply);
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert_no_instance(&env);
}
