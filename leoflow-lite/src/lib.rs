//! The leoflow command-line tool and the Lite edition: `init`, `validate`, `compile`,
//! `version`, `setup`, `lite`, `doctor`, `db` (migrate, reset, backup, restore),
//! `uninstall` and the remote commands (`auth`, `push`, `runs`). `main.rs` only parses and reports; each
//! command lives in its own module.

pub mod backup;
pub mod cli;
pub mod compile;
pub mod console;
pub mod db;
pub mod diagnostic;
pub mod docker;
pub mod doctor;
pub mod download;
pub mod embedded_postgres;
pub mod home;
pub mod image;
pub mod init;
pub mod lite;
pub mod overlay;
pub mod progress;
pub mod project;
pub mod remote;
pub mod setup;
pub mod source;
pub mod uninstall;
pub mod validate;
pub mod version;

use std::io;
use std::path::PathBuf;

use leoflow_shim::Shim;

use crate::diagnostic::Diagnostics;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in the user's files, each `file:line: message`.
    #[error("{0}")]
    Failed(Diagnostics),
    /// The Python side could not run at all.
    #[error(transparent)]
    Shim(#[from] leoflow_shim::Error),
    /// A command used wrongly, or a path that names nothing usable.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Home(#[from] home::Error),
    #[error(transparent)]
    Download(#[from] download::Error),
    /// The managed Postgres cluster.
    #[error(transparent)]
    Cluster(#[from] leoflow_postgres::cluster::Error),
    /// The datastore (connection, migrations).
    #[error(transparent)]
    Postgres(#[from] leoflow_postgres::Error),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The shim run by `python` (else `$LEOFLOW_PYTHON`, else `python3`), materialised under
/// `$LEOFLOW_HOME` or the user cache directory.
pub fn shim(python: Option<PathBuf>) -> Shim {
    Shim::new(python)
}
