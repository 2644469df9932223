//! `leoflow compile --image IMG --build [--push] [--builder …]` end to end, with fake
//! `docker`/`podman`/`buildah` scripts on `PATH` that record their arguments: what is tested
//! is how Leoflow invokes the builder (arguments, order, the shim in the build context,
//! failures and a missing builder), not the builders themselves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fake builder: appends its name and arguments to `$FAKE_BUILDER_LOG` (one line per call),
/// notes whether the build context holds the shim, and exits 3 for the subcommand named by
/// `$FAKE_BUILDER_FAIL`.
const FAKE_BUILDER: &str = r#"#!/bin/sh
echo "${0##*/} $*" >> "$FAKE_BUILDER_LOG"
if [ "$1" = build ] && [ -f "$6/.leoflow/shim/leoflow_shim/__init__.py" ] && [ -d "$6/.leoflow/shim/airflow" ]; then
  echo "shim in context" >> "$FAKE_BUILDER_LOG"
fi
if [ "$1" = "$FAKE_BUILDER_FAIL" ]; then
  echo "fake $1 failure" >&2
  exit 3
fi
"#;

struct Scratch {
    tmp: tempfile::TempDir,
}

impl Scratch {
    /// A scratch directory with `bin/` holding the fake builders and `python3`.
    fn new() -> Scratch {
        let s = Scratch {
            tmp: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(s.path("bin")).unwrap();
        for name in ["docker", "podman", "buildah"] {
            let path = s.path("bin").join(name);
            fs::write(&path, FAKE_BUILDER).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Runs `leoflow <args>` with `PATH` = the fake builders (unless `without_builders`)
    /// and the directory of the real `python3` and `sh`.
    fn run_with(&self, args: &[&str], without_builders: bool, fail: &str) -> Output {
        let mut path = Vec::new();
        if !without_builders {
            path.push(self.path("bin"));
        }
        for tool in ["python3", "sh"] {
            path.push(which(tool).parent().unwrap().to_path_buf());
        }
        Command::new(env!("CARGO_BIN_EXE_leoflow"))
            .args(args)
            .current_dir(self.tmp.path())
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("LEOFLOW_HOME", self.path(".leoflow-home"))
            .env("FAKE_BUILDER_LOG", self.path("builder.log"))
            .env("FAKE_BUILDER_FAIL", fail)
            .env("NO_COLOR", "1")
            .env_remove("LEOFLOW_PYTHON")
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, false, "")
    }

    fn log(&self) -> Vec<String> {
        fs::read_to_string(self.path("builder.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn init(&self, dir: &str) -> PathBuf {
        let out = self.run(&["init", dir]);
        assert!(out.status.success(), "{}", text(&out));
        self.path(dir)
    }

    fn image_in(&self, dag_json: &str) -> String {
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(self.path(dag_json)).unwrap()).unwrap();
        json["image"].as_str().unwrap().to_string()
    }
}

fn which(tool: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "leoflow failed:\n{}", text(out));
    text(out)
}

fn failed(out: &Output, expected: &[&str]) -> String {
    assert!(!out.status.success(), "leoflow succeeded:\n{}", text(out));
    let all = text(out);
    for e in expected {
        assert!(all.contains(e), "missing {e:?} in:\n{all}");
    }
    all
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn build_and_push_run_the_builder_in_order_and_record_the_image() {
    let s = Scratch::new();
    s.init("etl");
    let out = ok(&s.run(&[
        "compile",
        "etl",
        "--image",
        "registry.example.com/dags/etl:abc123",
        "--dag-version",
        "abc123",
        "--build",
        "--push",
        "-o",
        "dag.json",
    ]));
    assert!(
        out.contains("Pushing registry.example.com/dags/etl:abc123 with docker"),
        "{out}"
    );
    assert_eq!(
        s.log(),
        [
            "docker build -t registry.example.com/dags/etl:abc123 -f etl/Dockerfile etl"
                .to_string(),
            "shim in context".to_string(),
            "docker push registry.example.com/dags/etl:abc123".to_string(),
        ]
    );
    assert_eq!(
        s.image_in("dag.json"),
        "registry.example.com/dags/etl:abc123"
    );
}

#[test]
fn every_builder_gets_the_same_arguments() {
    for builder in ["podman", "buildah"] {
        let s = Scratch::new();
        s.init("p");
        ok(&s.run(&[
            "compile",
            "p",
            "--image",
            "r/p:1",
            "--build",
            "--push",
            "--builder",
            builder,
        ]));
        assert_eq!(
            s.log(),
            [
                format!("{builder} build -t r/p:1 -f p/Dockerfile p"),
                "shim in context".to_string(),
                format!("{builder} push r/p:1"),
            ]
        );
    }
}

#[test]
fn build_without_push_only_builds() {
    let s = Scratch::new();
    s.init("p");
    ok(&s.run(&["compile", "p", "--image", "r/p:1", "--build"]));
    assert_eq!(s.log()[0], "docker build -t r/p:1 -f p/Dockerfile p");
    assert!(!s.log().iter().any(|l| l.contains("push")));
}

#[test]
fn leoflow_yaml_build_names_the_dockerfile_and_context_and_the_flag_wins() {
    let s = Scratch::new();
    let dir = s.init("p");
    fs::create_dir_all(dir.join("image")).unwrap();
    fs::write(dir.join("image/Containerfile"), "FROM scratch\n").unwrap();
    fs::write(dir.join("other.Dockerfile"), "FROM scratch\n").unwrap();
    let yaml = fs::read_to_string(dir.join("leoflow.yaml")).unwrap();
    fs::write(
        dir.join("leoflow.yaml"),
        format!("{yaml}build:\n  dockerfile: image/Containerfile\n  context: image\n"),
    )
    .unwrap();
    ok(&s.run(&["compile", "p", "--image", "r/p:1", "--build"]));
    assert_eq!(
        s.log()[0],
        "docker build -t r/p:1 -f p/image/Containerfile p/image"
    );
    assert!(s.path("p/image/.leoflow/shim/leoflow_shim").is_dir());
    ok(&s.run(&[
        "compile",
        "p",
        "--image",
        "r/p:2",
        "--build",
        "--dockerfile",
        "p/other.Dockerfile",
    ]));
    assert_eq!(
        s.log()[2],
        "docker build -t r/p:2 -f p/other.Dockerfile p/image"
    );
}

#[test]
fn a_missing_builder_names_it_and_the_alternatives() {
    let s = Scratch::new();
    s.init("p");
    let out = s.run_with(&["compile", "p", "--image", "r/p:1", "--build"], true, "");
    failed(
        &out,
        &[
            "the image builder `docker` was not found on PATH",
            "install Docker",
            "--builder docker|podman|buildah",
        ],
    );
    let out = s.run_with(
        &[
            "compile",
            "p",
            "--image",
            "r/p:1",
            "--build",
            "--builder",
            "podman",
        ],
        true,
        "",
    );
    failed(&out, &["`podman` was not found", "install Podman"]);
}

#[test]
fn a_failed_build_stops_before_the_push() {
    let s = Scratch::new();
    s.init("p");
    let out = s.run_with(
        &["compile", "p", "--image", "r/p:1", "--build", "--push"],
        false,
        "build",
    );
    failed(
        &out,
        &[
            "`docker build -t r/p:1 -f p/Dockerfile p` failed",
            "fake build failure",
            "the image was not built",
        ],
    );
    assert_eq!(s.log().len(), 2, "{:?}", s.log());
    let out = s.run_with(
        &["compile", "p", "--image", "r/p:1", "--build", "--push"],
        false,
        "push",
    );
    failed(
        &out,
        &["`docker push r/p:1` failed", "log in to the registry"],
    );
}

#[test]
fn flag_rules_and_a_missing_dockerfile_fail_before_compiling() {
    let s = Scratch::new();
    let dir = s.init("p");
    failed(
        &s.run(&["compile", "p", "--build"]),
        &["--build needs --image"],
    );
    failed(
        &s.run(&["compile", "p", "--image", "r/p:1", "--push"]),
        &["--build"],
    );
    fs::remove_file(dir.join("Dockerfile")).unwrap();
    failed(
        &s.run(&[
            "compile",
            "p",
            "--image",
            "r/p:1",
            "--build",
            "-o",
            "never.json",
        ]),
        &[
            &shown(Path::new("p/Dockerfile")),
            "does not exist",
            "leoflow init --force",
            "--dockerfile",
        ],
    );
    assert!(!s.path("never.json").exists());
    assert!(s.log().is_empty());
}

#[test]
fn an_image_without_build_is_recorded_with_a_note() {
    let s = Scratch::new();
    s.init("p");
    let out = ok(&s.run(&["compile", "p", "--image", "r/p:1", "-o", "p.json"]));
    assert!(
        out.contains("image r/p:1 is recorded in dag.json but not built"),
        "{out}"
    );
    assert_eq!(s.image_in("p.json"), "r/p:1");
    assert!(s.log().is_empty());
}
