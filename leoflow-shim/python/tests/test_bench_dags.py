"""The benchmark DAGs of ../shared/bench/airflow/dags compile, and so does a generated 1,000-task DAG."""

from __future__ import annotations

import os
import sys

import pytest

from support import PYTHON_ROOT, cli_document, compile_paths, edges_of

sys.path.insert(0, os.path.join(PYTHON_ROOT, "benchmarks"))
from compile_time import GENERATED_DAG  # noqa: E402

BENCH_DIR = os.path.normpath(os.path.join(PYTHON_ROOT, "..", "..", "..", "shared", "bench", "airflow", "dags"))


def _chain(ids):
    return set(zip(ids, ids[1:]))


BENCH = {
    "bash_chain_20.py": ("bash_chain_20", [f"bash_{i:02d}" for i in range(20)], "bash", "BashOperator"),
    "bench_10.py": ("bench_10", [f"task_{i:02d}" for i in range(10)], "python", "@task"),
    "bench_40.py": ("bench_40", [f"task_{i:02d}" for i in range(40)], "python", "@task"),
}


@pytest.mark.parametrize("filename", sorted(BENCH))
def test_chain_benchmarks(filename):
    dag_id, ids, kind, operator = BENCH[filename]
    document = compile_paths([os.path.join(BENCH_DIR, filename)], BENCH_DIR)
    assert document["errors"] == []
    (dag,) = document["dags"]
    assert dag["dag_id"] == dag_id
    assert [t["task_id"] for t in dag["tasks"]] == ids
    assert edges_of(dag) == _chain(ids)
    assert {t["type"] for t in dag["tasks"]} == {kind}
    assert {t["operator"] for t in dag["tasks"]} == {operator}
    assert (dag["schedule"], dag["catchup"], dag["tags"]) == (None, False, ["benchmark"])
    assert dag["start_date"] == "2023-01-01T00:00:00Z"


def test_fanout_benchmark():
    document = compile_paths([os.path.join(BENCH_DIR, "fanout_100.py")], BENCH_DIR)
    assert document["errors"] == []
    (dag,) = document["dags"]
    middle = [f"task_{i:03d}" for i in range(100)]
    assert dag["dag_id"] == "fanout_100"
    assert {t["task_id"] for t in dag["tasks"]} == {"start", "join", *middle}
    assert edges_of(dag) == {("start", t) for t in middle} | {(t, "join") for t in middle}


def test_all_benchmarks_through_the_cli():
    files = sorted(os.path.join(BENCH_DIR, f) for f in os.listdir(BENCH_DIR) if f.endswith(".py"))
    document = cli_document("compile", "--root", BENCH_DIR, *files)
    assert document["errors"] == []
    assert [d["dag_id"] for d in document["dags"]] == ["bash_chain_20", "bench_10", "bench_40", "fanout_100"]


def test_generated_thousand_task_dag_compiles(tmp_path):
    path = tmp_path / "generated.py"
    path.write_text(GENERATED_DAG)
    document = cli_document("compile", "--root", str(tmp_path), str(path))
    assert document["errors"] == []
    (dag,) = document["dags"]
    assert len(dag["tasks"]) == 1000
    assert len(edges_of(dag)) == 99 * 10 * 10
    assert all(t.get("retries") == 1 for t in dag["tasks"])
    python_tasks = [t for t in dag["tasks"] if t["type"] == "python" and not t["task_id"].startswith("py_000")]
    assert all(len(t["xcom_input"]["upstream"]) == 5 for t in python_tasks)
