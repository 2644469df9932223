//! Docker for Lite: one probe of the daemon, shared by the datastore and the executor
//! choices (ADR 0030: `auto` means Docker when a daemon answers), and Lite's Postgres in a
//! container: `postgres:16` through `docker compose`, on a loopback port, with a named
//! volume, from a compose file materialised in the Leoflow home.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::home::Home;
use crate::Error;

/// The image of Lite's Docker Postgres.
pub const POSTGRES_IMAGE: &str = "postgres:16";

/// The answer of the Docker daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The daemon answered with its version.
    Answers { version: String },
    /// No daemon answered; why.
    Unreachable(String),
}

impl Probe {
    pub fn answers(&self) -> bool {
        matches!(self, Probe::Answers { .. })
    }
}

/// Asks the daemon for its version (`docker version`), for at most 10 s.
pub fn probe() -> Probe {
    probe_with(Path::new("docker"), Duration::from_secs(10))
}

fn probe_with(program: &Path, limit: Duration) -> Probe {
    let child = Command::new(program)
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Probe::Unreachable("the docker command is not installed".into())
        }
        Err(e) => return Probe::Unreachable(format!("cannot run docker: {e}")),
    };
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Probe::Unreachable(format!(
                    "`docker version` did not answer within {} s",
                    limit.as_secs()
                ));
            }
        }
    }
    match child.wait_with_output() {
        Ok(out) if out.status.success() => Probe::Answers {
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        },
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            Probe::Unreachable(format!(
                "`docker version` failed ({}): {}",
                out.status,
                first.trim()
            ))
        }
        Err(e) => Probe::Unreachable(format!("cannot run docker: {e}")),
    }
}

/// The compose project of a home: `leoflow-<first 12 hex digits of sha256(home path)>`, so
/// two homes never share a container or a volume.
pub fn project_name(home: &Home) -> String {
    let hash = hex::encode(Sha256::digest(home.root().as_os_str().as_encoded_bytes()));
    format!("leoflow-{}", &hash[..12])
}

/// The compose file of Lite's Docker Postgres, published on `127.0.0.1:port`.
pub fn compose_file(project: &str, port: u16) -> String {
    format!(
        r#"# Lite's Postgres in Docker, written by `leoflow lite --postgres docker`; rewritten on each start.
name: {project}
services:
  postgres:
    image: {POSTGRES_IMAGE}
    environment:
      POSTGRES_USER: leoflow
      POSTGRES_PASSWORD: leoflow
      POSTGRES_DB: leoflow
    ports:
      - "127.0.0.1:{port}:5432"
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U leoflow -d leoflow"]
      interval: 2s
      timeout: 5s
      retries: 30
    restart: unless-stopped
volumes:
  pgdata:
"#
    )
}

/// The URL of the Docker Postgres on `port`.
pub fn url(port: u16) -> String {
    format!("postgres://leoflow:leoflow@127.0.0.1:{port}/leoflow")
}

/// Starts (or finds running) the Docker Postgres of `home` and returns its URL. The
/// container keeps running after Lite stops, like any compose service.
pub fn start_postgres(home: &Home, probe: &Probe) -> Result<String, Error> {
    if let Probe::Unreachable(why) = probe {
        return Err(Error::Usage(format!(
            "Docker daemon not reachable: {why}. --postgres docker runs {POSTGRES_IMAGE} with `docker compose`: start Docker (or install it), or use --postgres managed (a local PostgreSQL under the Leoflow home)"
        )));
    }
    home.create()?;
    let port = port(home)?;
    let file = home.compose_file();
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    std::fs::write(&file, compose_file(&project_name(home), port)).map_err(io("write", &file))?;
    println!("  starting {POSTGRES_IMAGE} with docker compose on 127.0.0.1:{port} …");
    let spinner = crate::progress::spinner(&format!("waiting for {POSTGRES_IMAGE} to be healthy"));
    let out = Command::new("docker")
        .arg("compose")
        .arg("-f")
        .arg(&file)
        .args(["up", "-d", "--wait", "postgres"])
        .stdin(Stdio::null())
        .output();
    spinner.finish_and_clear();
    let out = out.map_err(|e| Error::Usage(format!("cannot run docker compose: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("port is already allocated")
            || stderr.contains("address already in use")
        {
            format!(
                "port {port} is taken: free it, edit {}, or use --postgres managed",
                home.docker_port_file().display()
            )
        } else if stderr.contains("is not a docker command")
            || stderr.contains("unknown shorthand flag")
        {
            "the docker compose plugin is missing: install it (Debian/Ubuntu: `sudo apt-get install docker-compose-plugin`), or use --postgres managed".into()
        } else {
            "is Docker running and can this user use it? Or use --postgres managed".into()
        };
        return Err(Error::Usage(format!(
            "`docker compose -f {} up` failed ({}): {}; {hint}",
            file.display(),
            out.status,
            stderr.trim()
        )));
    }
    Ok(url(port))
}

/// Removes the Docker Postgres of `home` and its volume (`leoflow uninstall --purge`).
pub fn remove_postgres(home: &Home) -> Result<bool, Error> {
    let file = home.compose_file();
    if !file.is_file() || !probe().answers() {
        return Ok(false);
    }
    let status = Command::new("docker")
        .arg("compose")
        .arg("-f")
        .arg(&file)
        .args(["down", "-v"])
        .stdin(Stdio::null())
        .status()
        .map_err(|e| Error::Usage(format!("cannot run docker compose: {e}")))?;
    if status.success() {
        Ok(true)
    } else {
        Err(Error::Usage(format!(
            "`docker compose -f {} down -v` failed ({status}); remove the container and its volume by hand",
            file.display()
        )))
    }
}

/// The port of the home's Docker Postgres: the one recorded, else the first free one from
/// 5432 (recorded).
fn port(home: &Home) -> Result<u16, Error> {
    let file = home.docker_port_file();
    if let Some(port) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse::<u16>().ok())
    {
        return Ok(port);
    }
    let port = (5432..5532)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .ok_or_else(|| Error::Usage("no free port between 5432 and 5531 for the Docker Postgres; use --postgres managed".into()))?;
    std::fs::write(&file, format!("{port}\n")).map_err(|source| Error::Io {
        action: "write",
        path: file.clone(),
        source,
    })?;
    Ok(port)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_compose_file_runs_postgres_16_on_loopback_with_a_volume() {
        let text = compose_file("leoflow-0123456789ab", 5433);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(doc["name"].as_str(), Some("leoflow-0123456789ab"));
        let pg = &doc["services"]["postgres"];
        assert_eq!(pg["image"].as_str(), Some("postgres:16"));
        assert_eq!(pg["ports"][0].as_str(), Some("127.0.0.1:5433:5432"));
        assert_eq!(pg["environment"]["POSTGRES_DB"].as_str(), Some("leoflow"));
        assert_eq!(
            pg["volumes"][0].as_str(),
            Some("pgdata:/var/lib/postgresql/data")
        );
        assert!(pg["healthcheck"]["test"][1]
            .as_str()
            .unwrap()
            .contains("pg_isready"));
        assert!(doc["volumes"].get("pgdata").is_some());
        assert_eq!(
            url(5433),
            "postgres://leoflow:leoflow@127.0.0.1:5433/leoflow"
        );
    }

    #[test]
    fn a_missing_or_silent_daemon_is_unreachable_with_the_reason() {
        let Probe::Unreachable(why) =
            probe_with(Path::new("/nonexistent/docker"), Duration::from_secs(1))
        else {
            panic!("a missing docker answered");
        };
        assert!(why.contains("not installed"), "{why}");

        let tmp = tempfile::tempdir().unwrap();
        let fake = tmp.path().join("docker");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let Probe::Unreachable(why) = probe_with(&fake, Duration::from_secs(5)) else {
            panic!("a failing docker answered");
        };
        assert!(why.contains("Cannot connect to the Docker daemon"), "{why}");

        std::fs::write(&fake, "#!/bin/sh\necho 27.3.1\n").unwrap();
        assert_eq!(
            probe_with(&fake, Duration::from_secs(5)),
            Probe::Answers {
                version: "27.3.1".into()
            }
        );
        let home = Home::at(tmp.path().join("home"));
        let err = start_postgres(&home, &Probe::Unreachable("no daemon".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Docker daemon not reachable: no daemon"),
            "{err}"
        );
        assert!(err.contains("--postgres managed"), "{err}");
    }
}
