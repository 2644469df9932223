//! `leoflow doctor`: a read-only report on what `leoflow lite` needs from this host, each
//! problem with its fix. Exits non-zero when something required is missing.

use std::path::Path;
use std::process::{Command, Stdio};

use leoflow_postgres::cluster::Binaries;

use crate::cli::DoctorArgs;
use crate::console;
use crate::home::Home;
use crate::Error;

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
        postgres(),
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

fn postgres() -> Check {
    let found = Binaries::find()
        .map(|b| {
            format!(
                "PostgreSQL {} in {} (managed datastore)",
                b.version,
                b.dir.display()
            )
        })
        .map_err(Error::from);
    required("postgres", found)
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
    let daemon = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Check {
        name: "docker",
        ok: true,
        required: false,
        detail: if daemon {
            "a Docker daemon answers (Lite does not use it yet: datastore managed, executor subprocess)".into()
        } else {
            "no Docker daemon (not needed: Lite uses a managed PostgreSQL and the subprocess executor)".into()
        },
    }
}
