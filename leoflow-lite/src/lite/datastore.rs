//! `--postgres auto|managed|docker|<DSN>`: where Lite's datastore lives. `auto` and
//! `managed` run a cluster of our own under `$LEOFLOW_HOME/postgres` on a Unix socket;
//! a `postgres://` DSN uses a server the user runs. Docker Postgres needs a Docker daemon
//! and is not available yet.

use std::path::Path;

use leoflow_postgres::cluster::{Cluster, ClusterConfig, Error as ClusterError, StopMode};
use sha2::{Digest, Sha256};

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

/// The managed cluster of `home` (found, not started): `<home>/postgres`, or — running as
/// root with a home the cluster's unprivileged account cannot reach, such as `/root` —
/// `/var/lib/leoflow/postgres-<hash of the home>`.
pub fn managed_cluster(home: &Home) -> Result<Cluster, Error> {
    match Cluster::new(ClusterConfig::new(home.postgres_dir())) {
        Err(ClusterError::Unreachable { .. }) => {
            let hash = hex::encode(Sha256::digest(home.root().as_os_str().as_encoded_bytes()));
            let dir = Path::new("/var/lib/leoflow").join(format!("postgres-{}", &hash[..12]));
            Ok(Cluster::new(ClusterConfig::new(dir))?)
        }
        other => Ok(other?),
    }
}

/// Resolves `choice`, starting the managed cluster when it is the one (blocking).
pub fn resolve(choice: &Choice, home: &Home) -> Result<Datastore, Error> {
    match choice {
        Choice::Dsn(url) => Ok(Datastore {
            url: url.clone(),
            managed: None,
        }),
        Choice::Docker => Err(Error::Usage(
            "--postgres docker needs a Docker daemon, and Lite's Docker datastore is not available yet; use --postgres managed (the default: a local PostgreSQL under the Leoflow home) or --postgres postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
        )),
        Choice::Auto | Choice::Managed => {
            let cluster = managed_cluster(home)?;
            if cluster.init()? {
                println!(
                    "  created the managed PostgreSQL {} cluster in {}",
                    cluster.version(),
                    cluster.dir().display()
                );
            }
            let started_here = cluster.start()?;
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
