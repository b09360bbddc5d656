//! The settings of a backup run, from one place: the config, plus what a front end may
//! override (the CLI's flags). The CLI's `backup` and the console's "Back up now" both build
//! their [`RunPlan`] with [`plan_run`], so a run started from either compresses, spreads over
//! threads and yields to the mail server alike (the console once used zstd level 3 and every
//! CPU where the nightly run used the config's level and `threads`).

use super::run::{planned_parts, RunError, RunObserver, RunPlan};
use super::BackupOptions;
use crate::config::Config;
use std::path::PathBuf;
use std::time::Duration;

/// What a front end may set over the config for one run.
#[derive(Debug, Clone, Default)]
pub struct RunOverrides {
    /// `--part NAME=PATH` arguments: back up these instead of the config's parts.
    pub parts: Vec<String>,
    pub compression_level: Option<i32>,
    pub threads: Option<usize>,
    pub started_at_ns: Option<i64>,
    pub one_file_system: bool,
    pub lock_wait: Option<Duration>,
}

/// How long a run waits for a running prune or repair, or another backup of the same part,
/// when the front end does not say.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(3600);

/// The run of `config` on `host` into `store`, with `o` over the config.
pub fn plan_run(
    config: &Config,
    store: PathBuf,
    host: String,
    o: &RunOverrides,
    observer: &dyn RunObserver,
) -> Result<RunPlan, RunError> {
    let mut parts = planned_parts(config, &o.parts, observer)?;
    if o.compression_level.is_some() {
        // The command line's level is over the config's per-part levels too.
        for p in &mut parts {
            p.spec.compression_level = None;
        }
    }
    let lock_wait = o.lock_wait.unwrap_or(DEFAULT_LOCK_WAIT);
    Ok(RunPlan {
        parts,
        options: BackupOptions {
            host,
            compression_level: o
                .compression_level
                .or(config.compression_level)
                .unwrap_or(super::DEFAULT_COMPRESSION_LEVEL),
            threads: o
                .threads
                .or(config.threads)
                .filter(|&n| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            started_at_ns: o.started_at_ns,
            one_file_system: o.one_file_system || config.one_file_system,
            lock_wait,
        },
        store,
        lock_wait,
        retention: config.retention.clone(),
        post_backup_hook: config.post_backup_hook.clone(),
        metrics_dir: config.metrics_dir.clone(),
        background: config.priority != crate::config::Priority::Normal,
    })
}

/// Makes the calling thread, and the threads it starts from now on, yield to the mail server
/// as the nightly unit does (`Nice=19`, `CPUSchedulingPolicy=batch`, `IOSchedulingClass=idle`):
/// a run started by hand or from the console beside the live server must not slow it down.
/// Best effort: a refusal (a sandbox) is logged, not an error.
pub fn yield_to_the_server() {
    // On Linux these calls with "who" 0 change the calling thread only, and new threads
    // inherit the nice value and the policy of the thread that starts them.
    // SAFETY: plain system calls on the calling thread, no memory passed but a valid param.
    unsafe {
        if libc::setpriority(libc::PRIO_PROCESS, 0, 19) != 0 {
            log::debug!("nice 19 not set: {}", std::io::Error::last_os_error());
        }
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) != 0 {
            log::debug!("SCHED_BATCH not set: {}", std::io::Error::last_os_error());
        }
        // ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT)
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3;
        if libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << 13,
        ) != 0
        {
            log::debug!(
                "idle I/O class not set: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_decides_unless_overridden() {
        let config: Config = toml::from_str(
            "compression_level = 5\nthreads = 3\n[parts.\"mail/imap\"]\npath = \"/x\"\n",
        )
        .unwrap();
        struct Quiet;
        impl RunObserver for Quiet {
            fn event(&self, _: crate::backup::run::RunEvent<'_>) {}
        }
        let quiet = Quiet;
        let p = plan_run(
            &config,
            "/s".into(),
            "h".into(),
            &RunOverrides::default(),
            &quiet,
        )
        .unwrap();
        assert_eq!(p.options.compression_level, 5);
        assert_eq!(p.options.threads, 3);
        assert_eq!(p.parts.len(), 1);
        let o = RunOverrides {
            compression_level: Some(2),
            threads: Some(1),
            ..RunOverrides::default()
        };
        let p = plan_run(&config, "/s".into(), "h".into(), &o, &quiet).unwrap();
        assert_eq!(p.options.compression_level, 2);
        assert_eq!(p.options.threads, 1);
        let none: Config = toml::from_str("[parts.\"mail/imap\"]\npath = \"/x\"\n").unwrap();
        let p = plan_run(
            &none,
            "/s".into(),
            "h".into(),
            &RunOverrides::default(),
            &quiet,
        )
        .unwrap();
        assert_eq!(
            p.options.compression_level,
            crate::backup::DEFAULT_COMPRESSION_LEVEL
        );
    }

    #[test]
    fn a_thread_can_step_back() {
        // SAFETY: reading the calling thread's nice value.
        let before = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        std::thread::spawn(|| {
            yield_to_the_server();
            // SAFETY: reading the calling thread's nice value.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            assert_eq!(nice, 19);
            // Threads started afterwards inherit it.
            let child = std::thread::spawn(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) });
            assert_eq!(child.join().unwrap(), 19);
        })
        .join()
        .unwrap();
        // SAFETY: as above; this thread was not changed.
        assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, before);
    }
}
