//! The warm Python runtime: one long-lived `python3 -m leoflow_shim serve` per executor
//! that has imported the shim and its dependencies once and forks one child per python
//! attempt (the agent connects to its socket, see `leoflow-agent`'s `forkserver` module).
//! It is supervised: restarted with a growing back-off when it dies, killed and its socket
//! directory removed when the executor goes away. While it is (re)starting, agents find no
//! socket and start a fresh interpreter, so it only ever saves time.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::task::JoinHandle;

use crate::config::SubprocessConfig;

/// The first restart waits this long; each crash in a row doubles it, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A server that ran this long before dying resets the back-off.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Tells apart the socket directories of several executors in one process.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A supervised fork server. Dropping it stops the server.
pub struct WarmRuntime {
    socket: PathBuf,
    dir: PathBuf,
    supervisor: JoinHandle<()>,
}

impl WarmRuntime {
    /// Starts supervising a fork server for `config`'s project. Must be called inside a
    /// tokio runtime. `Err` when its socket directory cannot be made.
    pub fn start(config: &SubprocessConfig) -> std::io::Result<WarmRuntime> {
        // Unix socket paths are limited to ~108 bytes: keep this one short.
        let dir = std::env::temp_dir().join(format!(
            "leoflow-warm-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let socket = dir.join("fork.sock");
        let command = server_command(config, &socket);
        let supervisor = tokio::spawn(supervise(command));
        Ok(WarmRuntime {
            socket,
            dir,
            supervisor,
        })
    }

    /// Where agents connect (`LEOFLOW_WARM_SOCKET`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether the server is listening (it creates its socket once warmed up).
    pub fn ready(&self) -> bool {
        self.socket.exists()
    }
}

impl Drop for WarmRuntime {
    fn drop(&mut self) {
        // Aborting drops the supervised child, which `kill_on_drop` ends.
        self.supervisor.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What starts the server: the task interpreter, the shim on its path, a clean
/// environment (each child's environment is replaced by its attempt's anyway) that keeps
/// `LEOFLOW_WARM_DAG_CACHE` (`0` turns the server's DAG cache off).
fn server_command(config: &SubprocessConfig, socket: &Path) -> Command {
    let mut path: Vec<String> = config
        .shim_path
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    path.push(config.project_dir.display().to_string());
    let mut cmd = Command::new(&config.python);
    cmd.args(["-m", "leoflow_shim", "serve", "--socket"])
        .arg(socket)
        .arg("--root")
        .arg(&config.project_dir)
        .env_clear()
        .envs(
            ["PATH", "HOME", "LANG", "TMPDIR", "LEOFLOW_WARM_DAG_CACHE"]
                .into_iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (k, v))),
        )
        .envs(&config.extra_env)
        .env("PYTHONPATH", path.join(":"))
        .current_dir(&config.project_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs the server, restarting it when it dies, until aborted.
async fn supervise(mut command: Command) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let began = tokio::time::Instant::now();
        match command.spawn() {
            Ok(mut child) => {
                if let Some(stderr) = child.stderr.take() {
                    tokio::spawn(async move {
                        let mut lines = BufReader::new(stderr).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            tracing::warn!(target: "leoflow::warm_runtime", "{line}");
                        }
                    });
                }
                let status = child.wait().await;
                tracing::warn!(
                    ?status,
                    "the warm Python runtime stopped; python tasks start cold until it is back"
                );
            }
            Err(e) => tracing::warn!(
                error = %e,
                "could not start the warm Python runtime; python tasks start cold"
            ),
        }
        if began.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
