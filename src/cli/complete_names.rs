//! `bmbackup complete-names KIND` (hidden): the names shell completion offers, one a line —
//! `parts` (of the config file and the store), `hosts`, `names` (snapshot folder names, for
//! `--at`) and `snapshots` (HOST/PART/NAME and HOST/PART/last, for `ls`, `diff`, `forget`). The
//! bash and fish completions `bmbackup docs` writes call it ([`BASH`], [`FISH`]).

use super::{Cli, EXIT_OK};
use clap::{Args, ValueEnum};
use std::collections::BTreeSet;

#[derive(Args, Debug)]
pub struct CompleteNamesArgs {
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    Parts,
    Hosts,
    Names,
    Snapshots,
}

pub fn run(cli: &Cli, a: &CompleteNamesArgs) -> anyhow::Result<i32> {
    let (common, repo) = cli.open_repo()?;
    let all = repo.snapshots()?;
    let mut out = BTreeSet::new();
    match a.kind {
        Kind::Parts => {
            out.extend(
                common
                    .config
                    .parts
                    .keys()
                    .map(|k| k.trim_matches('/').to_string()),
            );
            out.extend(all.iter().map(|s| s.manifest.part.clone()));
        }
        Kind::Hosts => out.extend(all.iter().map(|s| s.manifest.host.clone())),
        Kind::Names => {
            out.insert("last".to_string());
            out.extend(
                crate::repo::named_snapshots(&all)
                    .into_iter()
                    .map(|(_, n)| n),
            );
        }
        Kind::Snapshots => {
            for (s, name) in crate::repo::named_snapshots(&all) {
                let m = &s.manifest;
                out.insert(format!("{}/{}/{name}", m.host, m.part));
                out.insert(format!("{}/{}/last", m.host, m.part));
            }
        }
    }
    for name in out {
        println!("{name}");
    }
    Ok(EXIT_OK)
}

/// Appended to clap's bash completion: the store's names after `--part`, `--host` and `--at`,
/// and snapshots as the arguments of `ls`, `diff` and `forget`; clap's completion otherwise.
pub const BASH: &str = r#"
# Names from the config file and the store (bmbackup complete-names).
_bmbackup_names() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} kind=
    case "$prev" in
        --part) kind=parts ;;
        --host) kind=hosts ;;
        --at) kind=names ;;
        *) case "${COMP_WORDS[1]}" in
               ls|diff|forget) [[ $cur == -* ]] || kind=snapshots ;;
           esac ;;
    esac
    if [[ -n $kind ]]; then
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$(bmbackup complete-names "$kind" 2>/dev/null)" -- "$cur"))
        return 0
    fi
    _bmbackup "$@"
}
complete -F _bmbackup_names -o bashdefault -o default bmbackup
"#;

/// Appended to clap's fish completion.
pub const FISH: &str = r#"
# Names from the config file and the store (bmbackup complete-names).
complete -c bmbackup -l part -f -a '(bmbackup complete-names parts 2>/dev/null)'
complete -c bmbackup -l host -f -a '(bmbackup complete-names hosts 2>/dev/null)'
complete -c bmbackup -l at -f -a '(bmbackup complete-names names 2>/dev/null)'
complete -c bmbackup -n '__fish_seen_subcommand_from ls diff forget' -f -a '(bmbackup complete-names snapshots 2>/dev/null)'
"#;
