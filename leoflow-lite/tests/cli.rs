//! End-to-end tests of the `leoflow` binary: `init` → `validate` → `compile`, plain Airflow
//! files and folders, the benchmark DAGs, and every error path an author can hit. They run
//! the real binary against temporary directories, with the embedded shim and `python3`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use leoflow_core::validate::{validate, Limits};
use leoflow_ports::dag::{DagSpec, TaskKind};

/// A scratch workspace: a temporary directory that is also `LEOFLOW_HOME`.
struct Scratch {
    tmp: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            tmp: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        let parent = path.parent().expect("a file under the scratch directory");
        fs::create_dir_all(parent).expect("creating the parent directory");
        fs::write(&path, text).expect("writing a scratch file");
        path
    }

    /// Runs `leoflow <args>` with the scratch directory as working directory.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_leoflow"))
            .args(args)
            .current_dir(self.tmp.path())
            .env("LEOFLOW_HOME", self.path(".leoflow-home"))
            .env("NO_COLOR", "1")
            .env("LEOFLOW_UI_DOWNLOAD", "0")
            .env_remove("LEOFLOW_PYTHON")
            .output()
            .expect("the leoflow binary runs")
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "leoflow {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and expects exit code 1 with every `expected` line fragment on stderr; returns stderr.
    fn fails(&self, args: &[&str], expected: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "leoflow {args:?} should fail:\n{}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        for want in expected {
            assert!(
                stderr.lines().any(|l| l.contains(want)),
                "leoflow {args:?}: no stderr line contains {want:?}:\n{stderr}"
            );
        }
        assert!(
            !stderr.contains('\x1b'),
            "colour with NO_COLOR set:\n{stderr}"
        );
        stderr
    }

    /// Reads a dag.json and checks it parses and validates.
    fn dag(&self, rel: &str) -> DagSpec {
        let bytes = fs::read(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let spec = DagSpec::from_json(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        validate(&spec, &Limits::default()).unwrap_or_else(|e| panic!("{rel}: {e}"));
        spec
    }
}

const TWO_DAGS: &str = r#"from datetime import datetime

from airflow.sdk import DAG, dag, task
from airflow.providers.standard.operators.bash import BashOperator

with DAG("classic", start_date=datetime(2024, 1, 1), schedule="@hourly", catchup=False):
    first = BashOperator(task_id="first", bash_command="echo 1", retries=2)
    second = BashOperator(task_id="second", bash_command="echo 2")
    first >> second


@dag(dag_id="taskflow", schedule=None, start_date=datetime(2024, 1, 1))
def taskflow():
    @task
    def extract():
        return [1, 2, 3]

    @task
    def total(values):
        return sum(values)

    total(extract())


taskflow()
"#;

/// A one-DAG project in `<dir>` with the given leoflow.yaml and dag.py.
fn project(s: &Scratch, dir: &str, yaml: &str, dag: &str) {
    s.write(&format!("{dir}/leoflow.yaml"), yaml);
    s.write(&format!("{dir}/dag.py"), dag);
}

const ETL: &str = r#"from datetime import datetime

from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("etl", start_date=datetime(2024, 1, 1), schedule="@daily", tags=["py"]):
    extract = BashOperator(task_id="extract", bash_command="echo e")
    transform = BashOperator(task_id="transform", bash_command="echo t", retries=1)
    load = BashOperator(task_id="load", bash_command="echo l")
    extract >> transform >> load
"#;

// --- happy paths -----------------------------------------------------------------------

#[test]
fn init_validate_compile_round_trip() {
    let s = Scratch::new();
    let out = s.ok(&["init", "hello-world"]);
    assert!(out.contains("\"hello-world\""), "{out}");
    assert!(s.path("hello-world/leoflow.yaml").is_file());
    let dag_py = fs::read_to_string(s.path("hello-world/dag.py")).unwrap();

    let out = s.ok(&["validate", "hello-world"]);
    assert!(out.contains("OK hello-world/dag.py"), "{out}");

    let out = s.ok(&[
        "compile",
        "hello-world",
        "--image",
        "registry/hello:1",
        "--dag-version",
        "v1.2.3",
    ]);
    assert!(out.contains("hello-world/dag.py -> dag.json"), "{out}");
    let spec = s.dag("dag.json");
    assert_eq!(spec.dag_id, "hello-world");
    assert_eq!(spec.dag_version, "v1.2.3");
    assert_eq!(spec.image, "registry/hello:1");
    assert_eq!(spec.source.as_deref(), Some(dag_py.as_str()));
    assert_eq!(spec.fileloc.as_deref(), Some("dag.py"));
    assert_eq!(spec.schedule.as_deref(), Some("@daily"));
    assert!(!spec.tasks.is_empty());
    for t in &spec.tasks {
        assert_eq!(t.kind, TaskKind::Python, "{t:?}");
        assert_eq!(
            t.entrypoint.as_deref(),
            Some(format!("dag.py:{}", t.task_id).as_str())
        );
    }
}

#[test]
fn init_sanitises_the_dag_id_and_refuses_to_overwrite() {
    let s = Scratch::new();
    s.ok(&["init", "my project.v2"]);
    let yaml = fs::read_to_string(s.path("my project.v2/leoflow.yaml")).unwrap();
    assert!(yaml.contains("dag_id: \"my_project_v2\""), "{yaml}");
    s.ok(&["validate", "my project.v2"]);

    fs::write(s.path("my project.v2/dag.py"), "# mine\n").unwrap();
    s.fails(&["init", "my project.v2"], &["already exist", "--force"]);
    assert_eq!(
        fs::read_to_string(s.path("my project.v2/dag.py")).unwrap(),
        "# mine\n"
    );
    s.ok(&["init", "my project.v2", "--force"]);
    assert_ne!(
        fs::read_to_string(s.path("my project.v2/dag.py")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn compile_defaults_the_version_to_dev_outside_git() {
    let s = Scratch::new();
    s.ok(&["init", "p"]);
    s.ok(&["compile", "p", "-o", "out/p.json"]);
    assert_eq!(s.dag("out/p.json").dag_version, "dev");
}

#[test]
fn a_plain_airflow_file_with_two_dags_writes_two_files() {
    let s = Scratch::new();
    s.write("dags/pipelines.py", TWO_DAGS);
    let out = s.ok(&["compile", "dags/pipelines.py", "--output-dir", "compiled"]);
    assert!(out.contains("compiled/classic.json"), "{out}");

    let classic = s.dag("compiled/classic.json");
    assert_eq!(classic.fileloc.as_deref(), Some("pipelines.py"));
    assert_eq!(classic.schedule.as_deref(), Some("@hourly"));
    assert_eq!(classic.task("first").unwrap().retries, Some(2));
    assert_eq!(classic.task("second").unwrap().depends_on, ["first"]);
    assert_eq!(classic.source.as_deref(), Some(TWO_DAGS));

    let taskflow = s.dag("compiled/taskflow.json");
    assert_eq!(taskflow.schedule, None);
    assert_eq!(taskflow.task("total").unwrap().depends_on, ["extract"]);
    let names: Vec<_> = fs::read_dir(s.path("compiled"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_folder_without_leoflow_yaml_compiles_to_build_by_default() {
    let s = Scratch::new();
    s.write("dags/pipelines.py", TWO_DAGS);
    s.write("dags/nested/etl.py", ETL);
    s.write("dags/helpers.py", "def shared():\n    return 1\n");
    s.ok(&["compile", "dags"]);
    assert_eq!(
        s.dag("build/etl.json").fileloc.as_deref(),
        Some("nested/etl.py")
    );
    s.dag("build/classic.json");
    s.dag("build/taskflow.json");
    let out = s.ok(&["validate", "dags"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("OK ")).count(),
        3,
        "{out}"
    );
}

#[test]
fn the_benchmark_dags_compile_unchanged() {
    let s = Scratch::new();
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/airflow/dags");
    let mut copied = 0;
    for entry in fs::read_dir(&bench).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            fs::create_dir_all(s.path("airflow-dags")).unwrap();
            fs::copy(
                &path,
                s.path("airflow-dags").join(path.file_name().unwrap()),
            )
            .unwrap();
            copied += 1;
        }
    }
    assert_eq!(copied, 4, "benchmark DAGs not found in {}", bench.display());
    s.ok(&["compile", "airflow-dags", "--output-dir", "out"]);
    for (dag_id, tasks) in [
        ("bench_40", 40),
        ("bench_10", 10),
        ("fanout_100", 102),
        ("bash_chain_20", 20),
    ] {
        let spec = s.dag(&format!("out/{dag_id}.json"));
        assert_eq!(spec.tasks.len(), tasks, "{dag_id}");
    }
}

#[test]
fn project_overlays_are_applied() {
    let s = Scratch::new();
    project(
        &s,
        "etl",
        r"dag_id: etl
owner: data-team
description: Nightly ETL
tags: [etl, nightly]
staging: {enabled: true, size: 2Gi}
defaults:
  retries: 3
  retry_delay_seconds: 45
  execution_timeout_seconds: 600
tasks:
  transform:
    retries: 5
    env: {MODE: full}
    resources:
      requests: {cpu: 500m, memory: 1Gi}
    execution:
      node_selector: {pool: etl}
",
        ETL,
    );
    s.ok(&["compile", "etl", "-o", "etl.json"]);
    let spec = s.dag("etl.json");
    assert_eq!(spec.owner.as_deref(), Some("data-team"));
    assert_eq!(spec.description.as_deref(), Some("Nightly ETL"));
    assert_eq!(spec.tags, ["etl", "nightly"]);
    assert_eq!(spec.staging.as_ref().unwrap().size.as_deref(), Some("2Gi"));
    let d = spec.default_args.as_ref().unwrap();
    assert_eq!(d.retries, Some(3));
    assert_eq!(d.retry_delay_seconds, Some(45.0));
    assert_eq!(d.execution_timeout_seconds, Some(600.0));
    let t = spec.task("transform").unwrap();
    assert_eq!(t.retries, Some(5));
    assert_eq!(t.env["MODE"], "full");
    let r = t.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert_eq!(r.cpu.as_deref(), Some("500m"));
    assert_eq!(t.execution.as_ref().unwrap().node_selector["pool"], "etl");
    let extract = spec.task("extract").unwrap();
    assert_eq!(extract.resources, None);
    assert!(extract.env.is_empty());
}

#[test]
fn dag_id_in_leoflow_yaml_selects_the_dag() {
    let s = Scratch::new();
    project(&s, "p", "dag_id: taskflow\n", TWO_DAGS);
    s.ok(&["compile", "p", "--output-dir", "out"]);
    assert_eq!(s.dag("out/taskflow.json").dag_id, "taskflow");
    assert!(!s.path("out/classic.json").exists());
}

#[test]
fn help_is_available_for_every_command() {
    let s = Scratch::new();
    for args in [
        &["--help"][..],
        &["init", "--help"],
        &["validate", "--help"],
        &["compile", "--help"],
        &["version", "--help"],
    ] {
        let out = s.ok(args);
        assert!(out.contains("Usage:"), "{args:?}: {out}");
        assert!(!out.contains('\x1b'), "{args:?}: colour with NO_COLOR");
    }
}

#[test]
fn version_prints_text_and_json() {
    let s = Scratch::new();
    assert!(s.ok(&["version"]).starts_with("leoflow "));
    let json: serde_json::Value = serde_json::from_str(&s.ok(&["version", "--json"])).unwrap();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["shim_hash"].is_string());
}

// --- error paths -------------------------------------------------------------------------

#[test]
fn a_syntax_error_is_reported_with_its_line() {
    let s = Scratch::new();
    project(
        &s,
        "p",
        "dag_id: p\n",
        "from airflow.sdk import DAG\n\n\ndef broken(:\n    pass\n",
    );
    s.fails(&["compile", "p"], &["p/dag.py:4: "]);
    assert!(!s.path("dag.json").exists(), "nothing is written on error");
    s.fails(&["validate", "p"], &["p/dag.py:4: "]);
}

#[test]
fn an_unknown_import_names_the_module_and_how_to_declare_it() {
    let s = Scratch::new();
    project(
        &s,
        "p",
        "dag_id: p\n",
        "from airflow.sdk import DAG\nimport leoflow_test_missing_module\n\nwith DAG('p'):\n    pass\n",
    );
    let stderr = s.fails(&["compile", "p"], &["p/dag.py:2: "]);
    assert!(stderr.contains("leoflow_test_missing_module"), "{stderr}");
    assert!(stderr.contains("dependencies"), "{stderr}");
}

#[test]
fn a_bad_leoflow_yaml_key_is_reported_with_line_and_key_path() {
    let s = Scratch::new();
    project(
        &s,
        "p",
        "dag_id: etl\nstagin:\n  enabled: true\ntasks:\n  load:\n    retires: 2\n",
        ETL,
    );
    s.fails(
        &["validate", "p"],
        &["p/leoflow.yaml:2: stagin: unknown field `stagin`"],
    );
    project(
        &s,
        "q",
        "dag_id: etl\ntasks:\n  load:\n    retires: 2\n",
        ETL,
    );
    s.fails(
        &["compile", "q"],
        &["q/leoflow.yaml:4: tasks.load.retires: unknown field `retires`"],
    );
}

#[test]
fn leoflow_yaml_schema_errors_are_all_reported() {
    let s = Scratch::new();
    project(
        &s,
        "p",
        "dag_id: etl\npython_version: \"2.7\"\ndefaults:\n  retries: 500\ndag_id: again\n",
        ETL,
    );
    s.fails(
        &["validate", "p"],
        &["p/leoflow.yaml:5: dag_id: duplicate key"],
    );
    project(
        &s,
        "p",
        "dag_id: etl\npython_version: \"2.7\"\ndefaults:\n  retries: 500\n",
        ETL,
    );
    s.fails(
        &["validate", "p"],
        &[
            "p/leoflow.yaml:2: python_version: ",
            "p/leoflow.yaml:4: defaults.retries: at most 100 retries",
        ],
    );
}

#[test]
fn an_unknown_task_override_lists_the_dags_task_ids() {
    let s = Scratch::new();
    project(
        &s,
        "p",
        "dag_id: etl\ntasks:\n  transfrom:\n    retries: 2\n",
        ETL,
    );
    s.fails(
        &["compile", "p"],
        &["p/leoflow.yaml:3: tasks.transfrom: unknown task id \"transfrom\"; the DAG defines [extract, load, transform]; did you mean \"transform\"?"],
    );
    assert!(!s.path("dag.json").exists());
}

#[test]
fn a_missing_dag_id_is_reported_with_the_ids_found() {
    let s = Scratch::new();
    project(&s, "p", "dag_id: nope\n", TWO_DAGS);
    s.fails(
        &["compile", "p"],
        &["p/leoflow.yaml:1: dag_id: DAG \"nope\" not found in dag.py; it defines [classic, taskflow]"],
    );
    project(&s, "q", "owner: me\n", TWO_DAGS);
    s.fails(
        &["compile", "q"],
        &["q/leoflow.yaml: dag.py defines 2 DAGs [classic, taskflow]; set dag_id"],
    );
}

#[test]
fn a_cycle_is_reported_in_the_dag_file() {
    let s = Scratch::new();
    s.write(
        "dags/cycle.py",
        "from airflow.sdk import DAG\nfrom airflow.providers.standard.operators.empty import EmptyOperator\n\n\
         with DAG('cycle'):\n    a = EmptyOperator(task_id='a')\n    b = EmptyOperator(task_id='b')\n    a >> b >> a\n",
    );
    let stderr = s.fails(&["compile", "dags"], &["dags/cycle.py:7: "]);
    assert!(stderr.contains("cycle"), "{stderr}");
    assert!(!s.path("build/cycle.json").exists());
}

#[test]
fn validation_errors_are_mapped_back_to_the_file_that_caused_them() {
    let s = Scratch::new();
    // A schedule the parser passes through but the engine cannot run: the DAG file.
    project(
        &s,
        "p",
        "dag_id: p\n",
        "from airflow.sdk import DAG\nfrom airflow.providers.standard.operators.empty import EmptyOperator\n\n\
         with DAG('p',\n         schedule='61 * * * *'):\n    EmptyOperator(task_id='a')\n",
    );
    s.fails(
        &["compile", "p"],
        &["p/dag.py:5: field schedule: invalid schedule"],
    );
    // A value leoflow.yaml set on a task: the YAML key.
    project(
        &s,
        "q",
        "dag_id: etl\ntasks:\n  load:\n    resources:\n      limits: {cpu: lots}\n",
        ETL,
    );
    s.fails(
        &["compile", "q"],
        &["q/leoflow.yaml:5: tasks.load.resources.limits.cpu: \"lots\" is not a Kubernetes quantity"],
    );
}

#[test]
fn a_broken_file_in_a_folder_does_not_stop_the_others() {
    let s = Scratch::new();
    s.write("dags/etl.py", ETL);
    s.write(
        "dags/broken.py",
        "from airflow.sdk import DAG\nraise RuntimeError('boom')\n",
    );
    let stderr = s.fails(&["compile", "dags"], &["dags/broken.py:2: "]);
    assert!(stderr.contains("boom"), "{stderr}");
    s.dag("build/etl.json");
}

#[test]
fn a_missing_python_says_what_to_install() {
    let s = Scratch::new();
    s.ok(&["init", "p"]);
    let stderr = s.fails(
        &["compile", "p", "--python", "/nonexistent/python3"],
        &["/nonexistent/python3"],
    );
    assert!(stderr.contains("python3 ≥ 3.9"), "{stderr}");
    assert!(stderr.contains("--python"), "{stderr}");
    s.fails(
        &["validate", "p", "--python", "/nonexistent/python3"],
        &["python3 ≥ 3.9"],
    );
}

#[test]
fn bad_paths_and_flag_combinations_are_refused() {
    let s = Scratch::new();
    s.fails(&["compile", "missing"], &["missing does not exist"]);
    s.write("notes.txt", "hi");
    s.fails(
        &["compile", "notes.txt"],
        &["neither a directory nor a Python"],
    );
    s.write("dags/pipelines.py", TWO_DAGS);
    s.fails(
        &["compile", "dags", "-o", "one.json"],
        &["defines 2 DAGs; use --output-dir"],
    );
    assert!(!s.path("one.json").exists());
    fs::create_dir_all(s.path("empty")).unwrap();
    s.fails(&["compile", "empty"], &["empty: no Python files found"]);
    s.write("p/leoflow.yaml", "dag_id: p\n");
    s.fails(
        &["validate", "p"],
        &["p/leoflow.yaml:", "dag.py does not exist"],
    );
}
