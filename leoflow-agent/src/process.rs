//! Runs the task's process and watches it: its own process group (so the whole tree can
//! be signalled), stdout and stderr read line by line into the log, the execution timeout
//! and cancellation enforced with SIGTERM, a grace period, then SIGKILL, and whatever the
//! task left running in its group ended with it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::forkserver;
use crate::logs::{diag, Shipper, MAX_LINE_BYTES};

/// How long a signalled task gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// How often stop requests are looked at while nothing else happens.
const POLL: Duration = Duration::from_millis(100);

/// What to run.
pub struct Spec {
    pub program: String,
    pub args: Vec<String>,
    /// The complete environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Start it through the warm Python runtime instead, when that answers.
    pub warm: Option<Warm>,
}

/// Where the warm runtime listens, and the work dir its child runs.
pub struct Warm {
    pub socket: PathBuf,
    pub workdir: PathBuf,
    /// The attempt's DAG file (relative to the spec's cwd), which the server keeps imported.
    pub dag_file: Option<String>,
}

/// A started task process: its pid (= process group), its output, and how to wait for it.
struct Started {
    pid: u32,
    stdout: Box<dyn Read + Send>,
    stderr: Box<dyn Read + Send>,
    wait: Box<dyn FnOnce() -> io::Result<ExitStatus> + Send>,
}

/// Starts `spec` warm when it can, else as a fresh process in its own group.
fn start(spec: &Spec, log: &mut Shipper) -> io::Result<Started> {
    if let Some(warm) = &spec.warm {
        match forkserver::start(&warm.socket, spec, &warm.workdir) {
            Ok(forked) => {
                let exit = forked.exit;
                return Ok(Started {
                    pid: forked.pid,
                    stdout: Box::new(forked.stdout),
                    stderr: Box::new(forked.stderr),
                    wait: Box::new(move || exit.wait()),
                });
            }
            Err(e) => log.system(format!("{e}; starting a fresh interpreter instead")),
        }
    }
    let mut child = Command::new(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other("the task's output pipes were not created"));
    };
    Ok(Started {
        pid: child.id(),
        stdout: Box::new(stdout),
        stderr: Box::new(stderr),
        wait: Box::new(move || child.wait()),
    })
}

/// Requests to stop, set from signal handlers and the heartbeat thread.
#[derive(Clone, Default)]
pub struct Stop {
    /// The agent received SIGTERM or SIGINT (its executor cancels the attempt).
    pub signalled: Arc<AtomicBool>,
    /// The control plane answered a heartbeat with "cancel".
    pub cancelled: Arc<AtomicBool>,
}

impl Stop {
    /// Why the attempt must stop, if it must.
    pub fn reason(&self) -> Option<String> {
        if self.cancelled.load(Ordering::SeqCst) {
            Some("cancelled by the control plane".into())
        } else if self.signalled.load(Ordering::SeqCst) {
            Some("cancelled: the agent was asked to stop (SIGTERM)".into())
        } else {
            None
        }
    }
}

/// How the task's process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Exited(i32),
    Signalled(i32),
    TimedOut(Duration),
    Cancelled(String),
}

/// What the run left behind.
pub struct Ran {
    pub ending: Ending,
    pub last_stdout: Option<String>,
    pub last_stderr: Option<String>,
}

enum Msg {
    Line(&'static str, String),
    Eof,
    Exit(io::Result<ExitStatus>),
}

/// Starts `spec` and supervises it until it and its pipes are done. `Err` only when the
/// process could not be started.
pub fn run(
    spec: &Spec,
    timeout: Option<Duration>,
    stop: &Stop,
    log: &mut Shipper,
) -> io::Result<Ran> {
    let started = start(spec, log)?;
    let pgid = Pid::from_raw(i32::try_from(started.pid).unwrap_or(i32::MAX));
    // The executor reads this to end the task's group if the agent itself dies. A closed
    // stdout (the executor is gone) must not stop the attempt.
    let _ = writeln!(io::stdout(), "child_pgid={}", started.pid);
    let _ = io::stdout().flush();

    let (tx, rx) = mpsc::channel();
    read_lines(started.stdout, "stdout", tx.clone());
    read_lines(started.stderr, "stderr", tx.clone());
    {
        let tx = tx.clone();
        let wait = started.wait;
        thread::spawn(move || {
            let _ = tx.send(Msg::Exit(wait()));
        });
    }
    drop(tx);

    let started = Instant::now();
    let deadline = timeout.map(|t| started + t);
    let mut stopping: Option<(Ending, Instant)> = None;
    let mut killed = false;
    let mut status: Option<ExitStatus> = None;
    let mut open_pipes = 2;
    // After the task's own process exits: when its leftovers were sent SIGTERM.
    let mut leftovers_since: Option<Instant> = None;
    let mut last_stdout = None;
    let mut last_stderr = None;

    loop {
        let now = Instant::now();
        let mut next = now + POLL;
        if let Some(d) = log.deadline() {
            next = next.min(d);
        }
        if let (Some(d), None) = (deadline, &stopping) {
            next = next.min(d);
        }
        match rx.recv_timeout(next.saturating_duration_since(now)) {
            Ok(Msg::Line(stream, line)) => {
                if stream == "stdout" {
                    last_stdout = Some(line.clone());
                } else {
                    last_stderr = Some(line.clone());
                }
                log.push(stream, line);
            }
            Ok(Msg::Eof) => open_pipes -= 1,
            Ok(Msg::Exit(result)) => match result {
                Ok(s) => status = Some(s),
                Err(e) => {
                    diag(format!("waiting for the task failed: {e}"));
                    status = Some(ExitStatus::from_raw(255 << 8));
                }
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        log.flush_if_due();

        let now = Instant::now();
        if stopping.is_none() && status.is_none() {
            let why = if deadline.is_some_and(|d| now >= d) {
                Some(Ending::TimedOut(timeout.unwrap_or_default()))
            } else {
                stop.reason().map(Ending::Cancelled)
            };
            if let Some(ending) = why {
                log.system(match &ending {
                    Ending::TimedOut(t) => format!(
                        "timed out after {}s: stopping the task (SIGTERM, then SIGKILL after {}s)",
                        secs(*t),
                        KILL_GRACE.as_secs()
                    ),
                    _ => "cancel requested: stopping the task (SIGTERM)".into(),
                });
                signal(pgid, Signal::SIGTERM);
                stopping = Some((ending, now));
            }
        }
        if let Some((_, since)) = &stopping {
            if !killed && now >= *since + KILL_GRACE {
                log.system("the task did not stop within the grace period: SIGKILL");
                signal(pgid, Signal::SIGKILL);
                killed = true;
            }
        }
        if status.is_some() {
            if open_pipes == 0 {
                break;
            }
            // Background processes the task left behind still hold its output open: the
            // attempt is over, so they end with it.
            match leftovers_since {
                None => {
                    signal(pgid, Signal::SIGTERM);
                    leftovers_since = Some(now);
                }
                Some(t) if now >= t + KILL_GRACE + Duration::from_secs(1) => break,
                Some(t) if now >= t + KILL_GRACE => signal(pgid, Signal::SIGKILL),
                Some(_) => {}
            }
        }
    }
    // Nothing of the attempt outlives it, whether or not it held a pipe.
    signal(pgid, Signal::SIGKILL);

    let ending = match (stopping, status) {
        (Some((ending, _)), _) => ending,
        // A stop request that landed as the task died (the executor signals the task's
        // group and the agent at once) still is a cancellation.
        (None, _) if stop.reason().is_some() => {
            Ending::Cancelled(stop.reason().unwrap_or_default())
        }
        (None, Some(s)) => match (s.code(), s.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(sig)) => Ending::Signalled(sig),
            (None, None) => Ending::Exited(255),
        },
        (None, None) => Ending::Exited(255),
    };
    Ok(Ran {
        ending,
        last_stdout,
        last_stderr,
    })
}

fn signal(pgid: Pid, sig: Signal) {
    // ESRCH (nothing left in the group) is the expected case once the task has ended.
    let _ = killpg(pgid, sig);
}

/// Seconds as a short decimal (`1.5`, `300`).
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if (s - s.round()).abs() < 1e-9 {
        format!("{}", s.round())
    } else {
        format!("{s:.2}")
    }
}

fn read_lines(pipe: impl Read + Send + 'static, stream: &'static str, tx: mpsc::Sender<Msg>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    for piece in buf.chunks(MAX_LINE_BYTES) {
                        let line = String::from_utf8_lossy(piece).into_owned();
                        if tx.send(Msg::Line(stream, line)).is_err() {
                            return;
                        }
                    }
                    if buf.is_empty() && tx.send(Msg::Line(stream, String::new())).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Msg::Eof);
    });
}
