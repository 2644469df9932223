#!/usr/bin/env bash
# Benchmark (not a test): times `leoflow compile` on a generated 1,000-task Airflow DAG file,
# start-up, shim materialisation check, Python import and dag.json writing included.
# The issue's bar: the median must stay under 1 s.
#
#   leoflow-lite/benches/compile_1000.sh            # builds the release binary first
#   LEOFLOW_BIN=path/to/leoflow RUNS=21 leoflow-lite/benches/compile_1000.sh
#
# Uses `farm-bench` when it is on PATH (min/median/max of wall, cpu, peak memory), else a
# plain timing loop printing the median wall time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
RUNS="${RUNS:-11}"
if [ -z "${LEOFLOW_BIN:-}" ]; then
  cargo build --release -q -p leoflow-lite
  LEOFLOW_BIN="$PWD/target/release/leoflow"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export LEOFLOW_HOME="$work/home"
mkdir -p "$work/dags"
cat > "$work/dags/generated_1000.py" <<'PY'
"""1,000 tasks in 10 layers of 100: half BashOperator, half TaskFlow @task, each task
downstream of one task of the previous layer (the @task ones also read its XCom)."""
from datetime import datetime

from airflow.sdk import DAG, task
from airflow.providers.standard.operators.bash import BashOperator

with DAG("generated_1000", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=False, tags=["bench"]):

    @task
    def step(value, n: int) -> int:
        return n

    layers = []
    for layer in range(10):
        current = []
        for j in range(100):
            n = layer * 100 + j
            upstream = layers[-1][j] if layers else None
            if n % 2:
                t = BashOperator(task_id=f"bash_{n:04d}", bash_command=f"echo {n}", retries=1)
                if upstream is not None:
                    upstream >> t
            else:
                # An operator's result is `.output`; a @task call already is its result.
                value = getattr(upstream, "output", upstream)
                t = step.override(task_id=f"py_{n:04d}")(value, n)
            current.append(t)
        layers.append(current)
PY

cmd=("$LEOFLOW_BIN" compile "$work/dags/generated_1000.py" --output-dir "$work/out" --dag-version bench)
"${cmd[@]}"   # also the warm-up: materialises the shim and checks the output
tasks="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["tasks"]))' "$work/out/generated_1000.json")"
echo "generated_1000.json: $tasks tasks"
[ "$tasks" = 1000 ] || { echo "expected 1000 tasks" >&2; exit 1; }

if command -v farm-bench >/dev/null; then
  farm-bench -n "$RUNS" --warmup 1 -- "${cmd[@]}"
else
  times=()
  for _ in $(seq "$RUNS"); do
    start=$(date +%s.%N)
    "${cmd[@]}" >/dev/null
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %.3f s over %d runs (min %.3f, max %.3f)\n", a[int((NR+1)/2)], NR, a[1], a[NR]}'
fi
