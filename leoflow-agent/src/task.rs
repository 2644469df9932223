//! From a task's context to what to run, and from how a process ended to the outcome the
//! agent reports: bash (`bash -c` with Airflow's `AIRFLOW_CTX_*` variables and the rendered
//! command; exit 99 skips, like Airflow's `skip_on_exit_code`), python (the shim's
//! runtime, `python -m leoflow_shim run <workdir>`, which answers in `result.json`) and
//! http_api (the call the control plane resolved, made by `crate::http`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::api::Finish;
use crate::context::{iso, Context};
use crate::http::HttpCall;
use crate::process::{secs, Ending, Ran, Spec, Warm};
use crate::template;

/// Airflow's default `skip_on_exit_code` for bash tasks.
pub const BASH_SKIP_EXIT_CODE: i32 = 99;

/// What the agent was configured with (its environment).
pub struct Setup {
    pub python: String,
    pub shim_path: Option<String>,
    pub project_dir: PathBuf,
    /// The warm Python runtime's socket (`LEOFLOW_WARM_SOCKET`), when the executor runs one.
    pub warm_socket: Option<PathBuf>,
}

/// How to run one task kind.
pub enum Plan {
    /// Start this process.
    Run { spec: Spec, kind: Kind },
    /// Make this HTTP call.
    Call(HttpCall),
    /// Nothing to run; report this.
    Report(Finish),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bash,
    Python,
}

/// A failure to report, not retried when `retryable` is false.
pub fn failed(error: impl Into<String>, exit_code: Option<i32>, retryable: bool) -> Finish {
    Finish {
        status: "failed",
        return_value: None,
        error: Some(error.into()),
        exit_code,
        retryable,
    }
}

/// A success whose return value becomes the `return_value` XCom.
pub fn success(return_value: Option<Value>) -> Finish {
    Finish {
        status: "success",
        return_value,
        error: None,
        exit_code: None,
        retryable: true,
    }
}

fn skipped(message: Option<String>) -> Finish {
    Finish {
        status: "skipped",
        return_value: None,
        error: message,
        exit_code: None,
        retryable: true,
    }
}

/// What to run for `ctx`, with `base_env` the agent's own environment.
pub fn plan(ctx: &Context, setup: &Setup, workdir: &Path, base_env: &[(String, String)]) -> Plan {
    match ctx.task.kind.as_str() {
        "bash" => bash(ctx, workdir, base_env),
        "python" => Plan::Run {
            spec: Spec {
                program: setup.python.clone(),
                args: vec![
                    "-m".into(),
                    "leoflow_shim".into(),
                    "run".into(),
                    workdir.display().to_string(),
                ],
                env: python_env(ctx, setup, base_env),
                cwd: setup.project_dir.clone(),
                warm: setup.warm_socket.clone().map(|socket| Warm {
                    socket,
                    workdir: workdir.to_path_buf(),
                    dag_file: dag_file(ctx),
                }),
            },
            kind: Kind::Python,
        },
        "empty" => Plan::Report(success(None)),
        "http_api" => match (&ctx.http_call, &ctx.http_call_error) {
            (_, Some(e)) => Plan::Report(failed(e.clone(), None, false)),
            (Some(call), None) => Plan::Call(call.clone()),
            (None, None) => Plan::Report(failed(
                "the control plane sent no http_call for this http_api task; it is older than this agent: upgrade it",
                None,
                false,
            )),
        },
        other => Plan::Report(failed(
            format!("this agent cannot run tasks of type {other:?}"),
            None,
            false,
        )),
    }
}

/// The DAG file of a python task whose entrypoint is `<file.py>:<task_id>`.
fn dag_file(ctx: &Context) -> Option<String> {
    let entrypoint = ctx.task.entrypoint.as_deref()?;
    let (file, _) = entrypoint.rsplit_once(':')?;
    Path::new(file)
        .extension()
        .is_some_and(|ext| ext == "py")
        .then(|| file.to_owned())
}

fn bash(ctx: &Context, workdir: &Path, base_env: &[(String, String)]) -> Plan {
    // A mapped BashOperator gets its command from the expansion.
    let command = match ctx.mapped_kwargs.get("bash_command") {
        Some(Value::String(c)) => Some(c.clone()),
        _ => ctx.task.entrypoint.clone(),
    };
    let Some(command) = command.filter(|c| !c.trim().is_empty()) else {
        return Plan::Report(failed("the bash task has no bash_command", None, false));
    };
    let rendered = match template::render(&command, ctx) {
        Ok(r) => r,
        Err(e) => return Plan::Report(failed(e, None, false)),
    };
    // User shell code gets no control-plane credential.
    let base: Vec<(String, String)> = base_env
        .iter()
        .filter(|(k, _)| k != "LEOFLOW_AGENT_TOKEN")
        .cloned()
        .collect();
    Plan::Run {
        spec: Spec {
            program: "bash".into(),
            args: vec!["-c".into(), rendered],
            env: merge(&base, airflow_ctx(ctx), &ctx.task.env),
            cwd: workdir.to_path_buf(),
            warm: None,
        },
        kind: Kind::Bash,
    }
}

fn python_env(
    ctx: &Context,
    setup: &Setup,
    base_env: &[(String, String)],
) -> Vec<(String, String)> {
    let mut path: Vec<String> = setup.shim_path.iter().cloned().collect();
    path.push(setup.project_dir.display().to_string());
    if let Some((_, existing)) = base_env.iter().find(|(k, _)| k == "PYTHONPATH") {
        path.push(existing.clone());
    }
    let mut extra = airflow_ctx(ctx);
    extra.push(("PYTHONPATH".into(), path.join(":")));
    extra.push(("PYTHONUNBUFFERED".into(), "1".into()));
    merge(base_env, extra, &ctx.task.env)
}

/// Airflow's `AIRFLOW_CTX_*` variables.
fn airflow_ctx(ctx: &Context) -> Vec<(String, String)> {
    let mut vars = vec![
        ("AIRFLOW_CTX_DAG_ID".into(), ctx.dag.dag_id.clone()),
        ("AIRFLOW_CTX_TASK_ID".into(), ctx.task.task_id.clone()),
        ("AIRFLOW_CTX_RUN_ID".into(), ctx.run.run_id.clone()),
        ("AIRFLOW_CTX_LOGICAL_DATE".into(), iso(ctx.run.date())),
        (
            "AIRFLOW_CTX_TRY_NUMBER".into(),
            ctx.attempt.try_number.to_string(),
        ),
    ];
    if let Some(owner) = &ctx.dag.owner {
        vars.push(("AIRFLOW_CTX_DAG_OWNER".into(), owner.clone()));
    }
    vars
}

/// `base`, then `extra`, then the task's `env`; later entries win.
fn merge(
    base: &[(String, String)],
    extra: Vec<(String, String)>,
    task_env: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = base.iter().cloned().collect();
    env.extend(extra);
    env.extend(task_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.into_iter().collect()
}

/// What the python runtime writes to `<workdir>/result.json`.
#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum RuntimeResult {
    Success {
        #[serde(default)]
        return_value: Option<Value>,
    },
    Skipped {
        #[serde(default)]
        message: Option<String>,
    },
    Failed {
        #[serde(default)]
        error: Option<String>,
        #[serde(default = "yes")]
        retryable: bool,
    },
}

fn yes() -> bool {
    true
}

/// The outcome of a finished run.
pub fn outcome(kind: Kind, ran: &Ran, workdir: &Path) -> Finish {
    let cause = |code: String| match &ran.last_stderr {
        Some(line) if !line.trim().is_empty() => format!("{code}: {}", line.trim()),
        _ => code,
    };
    match (&ran.ending, kind) {
        (Ending::TimedOut(t), _) => failed(format!("timed out after {}s", secs(*t)), None, true),
        (Ending::Cancelled(why), _) => failed(why.clone(), None, true),
        (Ending::Signalled(sig), _) => failed(format!("killed by signal {sig}"), None, true),
        (Ending::Exited(0), Kind::Bash) => success(ran.last_stdout.clone().map(Value::String)),
        (Ending::Exited(BASH_SKIP_EXIT_CODE), Kind::Bash) => skipped(Some(format!(
            "the bash command exited with {BASH_SKIP_EXIT_CODE} (skip_on_exit_code)"
        ))),
        (Ending::Exited(code), Kind::Bash) => failed(
            cause(format!("the bash command exited with code {code}")),
            Some(*code),
            true,
        ),
        (Ending::Exited(code), Kind::Python) => match read_result(workdir) {
            Ok(Some(RuntimeResult::Success { return_value })) if *code == 0 => {
                success(return_value)
            }
            Ok(Some(RuntimeResult::Skipped { message })) => skipped(message),
            Ok(Some(RuntimeResult::Failed { error, retryable })) => failed(
                error.unwrap_or_else(|| "the task failed".into()),
                (*code != 0).then_some(*code),
                retryable,
            ),
            Ok(None) if *code == 0 => success(None),
            Ok(_) => failed(
                cause(format!("the task runtime exited with code {code}")),
                Some(*code),
                true,
            ),
            Err(e) => failed(e, (*code != 0).then_some(*code), true),
        },
    }
}

fn read_result(workdir: &Path) -> Result<Option<RuntimeResult>, String> {
    let path = workdir.join("result.json");
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("could not read result.json: {e}")),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("the task runtime wrote an invalid result.json: {e}"))
}

/// Extra XComs the runtime appended to `<workdir>/xcom.jsonl`, in order.
pub fn extra_xcoms(workdir: &Path) -> Result<Vec<(String, Value)>, String> {
    #[derive(Deserialize)]
    struct Push {
        key: String,
        value: Value,
    }
    let text = match fs::read_to_string(workdir.join("xcom.jsonl")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("could not read xcom.jsonl: {e}")),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Push>(l)
                .map(|p| (p.key, p.value))
                .map_err(|e| format!("the task runtime wrote an invalid xcom.jsonl line: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(ending: Ending) -> Ran {
        Ran {
            ending,
            last_stdout: Some("out".into()),
            last_stderr: Some("boom".into()),
        }
    }

    fn check(kind: Kind, ending: Ending, result: Option<&str>, expected: &Finish) {
        let dir = std::env::temp_dir().join(format!(
            "leoflow-agent-test-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        fs::create_dir_all(&dir).unwrap();
        if let Some(r) = result {
            fs::write(dir.join("result.json"), r).unwrap();
        }
        let got = outcome(kind, &ran(ending), &dir);
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(&got, expected);
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }

    #[test]
    fn exit_codes_and_signals_map_to_outcomes() {
        use Kind::{Bash, Python};
        check(Bash, Ending::Exited(0), None, &success(Some("out".into())));
        check(
            Bash,
            Ending::Exited(3),
            None,
            &failed("the bash command exited with code 3: boom", Some(3), true),
        );
        check(
            Bash,
            Ending::Exited(99),
            None,
            &skipped(Some(
                "the bash command exited with 99 (skip_on_exit_code)".into(),
            )),
        );
        check(
            Bash,
            Ending::Signalled(9),
            None,
            &failed("killed by signal 9", None, true),
        );
        check(
            Python,
            Ending::TimedOut(std::time::Duration::from_secs(2)),
            None,
            &failed("timed out after 2s", None, true),
        );
        check(Python, Ending::Exited(0), None, &success(None));
        check(
            Python,
            Ending::Exited(1),
            None,
            &failed("the task runtime exited with code 1: boom", Some(1), true),
        );
    }

    #[test]
    fn the_python_runtime_answers_in_result_json() {
        use Kind::Python;
        check(
            Python,
            Ending::Exited(0),
            Some(r#"{"status":"success","return_value":{"a":1}}"#),
            &success(Some(serde_json::json!({"a": 1}))),
        );
        check(
            Python,
            Ending::Exited(0),
            Some(r#"{"status":"skipped","message":"nothing to do"}"#),
            &skipped(Some("nothing to do".into())),
        );
        check(
            Python,
            Ending::Exited(1),
            Some(r#"{"status":"failed","error":"AirflowFailException: no","retryable":false}"#),
            &failed("AirflowFailException: no", Some(1), false),
        );
        check(
            Python,
            Ending::Exited(0),
            Some("not json"),
            &failed(
                "the task runtime wrote an invalid result.json: expected ident at line 1 column 2",
                None,
                true,
            ),
        );
    }
}
