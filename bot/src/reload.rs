//! Reloading the configuration file: the command catalog and the access groups, rebuilt
//! and swapped in while the bot runs (the `reload` built-in, and SIGHUP).
//!
//! The new file is checked exactly as at start (`Bot::check`): if anything is wrong, every
//! problem is reported and the catalog in force stays. Only `[[command]]` and `[acl]` are
//! taken from the new file; the broker, the store and the workers are those the process
//! started with.

use std::path::{Path, PathBuf};

use config::{Config, ConfigErrors};

use crate::acl::AccessPolicy;
use crate::bot::Bot;
use crate::commands::CommandTable;

/// The configuration file a bot was started with.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
}

/// What a reload put in force.
#[derive(Debug)]
pub struct Reloaded {
    pub table: CommandTable,
    pub policy: AccessPolicy,
    /// How many commands the file declares (the catalog has the built-ins too).
    pub configured: usize,
}

impl ConfigFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ConfigFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and checks the file; on any problem, all of them.
    pub fn load(&self) -> Result<Reloaded, ConfigErrors> {
        let config = Config::load(&self.path)?;
        let table = Bot::check(&config)?;
        Ok(Reloaded {
            table,
            policy: AccessPolicy::new(&config.acl),
            configured: config.commands.len(),
        })
    }
}
