//! `leoflow-agent`: runs ONE task attempt. It asks the agent API for the attempt's context
//! (`start`), writes it to a private work dir as `context.json` (inputs travel in files,
//! never in environment variables), runs the task (bash or the python runtime in its own
//! process group; for an http_api task, the HTTP call the control plane resolved), streams
//! its output as log lines, heartbeats, enforces the timeout and cancellation, and reports
//! the outcome (`finish`). ADR 0003 is the protocol, ADR 0011 the http_api call.
//!
//! Environment: `LEOFLOW_AGENT_URL` and `LEOFLOW_AGENT_TOKEN` (required), `LEOFLOW_PYTHON`
//! (default `python3`), `LEOFLOW_SHIM_PATH` (put first on `PYTHONPATH` for python tasks),
//! `LEOFLOW_PROJECT_DIR` (default: the current directory), `LEOFLOW_WORK_ROOT` (where work
//! dirs are made; default: the system temp dir), `LEOFLOW_WARM_SOCKET` (the warm Python
//! runtime's socket: python tasks are forked from it, and start cold when it is down),
//! `SSL_CERT_FILE` (a PEM file of CA certificates that replaces the built-in Mozilla roots
//! for an http_api task's HTTPS call).
//!
//! Exit status: 0 when the attempt was recorded as succeeded or skipped, 1 otherwise, 2
//! when the agent is misconfigured and could not even ask for its attempt.

mod api;
mod context;
mod forkserver;
mod http;
mod logs;
mod process;
mod resolve;
mod task;
mod template;

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api::{CallError, Client, Finish};
use context::Context;
use logs::{diag, Shipper};
use process::{secs, Stop};
use task::{failed, Kind, Plan, Setup};

fn main() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(url), Some(token)) = (env("LEOFLOW_AGENT_URL"), env("LEOFLOW_AGENT_TOKEN")) else {
        diag("LEOFLOW_AGENT_URL and LEOFLOW_AGENT_TOKEN must be set; this binary is started by a Leoflow executor");
        return ExitCode::from(2);
    };
    let setup = Setup {
        python: env("LEOFLOW_PYTHON").unwrap_or_else(|| "python3".into()),
        shim_path: env("LEOFLOW_SHIM_PATH"),
        project_dir: env("LEOFLOW_PROJECT_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from(".")),
        warm_socket: env("LEOFLOW_WARM_SOCKET").map(PathBuf::from),
    };
    let work_root = env("LEOFLOW_WORK_ROOT").map_or_else(std::env::temp_dir, PathBuf::from);

    let stop = Stop::default();
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, stop.signalled.clone()) {
            diag(format!("cannot handle signal {sig}: {e}"));
        }
    }

    let client = Client::new(&url, &token);
    let began = Instant::now();
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    let raw = match client.start(hostname.as_deref()) {
        Ok(raw) => raw,
        Err(e) => return start_failed(&client, &e),
    };
    let ctx: Context = match serde_json::from_slice(&raw) {
        Ok(c) => c,
        Err(e) => {
            let report = failed(
                format!("the agent could not read its start context: {e}"),
                None,
                true,
            );
            return report_only(&client, &report, began);
        }
    };

    let mut log = Shipper::new(client.clone());
    log.system(format!(
        "▸ task started (try {}{})",
        ctx.attempt.try_number,
        if ctx.attempt.map_index >= 0 {
            format!(", map index {}", ctx.attempt.map_index)
        } else {
            String::new()
        }
    ));
    let report = match WorkDir::create(&work_root) {
        Ok(dir) => {
            let report = run(&client, &ctx, &raw, &setup, &dir.0, &stop, &mut log);
            dir.remove();
            report
        }
        Err(e) => failed(
            format!("could not create the attempt's work dir: {e}"),
            None,
            true,
        ),
    };
    finish(&client, report, began, &mut log)
}

/// `start` failed: nothing to run. A refusal (401/403/404/409) means this attempt is not
/// ours to report; anything else is reported as a failure if the API can be reached.
fn start_failed(client: &Client, e: &CallError) -> ExitCode {
    diag(format!("start failed: {e}"));
    if matches!(e.status(), Some(401 | 403 | 404 | 409)) {
        return ExitCode::from(1);
    }
    let report = failed(format!("the attempt could not start: {e}"), None, true);
    let _ = client.finish(&report, &[], Duration::ZERO);
    ExitCode::from(1)
}

fn report_only(client: &Client, report: &Finish, began: Instant) -> ExitCode {
    let mut log = Shipper::new(client.clone());
    finish(client, report.clone(), began, &mut log)
}

/// Writes the context, runs the task and turns its end into a report.
fn run(
    client: &Client,
    ctx: &Context,
    raw: &[u8],
    setup: &Setup,
    workdir: &Path,
    stop: &Stop,
    log: &mut Shipper,
) -> Finish {
    if let Err(e) = fs::write(workdir.join("context.json"), raw) {
        return failed(format!("could not write context.json: {e}"), None, true);
    }
    let base_env: Vec<(String, String)> = std::env::vars().collect();
    let (spec, kind) = match task::plan(ctx, setup, workdir, &base_env) {
        Plan::Report(report) => return report,
        Plan::Call(call) => {
            return beating(client, ctx, stop, || {
                http::run(&call, &ctx.task.task_id, stop, log)
            })
        }
        Plan::Run { spec, kind } => (spec, kind),
    };
    let timeout = ctx
        .timeout_seconds
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(Duration::from_secs_f64);
    let ran = beating(client, ctx, stop, || {
        process::run(&spec, timeout, stop, log)
    });
    let ran = match ran {
        Ok(r) => r,
        Err(e) => {
            let hint = match kind {
                Kind::Python => " (set LEOFLOW_PYTHON to the interpreter to use)",
                Kind::Bash => "",
            };
            return failed(
                format!("could not start `{}`: {e}{hint}", spec.program),
                None,
                true,
            );
        }
    };
    let mut report = task::outcome(kind, &ran, workdir);
    match task::extra_xcoms(workdir) {
        Ok(pushes) => {
            for (key, value) in pushes {
                match client.push_xcom(&key, &value) {
                    Ok(()) => {}
                    // The attempt already ended elsewhere (cancelled, timed out).
                    Err(CallError::Refused { status: 409, .. }) => break,
                    Err(e) => {
                        if report.status != "failed" {
                            report = failed(format!("XCom {key:?} was refused: {e}"), None, true);
                        }
                        break;
                    }
                }
            }
        }
        Err(e) if report.status != "failed" => report = failed(e, None, true),
        Err(_) => {}
    }
    report
}

/// Runs `work` while heartbeating at the interval `start` gave.
fn beating<T>(client: &Client, ctx: &Context, stop: &Stop, work: impl FnOnce() -> T) -> T {
    let interval = Duration::from_secs_f64(ctx.heartbeat_interval_seconds.clamp(0.1, 3600.0));
    let (beats, heart) = heartbeat(client.clone(), interval, stop.clone());
    let result = work();
    drop(beats);
    let _ = heart.join();
    result
}

/// Heartbeats every `interval` until `stopped` is dropped; a "cancel" answer sets
/// `stop.cancelled`. Dropping the sender wakes the thread at once, so ending an attempt
/// never waits for the next beat.
fn heartbeat(
    client: Client,
    interval: Duration,
    stop: Stop,
) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (stopped, wake) = mpsc::channel::<()>();
    let handle = thread::spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = wake.recv_timeout(interval) {
            match client.heartbeat() {
                Ok(true) => {
                    stop.cancelled.store(true, Ordering::SeqCst);
                    return;
                }
                Ok(false) => {}
                Err(e) => diag(format!("heartbeat failed: {e}")),
            }
        }
    });
    (stopped, handle)
}

/// Reports `report` with the log lines still queued; the server records both and writes
/// the closing line. A return value the control plane refuses (413) becomes a failure with
/// its reason. When the report could not be recorded, the agent writes the closing line
/// itself. Picks the exit status.
fn finish(client: &Client, report: Finish, began: Instant, log: &mut Shipper) -> ExitCode {
    let mut report = report;
    let lines = log.take_for_finish();
    let answer = match client.finish(&report, &lines, began.elapsed()) {
        Err(CallError::Refused {
            status: 413,
            detail,
        }) if report.status == "success" => {
            report = failed(detail, None, true);
            client.finish(&report, &lines, began.elapsed())
        }
        other => other,
    };
    let took = secs_short(began.elapsed());
    let what = report.error.clone().unwrap_or_else(|| report.status.into());
    match &answer {
        Ok(a) => return exit_status(a.state == "success" || a.state == "skipped"),
        // The control plane ended the attempt itself (its timeout, a cancel) and kept the
        // lines; its own log line says why.
        Err(CallError::Refused { status: 409, .. }) => log.system(format!(
            "✗ task stopped after {took} ({what}); the control plane had already ended this attempt"
        )),
        Err(e) => {
            diag(format!("could not report the outcome: {e}"));
            // The lines may not have been kept: send them again, then the end.
            for line in lines {
                log.push(line.stream, line.message);
            }
            log.system(format!(
                "✗ task ended in {took} ({what}) but the outcome was not recorded: {e}"
            ));
        }
    }
    log.flush();
    exit_status(false)
}

fn exit_status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn secs_short(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}s", secs(Duration::from_secs(d.as_secs())))
    }
}

/// The attempt's private work dir (mode 0700), removed when the attempt is over.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(root: &Path) -> std::io::Result<WorkDir> {
        let mut last = None;
        for n in 0..16u32 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = root.join(format!(
                "leoflow-attempt-{}-{nanos:09}-{n}",
                std::process::id()
            ));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(WorkDir(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free work dir name")))
    }

    fn remove(self) {
        if std::env::var_os("LEOFLOW_KEEP_WORK_DIR").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}
