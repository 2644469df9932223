//! `leoflow uninstall [--purge] [--yes]`: removes what Leoflow put on this machine. Without
//! `--purge`, everything in the Leoflow home (configuration, admin, web UI, downloaded
//! PostgreSQL, caches) except the managed cluster's data; with `--purge`, the home
//! entirely, the managed cluster wherever it lives, and the Docker Postgres with its
//! volume. The managed Postgres is stopped first. Projects are never touched, and neither
//! are the binaries (a package manager or `cargo uninstall` owns those).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use leoflow_postgres::cluster::{Cluster, ClusterConfig, StopMode};

use crate::cli::UninstallArgs;
use crate::home::Home;
use crate::lite::datastore::{self, ServerSource};
use crate::{console, docker, embedded_postgres, Error};

/// `leoflow uninstall`.
pub fn run(args: &UninstallArgs) -> Result<(), Error> {
    let home = Home::resolve()?;
    let clusters: Vec<PathBuf> = [home.postgres_dir(), datastore::fallback_cluster_dir(&home)]
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    let mut remove = Vec::new();
    if args.purge {
        remove.push(home.root().to_path_buf());
        remove.extend(
            clusters
                .iter()
                .filter(|d| !d.starts_with(home.root()))
                .cloned(),
        );
    } else if home.root().is_dir() {
        let entries = std::fs::read_dir(home.root()).map_err(|source| Error::Io {
            action: "list",
            path: home.root().to_path_buf(),
            source,
        })?;
        remove.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| *p != home.postgres_dir()),
        );
    }
    let runtimes = embedded_postgres::runtimes_dir(&home);
    if !runtimes.starts_with(home.root()) && runtimes.exists() {
        remove.push(runtimes);
    }
    let docker_volume = args.purge && home.compose_file().is_file();
    if remove.iter().all(|p| !p.exists()) && !docker_volume {
        println!(
            "nothing to remove: {} does not exist",
            home.root().display()
        );
        return Ok(());
    }

    println!("This removes:");
    for path in &remove {
        println!("  {}", path.display());
    }
    if docker_volume {
        println!(
            "  the Docker Postgres ({}) and its volume",
            docker::project_name(&home)
        );
    }
    if !args.purge {
        for dir in &clusters {
            println!(
                "It keeps {} (the database: runs, logs, XComs); `leoflow uninstall --purge` removes it too.",
                dir.display()
            );
        }
    }
    let exe =
        std::env::current_exe().map_or_else(|_| "leoflow".into(), |p| p.display().to_string());
    println!(
        "Your projects are not touched, and neither is the leoflow binary ({exe}) nor leoflow-agent: remove them with `cargo uninstall leoflow-lite leoflow-agent` or `rm`."
    );
    if !args.yes {
        confirm()?;
    }

    for dir in &clusters {
        stop_cluster(&home, dir)?;
    }
    if docker_volume {
        docker::remove_postgres(&home)?;
    }
    for path in &remove {
        remove_path(path)?;
    }
    println!("{} Leoflow removed", console::green("✓"));
    Ok(())
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm() -> Result<(), Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::Usage(
            "`leoflow uninstall` deletes files and there is no terminal to ask on; pass --yes to confirm".into(),
        ));
    }
    print!("Type 'yes' to confirm: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Usage(format!("cannot read the answer: {e}")))?;
    if matches!(line.trim().to_ascii_lowercase().as_str(), "yes" | "y") {
        Ok(())
    } else {
        Err(Error::Usage("not confirmed; nothing was removed".into()))
    }
}

/// Stops a managed cluster that is running in `dir`, with whichever server binaries are
/// there (never downloading any).
fn stop_cluster(home: &Home, dir: &Path) -> Result<(), Error> {
    if !dir.join("data/postmaster.pid").exists() {
        return Ok(());
    }
    let bin = match datastore::server_source(home) {
        Ok(ServerSource::System(b)) => Some(b.dir),
        Ok(ServerSource::Downloaded(bin)) => Some(bin),
        Ok(ServerSource::ToDownload) | Err(_) => None,
    };
    let Some(bin) = bin else {
        return Err(Error::Usage(format!(
            "a PostgreSQL server may still run on {} and no server binaries are left to stop it; stop `leoflow lite` (or kill the postgres process) and run this again",
            dir.display()
        )));
    };
    let cluster = Cluster::new(ClusterConfig {
        bin_dir: Some(bin),
        ..ClusterConfig::new(dir)
    })?;
    if cluster.is_running() {
        println!("stopping the managed PostgreSQL …");
        cluster.stop(StopMode::Fast)?;
    }
    Ok(())
}

fn remove_path(path: &Path) -> Result<(), Error> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|source| Error::Io {
        action: "remove",
        path: path.to_path_buf(),
        source,
    })
}
