//! A Postgres cluster owned by Leoflow: the system server binaries (PostgreSQL 14 or newer)
//! run on a Unix socket only (no TCP) from a directory of ours. `initdb` once, `pg_ctl start`
//! and `stop`; when the process runs as root (which `initdb` refuses) the cluster belongs
//! to, and runs as, an unprivileged OS account. Lite's managed datastore and the tests'
//! throwaway clusters are both this.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The oldest PostgreSQL major version the cluster accepts.
pub const MIN_MAJOR: u32 = 14;

/// The socket's port number (part of its file name; nothing listens on TCP).
const PORT: u16 = 5432;

/// Unix socket paths are limited to 108 bytes, the terminating NUL included.
const MAX_SOCKET_PATH: usize = 107;

/// Why a cluster could not be found, created, started or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no PostgreSQL server binaries found (looked in $LEOFLOW_PG_BIN, /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin and PATH); install PostgreSQL {MIN_MAJOR} or newer (Debian/Ubuntu: `sudo apt-get install postgresql`, macOS: `brew install postgresql@16`), point LEOFLOW_PG_BIN at the directory holding initdb and pg_ctl, or pass --postgres postgres://… to use a server you run")]
    NoBinaries,
    #[error("{bin}/postgres is PostgreSQL {found}, but {MIN_MAJOR} or newer is needed; install a newer PostgreSQL or point LEOFLOW_PG_BIN at one")]
    TooOld { bin: PathBuf, found: String },
    #[error("`{bin}/postgres --version` failed ({message}); the server binaries are unusable on this host (a missing shared library?); reinstall PostgreSQL")]
    Broken { bin: PathBuf, message: String },
    #[error("running as root, and initdb refuses root, but there is no unprivileged `postgres` or `nobody` account to run the cluster as; create one (`useradd -r postgres`) or run as a regular user")]
    NoUnprivilegedUser,
    #[error("running as root, the cluster runs as the `{user}` account, which cannot reach {dir}; run as a regular user, set LEOFLOW_HOME to a directory `{user}` can reach (e.g. /var/lib/leoflow), or let it through with `chmod o+x` on the parent directories")]
    Unreachable { user: String, dir: PathBuf },
    #[error("the socket path {path} is longer than {MAX_SOCKET_PATH} bytes, the Unix limit; use a shorter LEOFLOW_HOME")]
    SocketPathTooLong { path: PathBuf },
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where a cluster lives and how its server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The cluster's directory: `data/` (the data directory), the socket and `server.log`.
    pub dir: PathBuf,
    /// The superuser initdb creates (connections authenticate by `trust` on the socket).
    pub superuser: String,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
    /// False for throwaway clusters: `initdb --no-sync`.
    pub durable: bool,
    /// The directory holding `initdb`, `pg_ctl` and `postgres`; `None` searches the system
    /// ([`Binaries::find`]).
    pub bin_dir: Option<PathBuf>,
}

impl ClusterConfig {
    /// A cluster in `dir` with superuser `leoflow` and default settings.
    pub fn new(dir: impl Into<PathBuf>) -> ClusterConfig {
        ClusterConfig {
            dir: dir.into(),
            superuser: "leoflow".into(),
            settings: Vec::new(),
            durable: true,
            bin_dir: None,
        }
    }
}

/// The server binaries found on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub dir: PathBuf,
    /// `postgres --version`'s version, e.g. `16.4`.
    pub version: String,
}

impl Binaries {
    /// `$LEOFLOW_PG_BIN`, the newest `/usr/lib/postgresql/<major>/bin`, `/usr/local/pgsql/bin`,
    /// then `PATH`; checked with `postgres --version`.
    pub fn find() -> Result<Binaries, Error> {
        Binaries::at(locate().ok_or(Error::NoBinaries)?)
    }

    /// The server binaries in `dir`, checked with `postgres --version` (the pre-flight that
    /// catches a missing shared library or a foreign platform).
    pub fn at(dir: PathBuf) -> Result<Binaries, Error> {
        if !has_server(&dir) {
            return Err(Error::Broken {
                bin: dir,
                message: "initdb, pg_ctl or postgres is missing".into(),
            });
        }
        let out = Command::new(dir.join("postgres"))
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Broken {
                bin: dir.clone(),
                message: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(Error::Broken {
                bin: dir,
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        // "postgres (PostgreSQL) 16.4 (Debian 16.4-1)"
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string();
        let major = version
            .split(['.', 'b', 'r'])
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        match major {
            Some(m) if m >= MIN_MAJOR => Ok(Binaries { dir, version }),
            _ => Err(Error::TooOld {
                bin: dir,
                found: text.trim().to_string(),
            }),
        }
    }
}

/// A cluster directory and the binaries that run it. Dropping it does not stop the server.
#[derive(Debug, Clone)]
pub struct Cluster {
    bin: PathBuf,
    version: String,
    dir: PathBuf,
    data: PathBuf,
    superuser: String,
    settings: Vec<(String, String)>,
    durable: bool,
    run_as: Option<String>,
}

/// How `stop` treats connected sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnects sessions and shuts down cleanly.
    Fast,
    /// Quits without a shutdown checkpoint (crash recovery on the next start).
    Immediate,
}

impl StopMode {
    fn as_str(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

impl Cluster {
    /// Pre-flight: finds the binaries, the account to run as, and checks the socket path.
    /// Creates `config.dir` (owned by that account). Starts nothing.
    pub fn new(config: ClusterConfig) -> Result<Cluster, Error> {
        let binaries = match config.bin_dir {
            Some(dir) => Binaries::at(dir)?,
            None => Binaries::find()?,
        };
        let run_as = if is_root() {
            Some(unprivileged_user().ok_or(Error::NoUnprivilegedUser)?)
        } else {
            None
        };
        let dir = std::path::absolute(&config.dir).map_err(|source| Error::Io {
            action: "resolve",
            path: config.dir.clone(),
            source,
        })?;
        let socket = dir.join(format!(".s.PGSQL.{PORT}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::SocketPathTooLong { path: socket });
        }
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let cluster = Cluster {
            bin: binaries.dir,
            version: binaries.version,
            data: dir.join("data"),
            dir,
            superuser: config.superuser,
            settings: config.settings,
            durable: config.durable,
            run_as,
        };
        if let Some(user) = &cluster.run_as {
            run(Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&cluster.dir))?;
            let reachable = Command::new("runuser")
                .args(["-u", user, "--", "test", "-w"])
                .arg(&cluster.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !reachable {
                return Err(Error::Unreachable {
                    user: user.clone(),
                    dir: cluster.dir.clone(),
                });
            }
            if !can_reach(user, &cluster.bin.join("postgres")) {
                return Err(Error::Unreachable {
                    user: user.clone(),
                    dir: cluster.bin.clone(),
                });
            }
        }
        Ok(cluster)
    }

    /// The server version, e.g. `16.4`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The directory holding the binaries.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// The cluster's directory, which is also the socket directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// True once `initdb` has run.
    pub fn is_initialised(&self) -> bool {
        self.data.join("PG_VERSION").is_file()
    }

    /// Runs `initdb` unless the data directory exists already; true when it ran.
    pub fn init(&self) -> Result<bool, Error> {
        if self.is_initialised() {
            return Ok(false);
        }
        let data = self.data.display().to_string();
        let mut args = vec![
            "-D",
            &data,
            "-U",
            &self.superuser,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
        ];
        if !self.durable {
            args.push("--no-sync");
        }
        self.pg("initdb", &args)?;
        Ok(true)
    }

    /// True when a server is running on this data directory (`pg_ctl status`).
    pub fn is_running(&self) -> bool {
        self.is_initialised()
            && self
                .pg(
                    "pg_ctl",
                    &["-D", &self.data.display().to_string(), "status"],
                )
                .is_ok()
    }

    /// Starts the server (waiting until it accepts connections) unless it runs already;
    /// true when it was started here.
    pub fn start(&self) -> Result<bool, Error> {
        if self.is_running() {
            return Ok(false);
        }
        let log = self.log_file().display().to_string();
        let data = self.data.display().to_string();
        let options = self.server_options();
        self.pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )
        .map_err(|e| self.with_log(e))?;
        Ok(true)
    }

    /// `pg_ctl restart -m fast`: every session is terminated, the server comes back on the
    /// same socket.
    pub fn restart(&self) -> Result<(), Error> {
        let log = self.log_file().display().to_string();
        let data = self.data.display().to_string();
        let options = self.server_options();
        self.pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-m", "fast", "-w", "-t", "60", "restart",
            ],
        )
        .map_err(|e| self.with_log(e))?;
        Ok(())
    }

    /// Stops the server if it runs.
    pub fn stop(&self, mode: StopMode) -> Result<(), Error> {
        if !self.is_running() {
            return Ok(());
        }
        let data = self.data.display().to_string();
        self.pg(
            "pg_ctl",
            &["-D", &data, "-m", mode.as_str(), "-w", "-t", "60", "stop"],
        )?;
        Ok(())
    }

    /// A shell command line that stops the server, for a watchdog that outlives us.
    pub fn stop_command(&self, mode: StopMode) -> String {
        let base = format!(
            "'{}' -D '{}' -m {} -w stop",
            self.bin.join("pg_ctl").display(),
            self.data.display(),
            mode.as_str()
        );
        match &self.run_as {
            Some(user) => format!("runuser -u {user} -- {base}"),
            None => base,
        }
    }

    /// The URL of `database` on this cluster's socket.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@localhost/{database}?host={}",
            self.superuser,
            self.dir.display()
        )
    }

    fn server_options(&self) -> String {
        let mut options = format!(
            "-k '{}' -p {PORT} -c listen_addresses=''",
            self.dir.display()
        );
        for (name, value) in &self.settings {
            let _ = write!(options, " -c {name}={value}");
        }
        options
    }

    /// Runs a server binary, as the unprivileged account when needed.
    fn pg(&self, program: &str, args: &[&str]) -> Result<String, Error> {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&path);
                c
            }
            None => Command::new(&path),
        };
        // initdb's locale must not depend on the caller's environment.
        cmd.args(args)
            .current_dir(&self.dir)
            .env("LANG", "C")
            .env("LC_ALL", "C");
        run(&mut cmd)
    }

    /// Appends the tail of the server log to a failure, which usually says why.
    fn with_log(&self, e: Error) -> Error {
        let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        match e {
            Error::Command { command, message } => Error::Command {
                command,
                message: format!(
                    "{message}\nserver log {} (last lines):\n{}",
                    self.log_file().display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ),
            },
            other => other,
        }
    }
}

fn run(cmd: &mut Command) -> Result<String, Error> {
    let command = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            command,
            message: format!(
                "{}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

fn has_server(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

fn locate() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LEOFLOW_PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return has_server(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let local = PathBuf::from("/usr/local/pgsql/bin");
    if has_server(&local) {
        return Some(local);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_server(d))
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    match std::fs::metadata("/proc/self") {
        Ok(m) => m.uid() == 0,
        Err(_) => Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0"),
    }
}

/// True when the account a cluster runs as can reach `path` (execute a program, enter a
/// directory): always when this process is not root, since the cluster then runs as us.
pub fn reachable(path: &Path) -> bool {
    if !is_root() {
        return true;
    }
    unprivileged_user().is_some_and(|user| can_reach(&user, path))
}

fn can_reach(user: &str, path: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", user, "--", "test", "-x"])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn unprivileged_user() -> Option<String> {
    ["postgres", "nobody"]
        .into_iter()
        .find(|u| {
            Command::new("id")
                .arg(u)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_socket_paths_are_refused_before_anything_runs() {
        let dir = PathBuf::from("/tmp").join("x".repeat(120));
        match Cluster::new(ClusterConfig::new(&dir)) {
            Err(Error::SocketPathTooLong { path }) => assert!(path.starts_with(&dir)),
            Err(Error::NoBinaries) => {}
            other => panic!("expected a socket path error, got {other:?}"),
        }
    }

    #[test]
    fn the_missing_binaries_message_says_what_to_install() {
        let msg = Error::NoBinaries.to_string();
        assert!(msg.contains("apt-get install postgresql"), "{msg}");
        assert!(msg.contains("--postgres postgres://"), "{msg}");
    }
}
