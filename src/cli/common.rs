//! What commands that open an existing store share: the config, the store path and the
//! repository, each from the command line, else the environment, else the config file.

use super::Cli;
use std::path::PathBuf;

/// Settings shared by commands that open an existing store.
pub(crate) struct Common {
    pub config: crate::config::Config,
    pub store: PathBuf,
}

impl Cli {
    /// The config file (explicit, else the default one), whose `[s3]` settings then apply to
    /// every store opened by this process.
    pub(crate) fn load_config(&self) -> anyhow::Result<crate::config::Config> {
        let config = crate::config::Config::load_default_or(self.config.as_deref())?;
        crate::store::s3::configure(config.s3.clone());
        Ok(config)
    }

    pub(crate) fn common(&self) -> anyhow::Result<Common> {
        let config = self.load_config()?;
        let store = self
            .store
            .clone()
            .or_else(|| config.store.clone())
            .ok_or_else(|| {
                anyhow::anyhow!("no store given: use --store STORE, BMBACKUP_STORE or `store` in the config file")
            })?;
        Ok(Common { config, store })
    }

    pub(crate) fn open_repo(&self) -> anyhow::Result<(Common, crate::repo::Repository)> {
        let common = self.common()?;
        let cache = self
            .cache_dir
            .clone()
            .or_else(|| common.config.cache_dir.clone());
        let repo = crate::repo::Repository::open(&common.store, cache.as_deref())?;
        Ok((common, repo))
    }
}
