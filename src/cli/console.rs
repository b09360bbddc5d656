//! `bmbackup console [--listen ADDR:PORT] [--password-file FILE] [--set-password]`: serves the
//! admin web console ([`crate::console`]), or sets its password (read from standard input).

use super::restore_shared::host_or_default;
use super::{Cli, EXIT_OK};
use crate::console::{self, Settings};
use clap::Args;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// Address and port to listen on [default: `listen` of [console] in the config, else
    /// 127.0.0.1:8470]. Put a TLS reverse proxy in front for remote access.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// The password file [default: `password_file` of [console], else `console-password` beside
    /// the config file, else /etc/bmbackup/console-password].
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Read a new password from standard input (one line), store its hash and exit.
    #[arg(long)]
    pub set_password: bool,
    /// This server's address as its backups record it [default: `host` of the config, else the
    /// primary IPv4 address].
    #[arg(long)]
    pub host: Option<String>,
    /// Threads answering requests.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
}

pub fn run(cli: &Cli, a: &ConsoleArgs) -> anyhow::Result<i32> {
    let common = cli.common()?;
    let config_path = cli.config.clone().or_else(|| {
        let d = PathBuf::from(crate::config::DEFAULT_CONFIG);
        d.exists().then_some(d)
    });
    let password_file = a
        .password_file
        .clone()
        .or_else(|| common.config.console.password_file.clone())
        .unwrap_or_else(|| console::default_password_file(config_path.as_deref()));
    if a.set_password {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprint!("New console password (shown as typed; or pipe it in): ");
        }
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        console::set_password(&password_file, line.trim_end_matches(['\n', '\r']))?;
        crate::tell!("console password stored in {}", password_file.display());
        return Ok(EXIT_OK);
    }
    let listen = a
        .listen
        .clone()
        .or_else(|| common.config.console.listen.clone())
        .unwrap_or_else(|| console::DEFAULT_LISTEN.to_string());
    let listen = listen.parse().map_err(|e| {
        super::UsageError(format!(
            "--listen {listen:?}: {e} (give ADDR:PORT, e.g. 127.0.0.1:8470)"
        ))
    })?;
    console::serve(Settings {
        listen,
        password_file,
        store: common.store.clone(),
        cache_dir: cli
            .cache_dir
            .clone()
            .or_else(|| common.config.cache_dir.clone()),
        host: host_or_default(a.host.as_deref(), &common),
        config: common.config,
        config_path,
        threads: a.threads,
    })?;
    Ok(EXIT_OK)
}
