//! A throwaway PostgreSQL: a private folder (`bmbackup-pg-<pid>-<random>`, 0700) in the work
//! folder, `initdb` and `postgres` run as an unprivileged system user (PostgreSQL refuses root,
//! and the dump it loads comes from the store, so it must not run as the live server's
//! `postgres`), reachable only through a unix socket in that folder (`listen_addresses = ''`),
//! and every program of the instance in the postmaster's process group. Dropping the instance
//! stops it and removes the folder ([`super::cleanup`] also does on a signal); if bmbackup is
//! killed outright, the postmaster gets SIGQUIT (parent-death signal) and the next run removes
//! the folder.

use super::cleanup;
use super::dumpfmt::Major;
use super::DbEntityError;
use std::ffi::CString;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The role the instance's programs connect as, and its database.
pub const SUPERUSER: &str = "bmbackup";
pub const DATABASE: &str = "restore";
const PREFIX: &str = "bmbackup-pg-";

/// A system user: name, uid, gid, home.
#[derive(Debug, Clone)]
pub struct SysUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl SysUser {
    pub fn lookup(name: &str) -> Result<SysUser, DbEntityError> {
        let missing = || {
            DbEntityError::Setup(format!(
                "no system user {name:?} (see `getent passwd {name}`)"
            ))
        };
        let c = CString::new(name).map_err(|_| missing())?;
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: a zeroed passwd is a valid value for getpwnam_r to fill in.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf` outlives it.
        let rc = unsafe {
            libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut found)
        };
        if rc != 0 || found.is_null() {
            return Err(missing());
        }
        let home = if pw.pw_dir.is_null() {
            PathBuf::from("/")
        } else {
            // SAFETY: getpwnam_r filled pw_dir with a NUL-terminated string inside `buf`.
            let s = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
            PathBuf::from(s.to_string_lossy().into_owned())
        };
        Ok(SysUser {
            name: name.to_string(),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            home,
        })
    }

    /// A command run as this user (groups dropped) with a clean environment.
    pub fn command(&self, program: &Path, home: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home)
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .current_dir("/");
        // SAFETY (std): root drops its supplementary groups before setuid.
        // SAFETY (getuid): a plain system call.
        if unsafe { libc::getuid() } == 0 {
            c.uid(self.uid).gid(self.gid);
        }
        c
    }
}

/// The folder of PostgreSQL `major`'s programs: `pg_bin` when configured, else Debian's
/// `/usr/lib/postgresql/MAJOR/bin`; an error names the version needed and those installed.
pub fn bin_dir(major: Major, configured: Option<&Path>) -> Result<PathBuf, DbEntityError> {
    if let Some(p) = configured {
        if p.join("postgres").is_file() && p.join("initdb").is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(DbEntityError::Setup(format!(
            "pg_bin = {}: no postgres and initdb there",
            p.display()
        )));
    }
    let dir = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
    if dir.join("postgres").is_file() && dir.join("initdb").is_file() {
        return Ok(dir);
    }
    let installed: Vec<String> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join("bin/postgres").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    Err(DbEntityError::Setup(format!(
        "the dump needs PostgreSQL {major}, which is not installed (/usr/lib/postgresql/{major}/bin/postgres is missing; installed: {}): apt-get install postgresql-{major} (its server need not run), or set pg_bin",
        if installed.is_empty() { "none".to_string() } else { installed.join(", ") }
    )))
}

/// A throwaway instance; dropping it stops it and removes its folder.
pub struct Instance {
    dir: PathBuf,
    bin: PathBuf,
    user: SysUser,
    reg: u64,
    postmaster: Option<Child>,
}

impl Instance {
    /// Makes the private folder in `work_dir` (root's, 0700, until [`Instance::start`] hands it
    /// to `user`), after removing folders left by runs that were killed.
    pub fn create(work_dir: &Path, bin: &Path, user: &SysUser) -> Result<Instance, DbEntityError> {
        reachable_by(work_dir, user)?;
        sweep_stale(work_dir);
        let mut random = [0u8; 8];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .map_err(|e| DbEntityError::Setup(format!("/dev/urandom: {e}")))?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = work_dir.join(format!("{PREFIX}{}-{hex}", std::process::id()));
        // The socket's path must fit in sun_path (107 bytes).
        if dir.join(".s.PGSQL.5432").as_os_str().len() > 100 {
            return Err(DbEntityError::Setup(format!(
                "work_dir {} is too long a path for a unix socket: choose a shorter one",
                work_dir.display()
            )));
        }
        // Registered first, so a signal from now on removes it.
        let reg = cleanup::register(&dir);
        // O_EXCL semantics: fails if anyone made that name first (then nothing is removed).
        if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            cleanup::forget(reg);
            return Err(DbEntityError::Setup(format!("{}: {e}", dir.display())));
        }
        Ok(Instance {
            dir,
            bin: bin.to_path_buf(),
            user: user.clone(),
            reg,
            postmaster: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn bin(&self, program: &str) -> PathBuf {
        self.bin.join(program)
    }

    /// Gives the folder (and what was put in it, e.g. a folder dump) to the instance's user,
    /// runs initdb and starts the server; returns once it accepts connections.
    pub fn start(&mut self, max_connections: u32) -> Result<(), DbEntityError> {
        chown_tree(&self.dir, &self.user)?;
        let data = self.dir.join("data");
        let initdb = self
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| DbEntityError::Setup(format!("{}: {e}", self.bin("initdb").display())))?;
        // Leads its own process group (see `command`): a signal now stops it too.
        cleanup::set_postmaster(self.reg, Some(initdb.id() as i32));
        let out = initdb.wait_with_output();
        cleanup::set_postmaster(self.reg, None);
        let out = out.map_err(|e| DbEntityError::Setup(format!("initdb: {e}")))?;
        if !out.status.success() {
            return Err(DbEntityError::Setup(format!(
                "initdb as {} failed ({}): {}",
                self.user.name,
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 8)
            )));
        }
        let log_path = self.dir.join("postgres.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| DbEntityError::Setup(format!("{}: {e}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(|e| DbEntityError::Setup(format!("{}: {e}", log_path.display())))?;
        let mut c = self.command("postgres");
        c.arg("-D")
            .arg(&data)
            .arg("-c")
            .arg("listen_addresses=")
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args(["-c", "unix_socket_permissions=0700"])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args([
                "-c",
                "synchronous_commit=off",
                "-c",
                "logging_collector=off",
            ])
            .arg("-c")
            .arg(format!("max_connections={max_connections}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal, so
        // the postmaster shuts down if bmbackup is killed outright (kill -9).
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                Ok(())
            });
        }
        let child = c.spawn().map_err(|e| {
            DbEntityError::Setup(format!("{}: {e}", self.bin("postgres").display()))
        })?;
        cleanup::set_postmaster(self.reg, Some(child.id() as i32));
        self.postmaster = Some(child);
        self.wait_ready(&log_path)?;
        let out = self
            .psql("postgres")
            .args(["-q", "-c", &format!("CREATE DATABASE {DATABASE}")])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| DbEntityError::Setup(format!("psql: {e}")))?;
        if !out.status.success() {
            return Err(DbEntityError::Setup(format!(
                "CREATE DATABASE in the throwaway PostgreSQL failed: {}",
                tail(&String::from_utf8_lossy(&out.stderr), 5)
            )));
        }
        Ok(())
    }

    fn wait_ready(&mut self, log: &Path) -> Result<(), DbEntityError> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(child) = self.postmaster.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.postmaster = None;
                    cleanup::set_postmaster(self.reg, None);
                    let text = std::fs::read_to_string(log).unwrap_or_default();
                    return Err(DbEntityError::Setup(format!(
                        "the throwaway PostgreSQL stopped at start ({status}): {}",
                        tail(&text, 8)
                    )));
                }
            }
            let ready = self
                .command("pg_isready")
                .arg("-h")
                .arg(&self.dir)
                .args(["-U", SUPERUSER, "-d", "postgres", "-q"])
                .stdin(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(DbEntityError::Setup(
                    "the throwaway PostgreSQL did not accept connections within 120 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `program` of the instance's version, as its user, in its process group (so a signal's
    /// teardown kills it too).
    pub fn command(&self, program: &str) -> Command {
        let mut c = self.user.command(&self.bin(program), &self.dir);
        // Never in our process group: a terminal's Ctrl-C reaches bmbackup only, which tears
        // the instance down in order.
        match &self.postmaster {
            Some(p) => c.process_group(p.id() as i32),
            None => c.process_group(0),
        };
        c
    }

    /// psql on `db` of the instance: no psqlrc, its socket, its superuser.
    pub fn psql(&self, db: &str) -> Command {
        let mut c = self.command("psql");
        c.arg("-X")
            .arg("-h")
            .arg(&self.dir)
            .args(["-U", SUPERUSER, "-d", db]);
        c
    }

    /// Stops the server and removes the folder, reporting a folder that could not be removed.
    pub fn close(mut self) -> Result<(), DbEntityError> {
        self.postmaster = None;
        cleanup::teardown(self.reg)
            .map_err(|e| DbEntityError::Setup(format!("removing {}: {e}", self.dir.display())))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(e) = cleanup::teardown(self.reg) {
            log::warn!("removing {}: {e}", self.dir.display());
        }
    }
}

/// The last `n` lines of `text`, joined by " | ".
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// `user` must be able to reach `dir` (search permission on it and every folder above).
fn reachable_by(dir: &Path, user: &SysUser) -> Result<(), DbEntityError> {
    let md = std::fs::metadata(dir).map_err(|e| {
        DbEntityError::Setup(format!(
            "work_dir {}: {e} (make it, or set work_dir)",
            dir.display()
        ))
    })?;
    if !md.is_dir() {
        return Err(DbEntityError::Setup(format!(
            "work_dir {} is not a folder",
            dir.display()
        )));
    }
    for d in dir.ancestors() {
        let Ok(md) = std::fs::metadata(d) else {
            continue;
        };
        let mode = md.mode();
        let ok = mode & 0o001 != 0
            || (md.uid() == user.uid && mode & 0o100 != 0)
            || (md.gid() == user.gid && mode & 0o010 != 0);
        if !ok {
            return Err(DbEntityError::Setup(format!(
                "{} cannot reach work_dir {}: {} is {:o} owned by uid {}; set work_dir to a folder it can reach (e.g. /var/tmp) or chmod o+x {}",
                user.name,
                dir.display(),
                d.display(),
                mode & 0o7777,
                md.uid(),
                d.display()
            )));
        }
    }
    Ok(())
}

/// Removes private folders of runs whose process is gone (killed outright). Their postmaster
/// got SIGQUIT when they died; a folder whose postmaster still runs is left alone.
fn sweep_stale(work_dir: &Path) {
    let Ok(rd) = std::fs::read_dir(work_dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let pidfile = e.path().join("data/postmaster.pid");
        let postmaster = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        if postmaster.is_some_and(alive) {
            log::warn!(
                "{} is a killed run's, but its PostgreSQL still runs: left alone",
                e.path().display()
            );
            continue;
        }
        match std::fs::remove_dir_all(e.path()) {
            Ok(()) => log::info!("removed {}, left by a killed run", e.path().display()),
            Err(err) => log::warn!("{}: {err}", e.path().display()),
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Gives `dir` and everything in it to `user`, without following symlinks. Only root's
/// processes have touched it so far, so nothing can be swapped under us.
fn chown_tree(dir: &Path, user: &SysUser) -> Result<(), DbEntityError> {
    // SAFETY: a plain system call.
    if unsafe { libc::getuid() } != 0 {
        return Ok(());
    }
    let err =
        |p: &Path, e: std::io::Error| DbEntityError::Setup(format!("chown {}: {e}", p.display()));
    std::os::unix::fs::lchown(dir, Some(user.uid), Some(user.gid)).map_err(|e| err(dir, e))?;
    let md = std::fs::symlink_metadata(dir).map_err(|e| err(dir, e))?;
    if md.is_dir() {
        for e in std::fs::read_dir(dir).map_err(|e| err(dir, e))? {
            let e = e.map_err(|e| err(dir, e))?;
            let p = e.path();
            if e.file_type().map_err(|x| err(&p, x))?.is_dir() {
                chown_tree(&p, user)?;
            } else {
                std::os::unix::fs::lchown(&p, Some(user.uid), Some(user.gid))
                    .map_err(|x| err(&p, x))?;
            }
        }
    }
    Ok(())
}
