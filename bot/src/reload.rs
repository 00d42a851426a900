//! Checking a configuration, at start and again while the bot runs: [`check`] compiles
//! it into a `Catalog` (commands, access policy, schedules) and checks what the loader
//! cannot see (the SSH authorized_keys file); [`Reloader`] reads the file again (the
//! `reload` built-in, SIGHUP) and puts the new catalog in force for every reader.
//!
//! If anything is wrong, every problem is reported and the catalog in force stays. Only
//! `[[command]]`, `[acl]` and `[[schedule]]`/`[[shipper]]` are taken from the new file;
//! the broker, the store, the adapters and the workers are those the process started with.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use commands::{Catalog, LiveCatalog, NativeTasks};
use config::{Config, ConfigErrors};
use worker::TaskRegistry;

use crate::ssh::keys::AuthorizedKeys;

/// Checks `config` as a start would, without starting anything: what `--check-config`,
/// `Bot::start` and every reload run. In embedded mode the commands are checked against
/// the native tasks of this process's own worker.
pub fn check(config: &Config) -> Result<Catalog, ConfigErrors> {
    let tasks = config.is_embedded().then(standard_tasks);
    let catalog = Catalog::build(config, tasks.as_ref())?;
    if let Some(ssh) = &config.ssh {
        AuthorizedKeys::load(&ssh.authorized_keys)?;
    }
    Ok(catalog)
}

/// The native tasks of a standard worker, and the slots each reads.
fn standard_tasks() -> NativeTasks {
    let registry = TaskRegistry::standard();
    NativeTasks::new(
        registry
            .names()
            .map(|name| (name, registry.params(name).unwrap_or_default())),
    )
}

/// What a reload put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The file read.
    pub source: String,
    /// Commands in the new catalog, built-ins included.
    pub commands: usize,
    /// Commands the file declares.
    pub configured: usize,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("this bot was started without a configuration file")]
    NoFile,
    #[error("{0}")]
    Refused(#[source] ConfigErrors),
}

/// Reads the configuration file again into the live catalog.
pub struct Reloader {
    file: OnceLock<PathBuf>,
    catalog: LiveCatalog,
}

impl Reloader {
    pub fn new(catalog: LiveCatalog) -> Self {
        Reloader {
            file: OnceLock::new(),
            catalog,
        }
    }

    /// Names the file `reload` and SIGHUP read again (set once, at start).
    pub fn set_file(&self, path: impl Into<PathBuf>) {
        let _ = self.file.set(path.into());
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.get().map(PathBuf::as_path)
    }

    /// Reads and checks the file; puts it in force only when it has no problem. Logs
    /// the outcome, every problem included.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let path = self.file().ok_or(ReloadError::NoFile)?;
        let source = path.display().to_string();
        let checked = Config::load(path).and_then(|config| check(&config));
        match checked {
            Ok(catalog) => {
                let reloaded = Reloaded {
                    source: source.clone(),
                    commands: catalog.commands.catalog.len(),
                    configured: catalog.configured,
                };
                self.catalog.replace(catalog);
                tracing::info!(config = %source, commands = reloaded.commands, "configuration reloaded");
                Ok(reloaded)
            }
            Err(errors) => {
                tracing::warn!(config = %source, problems = errors.0.len(), "reload refused:\n{errors}");
                Err(ReloadError::Refused(errors))
            }
        }
    }
}
