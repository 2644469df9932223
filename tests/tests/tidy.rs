//! Tidy: the architecture invariants of ARCHITECTURE.md, checked on every `cargo test`.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

const FORBIDDEN: &[&str] = &[
    "sqlx",
    "redis",
    "kube",
    "axum",
    "hyper",
    "reqwest",
    "tokio-postgres",
];

#[test]
fn ports_and_core_depend_on_no_io_library() {
    for krate in ["leoflow-ports", "leoflow-core"] {
        let out = cargo()
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                krate,
            ])
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        for line in tree.lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            assert!(
                !FORBIDDEN.contains(&name),
                "{krate} depends on {name}:\n{tree}"
            );
        }
    }
}

#[test]
fn crates_depend_only_in_the_allowed_direction() {
    let out = cargo()
        .args([
            "metadata",
            "--offline",
            "--format-version",
            "1",
            "--no-deps",
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut deps: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            // A crate may dev-depend on itself to enable its own test features.
            if dep.starts_with("leoflow-") && dep != name {
                let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                deps.entry(name.clone())
                    .or_default()
                    .push((dep.to_string(), kind));
            }
        }
    }
    let adapters = [
        "leoflow-memory",
        "leoflow-postgres",
        "leoflow-redis",
        "leoflow-subprocess",
        "leoflow-kubernetes",
        "leoflow-inline-http",
        "leoflow-http",
    ];
    for (krate, list) in &deps {
        for (dep, kind) in list {
            let normal = kind == "normal";
            let ok = match krate.as_str() {
                "leoflow-ports" => false,
                "leoflow-core" => dep == "leoflow-ports" || !normal && dep == "leoflow-memory",
                "leoflow-http" => dep == "leoflow-ports" || dep == "leoflow-core",
                a if adapters.contains(&a) => {
                    dep == "leoflow-ports" || !normal && dep == "leoflow-core"
                }
                "leoflow-agent" | "leoflow-shim" => dep == "leoflow-ports",
                _ => true,
            };
            assert!(
                ok,
                "{krate} may not depend on {dep} ({kind} dependency); see ARCHITECTURE.md"
            );
        }
    }
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | ".git" | "python" | "node_modules" | ".ci"
            ) {
                rust_sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    rust_sources(&root(), &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc: {missing:#?}"
    );
}

#[test]
fn no_ignored_or_should_panic_tests_and_no_grab_bag_modules() {
    let mut files = Vec::new();
    rust_sources(&root(), &mut files);
    let banned = [["#[", "ignore"].concat(), ["#[", "should_panic"].concat()];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for b in &banned {
            assert!(
                !text.contains(b.as_str()),
                "{} uses {b}: assert today's behaviour with a FIXME instead",
                f.display()
            );
        }
        let stem = f.file_stem().unwrap().to_string_lossy();
        assert!(
            !matches!(stem.as_ref(), "utils" | "helpers" | "common"),
            "{}: name the concept instead",
            f.display()
        );
    }
}

#[test]
fn each_driver_is_used_by_its_one_adapter_crate() {
    let out = cargo()
        .args([
            "metadata",
            "--offline",
            "--format-version",
            "1",
            "--no-deps",
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let owners = [
        ("sqlx", "leoflow-postgres"),
        ("kube", "leoflow-kubernetes"),
        ("kube-client", "leoflow-kubernetes"),
        ("kube-runtime", "leoflow-kubernetes"),
        ("k8s-openapi", "leoflow-kubernetes"),
    ];
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            for (driver, owner) in owners {
                assert!(
                    dep != driver || name == owner,
                    "{name} depends on {driver}, which only {owner} may use; go through {owner}"
                );
            }
        }
    }
}
