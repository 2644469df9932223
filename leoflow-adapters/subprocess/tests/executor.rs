//! The subprocess executor against a stand-in agent (a bash script), so its own rules are
//! checked without the agent API: one process per attempt, a clean environment, the
//! agent's stderr in the attempt's log, events, `live()`, and process groups ended on
//! cancel and when the agent dies.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use leoflow_ports::dag::{DagSpec, TaskKind};
use leoflow_ports::executor::{Attempt, AttemptCredentials, Error, Event, EventStream, Executor};
use leoflow_ports::log::{self, LogChunk, LogLine, LogStore};
use leoflow_ports::run::{AttemptId, RunKey, RunType, TaskKey};
use leoflow_subprocess::{SubprocessConfig, SubprocessExecutor};

#[derive(Default)]
struct VecLogs(Mutex<HashMap<AttemptId, Vec<LogLine>>>);

#[async_trait]
impl LogStore for VecLogs {
    async fn append(&self, attempt: &AttemptId, lines: &[LogLine]) -> Result<(), log::Error> {
        self.0
            .lock()
            .unwrap()
            .entry(attempt.clone())
            .or_default()
            .extend_from_slice(lines);
        Ok(())
    }
    async fn read(&self, attempt: &AttemptId, _: u64, _: usize) -> Result<LogChunk, log::Error> {
        let lines = self
            .0
            .lock()
            .unwrap()
            .get(attempt)
            .cloned()
            .unwrap_or_default();
        Ok(LogChunk {
            next_offset: lines.len() as u64,
            lines,
            complete: false,
        })
    }
    async fn follow(
        &self,
        _: &AttemptId,
        _: u64,
    ) -> Result<BoxStream<'static, LogLine>, log::Error> {
        Ok(futures::stream::empty().boxed())
    }
    async fn close(&self, _: &AttemptId) -> Result<(), log::Error> {
        Ok(())
    }
    async fn delete_for_run(&self, _: &RunKey) -> Result<(), log::Error> {
        Ok(())
    }
}

struct FixedCredentials;

impl AttemptCredentials for FixedCredentials {
    fn token_for(&self, attempt: &Attempt) -> String {
        format!("token-for-{}", attempt.id)
    }
    fn agent_url(&self) -> String {
        "http://127.0.0.1:9".into()
    }
}

struct Setup {
    exec: SubprocessExecutor,
    logs: Arc<VecLogs>,
    dir: PathBuf,
}

/// An executor whose "agent" is `script` (bash), in a fresh temp dir.
fn setup(name: &str, script: &str) -> Setup {
    let dir =
        std::env::temp_dir().join(format!("leoflow-subprocess-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let agent = dir.join("fake-agent");
    std::fs::write(&agent, format!("#!/bin/bash\n{script}\n")).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&agent)
        .status()
        .unwrap();
    let logs = Arc::new(VecLogs::default());
    let mut config = SubprocessConfig::new(&agent, &dir);
    config.kill_grace = Duration::from_secs(1);
    config
        .extra_env
        .insert("FAKE_DIR".into(), dir.display().to_string());
    let exec = SubprocessExecutor::new(config, Arc::new(FixedCredentials), logs.clone());
    Setup { exec, logs, dir }
}

fn attempt(kind: &str, env: &[(&str, &str)]) -> Attempt {
    let env: serde_json::Map<String, serde_json::Value> = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
        .collect();
    let spec = serde_json::json!({
        "schema_version": "1.0", "dag_id": "d", "dag_version": "v", "image": "",
        "tasks": [{"task_id": "t", "type": kind, "entrypoint": "true", "env": env}]
    });
    let spec = DagSpec::from_json(spec.to_string().as_bytes()).unwrap();
    Attempt {
        id: AttemptId {
            task: TaskKey::new(&RunKey::new("d", "r"), "t", -1),
            try_number: 1,
        },
        dag: Arc::new(spec),
        version_number: 1,
        run_type: RunType::Manual,
        timeout: None,
    }
}

async fn next(events: &mut EventStream) -> Event {
    tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("no executor event within 30 s")
        .expect("the event stream ended")
}

/// Processes of a group that are not zombies.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            out.push(pid);
        }
    }
    out
}

/// Waits (bounded) until the group has no live process.
async fn until_gone(pgid: i32) {
    let end = Instant::now() + Duration::from_secs(20);
    while !group_members(pgid).is_empty() {
        assert!(
            Instant::now() < end,
            "group {pgid} still has {:?}",
            group_members(pgid)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until_file(path: &Path) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s.trim().to_string();
            }
        }
        assert!(Instant::now() < end, "{} never appeared", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_process_per_attempt_with_a_clean_environment() {
    let s = setup("env", r"env | sort | sed 's/^/env: /' >&2; exit 3");
    let mut events = s.exec.subscribe();
    let a = attempt(
        "bash",
        &[("TASK_VAR", "x"), ("LEOFLOW_AGENT_URL", "http://evil")],
    );
    s.exec.launch(a.clone()).await.unwrap();
    s.exec.launch(a.clone()).await.unwrap();
    let Event::Started { executor_ref, .. } = next(&mut events).await else {
        panic!("expected Started first");
    };
    assert!(executor_ref.is_some_and(|r| r.parse::<u32>().is_ok()));
    let exited = next(&mut events).await;
    assert_eq!(
        exited,
        Event::Exited {
            attempt: a.id.clone(),
            exit_code: Some(3),
            message: None
        }
    );
    // Relaunching a finished attempt does nothing either.
    s.exec.launch(a.clone()).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err(),
        "a relaunch produced events"
    );
    assert!(s.exec.live().await.unwrap().is_empty());

    let lines = s.logs.0.lock().unwrap().get(&a.id).cloned().unwrap();
    let env: HashMap<String, String> = lines
        .iter()
        .filter_map(|l| l.message.strip_prefix("env: "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut keys: Vec<&str> = env.keys().map(String::as_str).collect();
    keys.sort_unstable();
    // bash adds PWD, SHLVL and `_` itself.
    keys.retain(|k| !matches!(*k, "PWD" | "SHLVL" | "_" | "HOME" | "LANG" | "TMPDIR"));
    assert_eq!(
        keys,
        [
            "FAKE_DIR",
            "LEOFLOW_AGENT_TOKEN",
            "LEOFLOW_AGENT_URL",
            "LEOFLOW_PROJECT_DIR",
            "LEOFLOW_PYTHON",
            "LEOFLOW_WARM_SOCKET",
            "LEOFLOW_WORK_ROOT",
            "PATH",
            "TASK_VAR"
        ],
        "nothing of the server's environment leaks"
    );
    assert_eq!(
        env["LEOFLOW_AGENT_URL"], "http://127.0.0.1:9",
        "a task cannot redirect its agent"
    );
    assert_eq!(env["LEOFLOW_AGENT_TOKEN"], format!("token-for-{}", a.id));
    if Path::new("/dev/shm").is_dir() {
        assert!(
            env["LEOFLOW_WORK_ROOT"].starts_with("/dev/shm/leoflow-work-"),
            "work directories go to a private directory on the memory file system: {}",
            env["LEOFLOW_WORK_ROOT"]
        );
    }
    assert!(lines.iter().all(|l| l.stream == log::LogStream::System));
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test]
async fn cancel_ends_the_whole_process_group() {
    let s = setup(
        "cancel",
        r#"sleep 300 & sleep 300 & echo "$$" > "$FAKE_DIR/pgid.tmp"; mv "$FAKE_DIR/pgid.tmp" "$FAKE_DIR/pgid"; wait"#,
    );
    let mut events = s.exec.subscribe();
    let a = attempt("bash", &[]);
    s.exec.launch(a.clone()).await.unwrap();
    assert!(matches!(next(&mut events).await, Event::Started { .. }));
    let pgid: i32 = until_file(&s.dir.join("pgid")).await.parse().unwrap();
    assert_eq!(s.exec.live().await.unwrap(), std::slice::from_ref(&a.id));
    assert!(group_members(pgid).len() >= 3, "agent and two sleeps run");

    s.exec.cancel(&a.id).await.unwrap();
    let Event::Exited { message, .. } = next(&mut events).await else {
        panic!("expected Exited");
    };
    assert_eq!(message.as_deref(), Some("killed by signal 15"));
    until_gone(pgid).await;
    assert!(s.exec.live().await.unwrap().is_empty());
    // Cancelling what is no longer running is not an error.
    s.exec.cancel(&a.id).await.unwrap();
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test]
async fn the_task_group_the_agent_names_is_ended_when_the_agent_dies() {
    // Job control gives the background sleep its own process group, as the real agent
    // gives its task; the script names it like the agent does, then dies.
    let s = setup(
        "orphan",
        r#"set -m; sleep 300 & echo "child_pgid=$!"; echo "$!" > "$FAKE_DIR/pgid.tmp"; mv "$FAKE_DIR/pgid.tmp" "$FAKE_DIR/pgid"; sleep 0.2; kill -9 $$"#,
    );
    let mut events = s.exec.subscribe();
    let a = attempt("bash", &[]);
    s.exec.launch(a.clone()).await.unwrap();
    assert!(matches!(next(&mut events).await, Event::Started { .. }));
    let task_group: i32 = until_file(&s.dir.join("pgid")).await.parse().unwrap();
    let Event::Exited { message, .. } = next(&mut events).await else {
        panic!("expected Exited");
    };
    assert_eq!(message.as_deref(), Some("killed by signal 9"));
    until_gone(task_group).await;
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test]
async fn only_python_bash_and_http_api_run_here() {
    let s = setup("kinds", "exit 0");
    let err = s.exec.launch(attempt("empty", &[])).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    let caps = s.exec.capabilities();
    assert_eq!(
        caps.kinds,
        [TaskKind::Python, TaskKind::Bash, TaskKind::HttpApi]
    );
    assert!(!caps.isolated && !caps.reattaches);
    assert_eq!(s.exec.name(), "subprocess");
    let _ = std::fs::remove_dir_all(&s.dir);
}
