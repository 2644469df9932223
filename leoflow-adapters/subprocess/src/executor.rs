//! `SubprocessExecutor`: the `Executor` port over local processes. Each attempt runs one
//! `leoflow-agent` in a new process group with a clean environment (PATH, HOME, LANG,
//! TMPDIR, the agent's settings and the task's `env`; never the server's secrets). The
//! agent reports the outcome through the agent API; this executor reports `Started` and
//! `Exited`, forwards the agent's own stderr to the attempt's log as `system` lines, and
//! ends the attempt's process groups on cancel and when the agent dies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};

use async_trait::async_trait;
use chrono::Utc;
use futures::channel::mpsc;
use futures::StreamExt;
use leoflow_ports::dag::TaskKind;
use leoflow_ports::executor::{
    Attempt, AttemptCredentials, Capabilities, Error, Event, EventStream, Executor,
};
use leoflow_ports::log::{LogLine, LogStore, LogStream};
use leoflow_ports::run::AttemptId;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::config::SubprocessConfig;
use crate::warm::WarmRuntime;
use crate::work_root::WorkRoot;

static WARNING: Once = Once::new();

/// Runs attempts as local agent processes. Cheap to clone; clones share their attempts.
#[derive(Clone)]
pub struct SubprocessExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    config: SubprocessConfig,
    credentials: Arc<dyn AttemptCredentials>,
    logs: Arc<dyn LogStore>,
    hostname: Option<String>,
    state: Mutex<State>,
    warm: Option<WarmRuntime>,
    work_root: Option<WorkRoot>,
}

#[derive(Default)]
struct State {
    /// Every attempt ever launched here: launching one again does nothing.
    launched: HashSet<AttemptId>,
    live: HashMap<AttemptId, Live>,
    subscribers: Vec<mpsc::UnboundedSender<Event>>,
}

/// A running agent: its process group and, once it said so, its task's.
#[derive(Clone)]
struct Live {
    agent: Pid,
    task_group: Arc<AtomicI32>,
}

impl Live {
    fn signal(&self, sig: Signal) {
        // ESRCH (the group is already empty) is expected and harmless.
        let task = self.task_group.load(Ordering::SeqCst);
        if task > 0 {
            let _ = killpg(Pid::from_raw(task), sig);
        }
        let _ = killpg(self.agent, sig);
    }
}

impl SubprocessExecutor {
    /// An executor starting `config.agent_path` for each attempt, with credentials minted
    /// by `credentials`; the agents' own diagnostics go to `logs`. Prints, once per
    /// process, that this execution is unsandboxed. Inside a tokio runtime, and unless
    /// `config.warm_runtime` is false, it also starts the warm Python runtime.
    pub fn new(
        config: SubprocessConfig,
        credentials: Arc<dyn AttemptCredentials>,
        logs: Arc<dyn LogStore>,
    ) -> SubprocessExecutor {
        WARNING.call_once(|| {
            eprintln!(
                "WARNING: the subprocess executor runs task code as local processes with this \
                 user's rights and no sandbox; use it for development only, never in production"
            );
        });
        let warm = if config.warm_runtime && tokio::runtime::Handle::try_current().is_ok() {
            WarmRuntime::start(&config)
                .map_err(|e| {
                    tracing::warn!(error = %e, "no warm Python runtime; python tasks start cold");
                })
                .ok()
        } else {
            None
        };
        SubprocessExecutor {
            inner: Arc::new(Inner {
                warm,
                work_root: WorkRoot::choose(config.work_root.as_deref()),
                config,
                credentials,
                logs,
                hostname: nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok()),
                state: Mutex::new(State::default()),
            }),
        }
    }
}

impl SubprocessExecutor {
    /// Whether the warm Python runtime is listening (python attempts are forked from it;
    /// otherwise they start a fresh interpreter).
    pub fn warm_runtime_ready(&self) -> bool {
        self.inner.warm.as_ref().is_some_and(WarmRuntime::ready)
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few map operations; a poisoned lock holds
        // consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, event: &Event) {
        self.state()
            .subscribers
            .retain(|tx| tx.unbounded_send(event.clone()).is_ok());
    }

    /// The agent's environment: nothing inherited but the basics.
    fn env(&self, attempt: &Attempt) -> BTreeMap<String, String> {
        let c = &self.config;
        let mut env = BTreeMap::new();
        for key in ["HOME", "LANG", "TMPDIR"] {
            if let Some(v) = std::env::var_os(key).and_then(|v| v.into_string().ok()) {
                env.insert(key.to_string(), v);
            }
        }
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        env.insert("PATH".into(), path);
        env.extend(c.extra_env.clone());
        env.extend(attempt.task().env.clone());
        // The agent's own settings come last so a task's `env` cannot redirect it.
        env.insert("LEOFLOW_AGENT_URL".into(), self.credentials.agent_url());
        env.insert(
            "LEOFLOW_AGENT_TOKEN".into(),
            self.credentials.token_for(attempt),
        );
        env.insert("LEOFLOW_PYTHON".into(), c.python.clone());
        env.insert(
            "LEOFLOW_PROJECT_DIR".into(),
            c.project_dir.display().to_string(),
        );
        match &c.shim_path {
            Some(p) => env.insert("LEOFLOW_SHIM_PATH".into(), p.display().to_string()),
            None => env.remove("LEOFLOW_SHIM_PATH"),
        };
        match &self.warm {
            Some(w) => env.insert(
                "LEOFLOW_WARM_SOCKET".into(),
                w.socket().display().to_string(),
            ),
            None => env.remove("LEOFLOW_WARM_SOCKET"),
        };
        match &self.work_root {
            Some(root) => env.insert(
                "LEOFLOW_WORK_ROOT".into(),
                root.path().display().to_string(),
            ),
            None => env.remove("LEOFLOW_WORK_ROOT"),
        };
        env
    }

    async fn system_line(&self, attempt: &AttemptId, message: String) {
        let line = LogLine {
            at: Utc::now(),
            stream: LogStream::System,
            message,
        };
        if let Err(e) = self.logs.append(attempt, &[line]).await {
            tracing::warn!(%attempt, error = %e, "could not log an agent line");
        }
    }
}

#[async_trait]
impl Executor for SubprocessExecutor {
    fn name(&self) -> &'static str {
        "subprocess"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            kinds: vec![TaskKind::Python, TaskKind::Bash, TaskKind::HttpApi],
            isolated: false,
            reattaches: false,
        }
    }

    async fn launch(&self, attempt: Attempt) -> Result<(), Error> {
        let kind = attempt.task().kind;
        if !matches!(kind, TaskKind::Python | TaskKind::Bash | TaskKind::HttpApi) {
            return Err(Error::Rejected {
                message: format!(
                    "the subprocess executor runs python, bash and http_api (pod mode) tasks, not {}",
                    kind.as_str()
                ),
            });
        }
        let inner = &self.inner;
        if !inner.state().launched.insert(attempt.id.clone()) {
            return Ok(());
        }
        let mut child = Command::new(&inner.config.agent_path)
            .env_clear()
            .envs(inner.env(&attempt))
            .current_dir(&inner.config.project_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::Unavailable {
                message: format!(
                    "could not start the agent {}: {e}",
                    inner.config.agent_path.display()
                ),
                retryable: false,
            })?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        let live = Live {
            agent: Pid::from_raw(pid),
            task_group: Arc::new(AtomicI32::new(0)),
        };
        inner.state().live.insert(attempt.id.clone(), live.clone());
        inner.emit(&Event::Started {
            attempt: attempt.id.clone(),
            executor_ref: Some(pid.to_string()),
            hostname: inner.hostname.clone(),
        });

        let id = attempt.id;
        let stdout = child.stdout.take().map(|out| {
            let group = live.task_group.clone();
            let inner = self.inner.clone();
            let id = id.clone();
            tokio::spawn(async move {
                forward(out, |line| {
                    let inner = inner.clone();
                    let id = id.clone();
                    let group = group.clone();
                    async move {
                        // The agent names its task's process group on stdout.
                        match line.strip_prefix("child_pgid=").map(str::parse::<i32>) {
                            Some(Ok(g)) => group.store(g, Ordering::SeqCst),
                            _ => inner.system_line(&id, line).await,
                        }
                    }
                })
                .await;
            })
        });
        let stderr = child.stderr.take().map(|err| {
            let inner = self.inner.clone();
            let id = id.clone();
            tokio::spawn(async move {
                forward(err, |line| {
                    let inner = inner.clone();
                    let id = id.clone();
                    async move { inner.system_line(&id, line).await }
                })
                .await;
            })
        });
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            // The attempt is over: whatever it left in either group goes too.
            live.signal(Signal::SIGKILL);
            for reader in [stdout, stderr].into_iter().flatten() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), reader).await;
            }
            inner.state().live.remove(&id);
            let (exit_code, message) = match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    (
                        s.code(),
                        s.signal().map(|sig| format!("killed by signal {sig}")),
                    )
                }
                Err(e) => (None, Some(format!("could not wait for the agent: {e}"))),
            };
            inner.emit(&Event::Exited {
                attempt: id,
                exit_code,
                message,
            });
        });
        Ok(())
    }

    async fn cancel(&self, attempt: &AttemptId) -> Result<(), Error> {
        let Some(live) = self.inner.state().live.get(attempt).cloned() else {
            return Ok(());
        };
        live.signal(Signal::SIGTERM);
        let inner = self.inner.clone();
        let attempt = attempt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(inner.config.kill_grace).await;
            let still = inner.state().live.get(&attempt).map(|l| l.agent) == Some(live.agent);
            if still {
                live.signal(Signal::SIGKILL);
            }
        });
        Ok(())
    }

    fn subscribe(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded();
        self.inner.state().subscribers.push(tx);
        rx.boxed()
    }

    async fn live(&self) -> Result<Vec<AttemptId>, Error> {
        let mut ids: Vec<AttemptId> = self.inner.state().live.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }
}

/// Calls `each` with every line of `pipe` until it closes.
async fn forward<R, F, Fut>(pipe: R, mut each: F)
where
    R: AsyncRead + Unpin,
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        each(line).await;
    }
}
