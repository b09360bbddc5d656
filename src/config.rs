//! The configuration file (`/etc/bmbackup/bmbackup.toml` by default): the store, this server's
//! address, compression and the parts to back up. Unknown keys are errors so a typo never
//! silently disables a part.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG: &str = "/etc/bmbackup/bmbackup.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path}: {detail}")]
    Parse { path: String, detail: String },
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: Option<PathBuf>,
    pub host: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub compression_level: Option<i32>,
    #[serde(default)]
    pub parts: BTreeMap<String, PartConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartConfig {
    pub path: PathBuf,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }

    /// The explicit file, else the default one when it exists, else an empty config.
    pub fn load_default_or(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(p) => Self::load(p),
            None if Path::new(DEFAULT_CONFIG).exists() => Self::load(Path::new(DEFAULT_CONFIG)),
            None => Ok(Config::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts_and_rejects_typos() {
        let c = Config::parse(
            r#"store = "/srv/bmstore"
               compression_level = 5
               [parts."mail/imap"]
               path = "/var/spool/cyrus"
               [parts."mail/archive"]
               path = "/var/spool/bm-hsm"
               enabled = false"#,
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.parts.len(), 2);
        assert!(c.parts["mail/imap"].enabled);
        assert!(!c.parts["mail/archive"].enabled);
        assert!(Config::parse("stroe = \"/x\"", Path::new("t.toml")).is_err());
    }
}
