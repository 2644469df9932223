"""Benchmark: wall time per attempt of the warm fork server vs a cold `python3 -m leoflow_shim run`, trivial task.

Run from leoflow-shim/python: `python3 benchmarks/fork_vs_cold.py [attempts]` (default 30). It prints the median (and
min/max) per attempt for each way. Each attempt re-imports its DAG file and writes result.json either way.

- cold: `subprocess.run([python, "-m", "leoflow_shim", "run", workdir])`, as the agent starts it without a server;
- fork: connect to `leoflow_shim serve`, send the request with three descriptors (/dev/null and two pipes), read the
  pid and the exit status, and drain the pipes, as the agent does.

The first attempt of each kind is a warm-up and is not counted. This measures, it asserts nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PYTHON_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PYTHON_ROOT)

from leoflow_shim.forkserver import start_attempt  # noqa: E402

DAG = '''\
"""A trivial DAG for the fork-vs-cold benchmark."""
from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="trivial", start_date=datetime(2024, 1, 1), schedule=None):

    @task
    def add(x):
        return x + 1

    add(1)
'''


def _context(workdir: str) -> None:
    document = {
        "attempt": {"dag_id": "trivial", "run_id": "manual__1", "task_id": "add", "map_index": -1, "try_number": 1},
        "task": {"task_id": "add", "type": "python", "operator": "@task", "entrypoint": "dag.py:add"},
        "dag": {"dag_id": "trivial", "fileloc": "dag.py", "dag_version": "dev", "version_number": 1, "params": {}},
        "run": {
            "run_id": "manual__1",
            "run_type": "manual",
            "logical_date": None,
            "data_interval_start": None,
            "data_interval_end": None,
            "run_after": "2024-01-01T00:00:00Z",
            "conf": {},
        },
        "inputs": {},
        "call_args": {"x": 1},
        "mapped_kwargs": {},
        "params": {},
        "heartbeat_interval_seconds": 10,
        "timeout_seconds": None,
    }
    os.makedirs(workdir)
    with open(os.path.join(workdir, "context.json"), "w") as fh:
        json.dump(document, fh)


def _check(workdir: str) -> None:
    with open(os.path.join(workdir, "result.json")) as fh:
        result = json.load(fh)
    assert result == {"status": "success", "return_value": 2}, result


def _drain(fd: int) -> None:
    with os.fdopen(fd, "rb") as fh:
        fh.read()


def cold(project: str, env: dict, workdir: str) -> float:
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "leoflow_shim", "run", workdir],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - began


def forked(socket_path: str, env: dict, workdir: str) -> float:
    began = time.perf_counter()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        attempt = start_attempt(socket_path, workdir, null, out_w, err_w, env=env)
    finally:
        for fd in (out_w, err_w, null):
            os.close(fd)
    _drain(out_r)
    _drain(err_r)
    code = attempt.wait(timeout=60)
    elapsed = time.perf_counter() - began
    assert code == 0, code
    return elapsed


def _report(name: str, times: list) -> None:
    ms = [t * 1000 for t in times]
    median = statistics.median(ms)
    print(f"{name:>5}: median {median:7.1f} ms   min {min(ms):7.1f}   max {max(ms):7.1f}   (n={len(ms)})")


def main(attempts: int) -> None:
    base = tempfile.mkdtemp(prefix="lf-bench-", dir="/tmp")
    project = os.path.join(base, "project")
    os.makedirs(project)
    with open(os.path.join(project, "dag.py"), "w") as fh:
        fh.write(DAG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "LEOFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join([PYTHON_ROOT, project])
    env["PYTHONUNBUFFERED"] = "1"
    socket_path = os.path.join(base, "s.sock")
    serve = ["serve", "--socket", socket_path, "--root", project, "--preload", "dag.py"]
    server = subprocess.Popen(
        [sys.executable, "-m", "leoflow_shim", *serve],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        json.loads(server.stdout.readline())  # the ready line
        results = {"cold": [], "fork": []}
        for n in range(attempts + 1):
            for kind in ("cold", "fork"):
                workdir = os.path.join(base, f"{kind}-{n}")
                _context(workdir)
                elapsed = cold(project, env, workdir) if kind == "cold" else forked(socket_path, env, workdir)
                _check(workdir)
                if n:
                    results[kind].append(elapsed)
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; per attempt, DAG re-import included:")
        _report("cold", results["cold"])
        _report("fork", results["fork"])
        ratio = statistics.median(results["cold"]) / statistics.median(results["fork"])
        print(f"fork server is {ratio:.1f}x faster (median)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        server.stdout.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
