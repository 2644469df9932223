"""Benchmark: wall time of `python3 -m leoflow_shim compile` on a generated 1,000-task DAG (process start included).

Run from leoflow-shim/python: `python3 benchmarks/compile_time.py [runs]`. Prints every run and the median.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

PYTHON_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 1,000 tasks in 100 layers of 10 (half TaskFlow, half BashOperator); each layer depends on the whole previous
# one (9,900 edges) and every TaskFlow task takes the outputs of the previous layer's TaskFlow tasks.
GENERATED_DAG = '''\
"""Generated: 1,000 tasks in 100 layers of 10, each task depending on the whole previous layer."""
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

with DAG(dag_id="generated_1000", start_date=datetime(2024, 1, 1), schedule=None, default_args={"retries": 1}):
    previous = []
    for layer in range(100):
        current = []
        for i in range(10):
            if i % 2:
                current.append(BashOperator(task_id=f"bash_{layer:03d}_{i}", bash_command=f"echo {layer} {i}"))
            else:
                @task(task_id=f"py_{layer:03d}_{i}")
                def work(*upstream):
                    return len(upstream)
                current.append(work(*[t.output for t in previous if not hasattr(t, "bash_command")]).operator)
        for t in previous:
            t >> current
        previous = current
'''


def main(runs: int = 5) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "generated_1000.py")
        with open(path, "w") as fh:
            fh.write(GENERATED_DAG)
        env = {**os.environ, "PYTHONPATH": PYTHON_ROOT}
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "leoflow_shim", "compile", "--root", tmp, path],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - started)
            print(f"{times[-1]:.3f} s")
    median = statistics.median(times)
    print(f"median {median:.3f} s over {runs} runs (1,000 tasks, 9,900 edges, process start included)")
    return median


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
