//! `bmbackup docs DIR` (hidden; run by `make install` and `make deb`): man pages (clap_mangen)
//! and bash and zsh completions (clap_complete) written from the argument definitions, so they
//! never disagree with `--help`.

use super::{Cli, EXIT_OK};
use clap::{Args, CommandFactory};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DocsArgs {
    /// Folder to write man1/*.1, bash/bmbackup and zsh/_bmbackup into.
    pub dir: PathBuf,
}

pub fn run(a: &DocsArgs) -> anyhow::Result<i32> {
    let man = a.dir.join("man1");
    std::fs::create_dir_all(&man)?;
    let mut cmd = Cli::command();
    cmd.build();
    write_man(&man, &cmd, "bmbackup")?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("bmbackup-{}", sub.get_name());
        write_man(
            &man,
            &sub.clone().name(name.clone()).display_name(&name),
            &name,
        )?;
    }
    for (shell, folder, file) in [
        (clap_complete::Shell::Bash, "bash", "bmbackup"),
        (clap_complete::Shell::Zsh, "zsh", "_bmbackup"),
    ] {
        let dir = a.dir.join(folder);
        std::fs::create_dir_all(&dir)?;
        let mut out = std::fs::File::create(dir.join(file))?;
        clap_complete::generate(shell, &mut Cli::command(), "bmbackup", &mut out);
    }
    Ok(EXIT_OK)
}

fn write_man(dir: &Path, cmd: &clap::Command, name: &str) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)?;
    Ok(())
}
