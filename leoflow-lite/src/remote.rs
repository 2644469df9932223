//! The commands that talk to a running Leoflow (Lite or Pro) through its REST API:
//! `leoflow auth token`, `leoflow push`, `leoflow runs trigger|list|status|logs`. The server
//! is `--server` or `$LEOFLOW_SERVER` (default `http://localhost:8088`); the credential is
//! `$LEOFLOW_TOKEN`, as printed by `leoflow auth token`.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::{AuthCommand, PushArgs, RemoteArgs, RunsCommand};
use crate::Error;

/// The largest response body read (a page of runs, a log page).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// How often `runs trigger --wait` and `runs logs --follow` look again.
const POLL: Duration = Duration::from_millis(500);

/// A client for one server.
struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    fn new(remote: &RemoteArgs) -> Client {
        let base = remote
            .server
            .clone()
            .or_else(|| std::env::var("LEOFLOW_SERVER").ok())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "http://localhost:8088".into());
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            token: std::env::var("LEOFLOW_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty()),
            agent,
        }
    }

    /// Calls `method path` and answers the JSON body of a 2xx response; any other answer
    /// is an error quoting the server's problem detail.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("GET", _) => {
                let mut req = self.agent.get(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            (_, body) => {
                let mut req = match method {
                    "PATCH" => self.agent.patch(&url),
                    _ => self.agent.post(&url),
                };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send_json(body.cloned().unwrap_or(Value::Null))
            }
        };
        let mut resp = result.map_err(|e| {
            Error::Usage(format!(
                "cannot reach Leoflow at {}: {e}; is it running? (set --server or LEOFLOW_SERVER)",
                self.base
            ))
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let detail = json
            .get("detail")
            .and_then(Value::as_str)
            .map_or_else(|| json.to_string(), str::to_string);
        let hint = match status {
            401 => " (log in: export LEOFLOW_TOKEN=$(leoflow auth token --user admin))",
            403 => " (your role does not allow this)",
            _ => "",
        };
        Err(Error::Usage(format!(
            "{method} {path} answered HTTP {status}: {detail}{hint}"
        )))
    }
}

/// Percent-encodes one path segment (run ids contain `:` and `+`).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `leoflow auth …`.
pub fn auth(command: &AuthCommand) -> Result<(), Error> {
    let AuthCommand::Token { user, remote } = command;
    let password = match std::env::var("LEOFLOW_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => read_password(user)?,
    };
    let client = Client::new(remote);
    let answer = client.call(
        "POST",
        "/auth/token",
        Some(&json!({"username": user, "password": password})),
    )?;
    let token = answer
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Usage(format!("the server answered no token: {answer}")))?;
    println!("{token}");
    Ok(())
}

fn read_password(user: &str) -> Result<String, Error> {
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::Usage(format!("cannot read the password from stdin: {e}")))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    eprint!("password for {user}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Usage(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `leoflow push <dag.json>…`: registers compiled DAGs (idempotent by content hash).
pub fn push(args: &PushArgs) -> Result<(), Error> {
    let client = Client::new(&args.remote);
    for file in &args.files {
        let spec = read_spec(file)?;
        let dag_id = spec
            .get("dag_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: no \"dag_id\"; push a dag.json made by `leoflow compile`",
                    file.display()
                ))
            })?
            .to_string();
        let answer = client.call(
            "POST",
            &format!("/api/v2/dags/{}/versions", segment(&dag_id)),
            Some(&spec),
        )?;
        let created = answer.get("created").and_then(Value::as_bool) == Some(true);
        println!(
            "{} {dag_id}: version {} ({})",
            if created { "registered" } else { "unchanged" },
            answer.get("version_number").unwrap_or(&Value::Null),
            file.display()
        );
    }
    Ok(())
}

fn read_spec(file: &Path) -> Result<Value, Error> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
        action: "read",
        path: file.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{}: not JSON ({e}); push the dag.json that `leoflow compile` writes",
            file.display()
        ))
    })
}

/// `leoflow runs …`.
pub fn runs(command: &RunsCommand) -> Result<(), Error> {
    match command {
        RunsCommand::Trigger {
            dag_id,
            conf,
            wait,
            remote,
        } => {
            let conf: Value = match conf {
                Some(c) => serde_json::from_str(c).map_err(|e| {
                    Error::Usage(format!(
                        "--conf is not a JSON object: {e}; e.g. --conf '{{\"n\": 3}}'"
                    ))
                })?,
                None => json!({}),
            };
            let client = Client::new(remote);
            let run = client.call(
                "POST",
                &format!("/api/v2/dags/{}/dagRuns", segment(dag_id)),
                Some(&json!({"logical_date": null, "conf": conf})),
            )?;
            let run_id = run["dag_run_id"].as_str().unwrap_or_default().to_string();
            println!("{run_id}");
            if *wait {
                let state = wait_for(&client, dag_id, &run_id)?;
                println!("{state}");
                if state != "success" {
                    return Err(Error::Usage(format!(
                        "run {run_id} of {dag_id} ended {state}; see `leoflow runs status {dag_id} {run_id}`"
                    )));
                }
            }
            Ok(())
        }
        RunsCommand::List {
            dag_id,
            limit,
            remote,
        } => {
            let client = Client::new(remote);
            let dag = dag_id.as_deref().map_or_else(|| "~".to_string(), segment);
            let page = client.call(
                "GET",
                &format!("/api/v2/dags/{dag}/dagRuns?limit={limit}&order_by=-run_after"),
                None,
            )?;
            for run in page["dag_runs"].as_array().into_iter().flatten() {
                println!(
                    "{:<24} {:<48} {:<8} {}",
                    run["dag_id"].as_str().unwrap_or_default(),
                    run["dag_run_id"].as_str().unwrap_or_default(),
                    run["state"].as_str().unwrap_or_default(),
                    run["run_after"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        RunsCommand::Status {
            dag_id,
            run_id,
            remote,
        } => {
            let client = Client::new(remote);
            let base = format!(
                "/api/v2/dags/{}/dagRuns/{}",
                segment(dag_id),
                segment(run_id)
            );
            let run = client.call("GET", &base, None)?;
            println!(
                "{dag_id} {run_id}: {}",
                run["state"].as_str().unwrap_or_default()
            );
            let tis = client.call("GET", &format!("{base}/taskInstances?limit=100"), None)?;
            for ti in tis["task_instances"].as_array().into_iter().flatten() {
                let map = ti["map_index"].as_i64().unwrap_or(-1);
                let task = if map >= 0 {
                    format!("{}[{map}]", ti["task_id"].as_str().unwrap_or_default())
                } else {
                    ti["task_id"].as_str().unwrap_or_default().to_string()
                };
                println!(
                    "  {task:<32} {:<16} try {}",
                    ti["state"].as_str().unwrap_or("none"),
                    ti["try_number"]
                );
            }
            Ok(())
        }
        RunsCommand::Logs {
            dag_id,
            run_id,
            task_id,
            try_number,
            map_index,
            remote,
        } => {
            let client = Client::new(remote);
            print_logs(&client, dag_id, run_id, task_id, *try_number, *map_index)
        }
    }
}

fn wait_for(client: &Client, dag_id: &str, run_id: &str) -> Result<String, Error> {
    let path = format!(
        "/api/v2/dags/{}/dagRuns/{}",
        segment(dag_id),
        segment(run_id)
    );
    let began = Instant::now();
    loop {
        let run = client.call("GET", &path, None)?;
        let state = run["state"].as_str().unwrap_or_default().to_string();
        if state == "success" || state == "failed" {
            return Ok(state);
        }
        if began.elapsed() > Duration::from_secs(24 * 3600) {
            return Err(Error::Usage(format!(
                "run {run_id} did not finish within a day"
            )));
        }
        std::thread::sleep(POLL);
    }
}

fn print_logs(
    client: &Client,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    try_number: u32,
    map_index: i32,
) -> Result<(), Error> {
    let base = format!(
        "/api/v2/dags/{}/dagRuns/{}/taskInstances/{}/logs/{try_number}?map_index={map_index}",
        segment(dag_id),
        segment(run_id),
        segment(task_id)
    );
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("{base}&token={}", segment(t)),
            None => base.clone(),
        };
        let page = client.call("GET", &path, None)?;
        for event in page["content"].as_array().into_iter().flatten() {
            if let Some(line) = event["event"].as_str() {
                if !line.starts_with("::") {
                    println!("{line}");
                }
            }
        }
        match page["continuation_token"].as_str() {
            Some(next) if Some(next) != token.as_deref() => token = Some(next.to_string()),
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn run_ids_are_escaped_as_path_segments() {
        assert_eq!(
            segment("manual__2026-11-23T14:19:22.228716+00:00"),
            "manual__2026-11-23T14%3A19%3A22.228716%2B00%3A00"
        );
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
