//! `bmbackup docs DIR` (hidden; run by `make install` and `make deb`): man pages (clap_mangen,
//! plus the sections of [`super::man_extra`], and bmbackup.toml(5)) and bash, zsh and fish
//! completions (clap_complete) written from the argument definitions, so they never disagree
//! with `--help`.

use super::complete_names::{BASH, FISH};
use super::man_extra;
use super::{Cli, EXIT_OK};
use clap::{Args, CommandFactory};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DocsArgs {
    /// Folder to write man1/*.1, man5/bmbackup.toml.5, bash/bmbackup, zsh/_bmbackup and
    /// fish/bmbackup.fish into.
    pub dir: PathBuf,
}

pub fn run(a: &DocsArgs) -> anyhow::Result<i32> {
    let man = a.dir.join("man1");
    std::fs::create_dir_all(&man)?;
    // No `help` command in the pages: it has no page of its own to refer to.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let commands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .cloned()
        .collect();
    let names: Vec<String> = commands.iter().map(|c| c.get_name().to_string()).collect();
    let main_extra = format!(
        "{}{}{}",
        man_extra::EXIT_STATUS,
        man_extra::MAIN_EXTRA,
        man_extra::see_also_main(&names)
    );
    write_man(&man, &cmd, "bmbackup", &main_extra)?;
    let command_extra = format!("{}{}", man_extra::EXIT_STATUS, man_extra::SEE_ALSO_COMMAND);
    for sub in commands {
        let name = format!("bmbackup-{}", sub.get_name());
        write_man(
            &man,
            &sub.name(name.clone()).display_name(&name),
            &name,
            &command_extra,
        )?;
    }
    let man5 = a.dir.join("man5");
    std::fs::create_dir_all(&man5)?;
    std::fs::write(
        man5.join("bmbackup.toml.5"),
        man_extra::config_page(env!("CARGO_PKG_VERSION")),
    )?;
    // bash and fish also complete part and snapshot names, from the store.
    for (shell, folder, file, names) in [
        (clap_complete::Shell::Bash, "bash", "bmbackup", BASH),
        (clap_complete::Shell::Zsh, "zsh", "_bmbackup", ""),
        (clap_complete::Shell::Fish, "fish", "bmbackup.fish", FISH),
    ] {
        let dir = a.dir.join(folder);
        std::fs::create_dir_all(&dir)?;
        let mut out = std::fs::File::create(dir.join(file))?;
        clap_complete::generate(shell, &mut Cli::command(), "bmbackup", &mut out);
        out.write_all(names.as_bytes())?;
    }
    Ok(EXIT_OK)
}

/// The page clap_mangen renders, with `extra` (roff sections) before its VERSION section.
fn write_man(dir: &Path, cmd: &clap::Command, name: &str, extra: &str) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut page)?;
    }
    if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        man.render_extra_section(&mut page)?;
    }
    page.extend_from_slice(extra.as_bytes());
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    std::fs::write(dir.join(format!("{name}.1")), page)?;
    Ok(())
}
