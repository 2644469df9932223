"""Shared test helpers: compile DAG files in-process or through the CLI, and compare results with expectations."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PYTHON_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS_DIR = os.path.join(PYTHON_ROOT, "tests")
DAGS_DIR = os.path.join(TESTS_DIR, "dags")

if PYTHON_ROOT not in sys.path:
    sys.path.insert(0, PYTHON_ROOT)


def compile_paths(paths, root) -> dict:
    """The CLI's JSON document for `paths`, produced in-process."""
    from leoflow_shim.cli import compile_files

    return compile_files([str(p) for p in paths], str(root))


def compile_source(tmp_path, source: str, name: str = "dag.py") -> dict:
    """Write `source` as a DAG file in tmp_path and compile it."""
    path = tmp_path / name
    path.write_text(source)
    return compile_paths([path], tmp_path)


def run_cli(*args, cwd=None, extra_env=None, timeout=60) -> subprocess.CompletedProcess:
    """Run `python3 -m leoflow_shim ARGS` the way the Rust side does (PYTHONPATH = leoflow-shim/python)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_ROOT
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "leoflow_shim", *args],
        cwd=cwd or PYTHON_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_document(*args, **kwargs) -> dict:
    proc = run_cli(*args, **kwargs)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def edges_of(dag: dict) -> set:
    return {(up, task["task_id"]) for task in dag["tasks"] for up in task.get("depends_on", [])}


def task_map(dag: dict) -> dict:
    return {task["task_id"]: task for task in dag["tasks"]}


def parse_edges(text: str) -> set:
    """Edges from a compact notation: "a >> b >> c; {a,b} >> d" ({...} is a set of tasks on one side)."""
    edges = set()
    for chain in filter(None, (part.strip() for part in text.split(";"))):
        steps = [step.strip() for step in chain.split(">>")]
        sides = [[t.strip() for t in step[1:-1].split(",")] if step.startswith("{") else [step] for step in steps]
        for ups, downs in zip(sides, sides[1:]):
            edges.update((u, d) for u in ups for d in downs)
    return edges
