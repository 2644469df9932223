#!/usr/bin/env bash
# Side-by-side benchmark: Leoflow Lite vs Apache Airflow 3.2.1, same DAG files, same machine,
# same driver (`measure.py` of the Airflow harness), one command, one run.
#
# Usage:  bash tests/bench/compare.sh [--skip-airflow]
#   --skip-airflow   do not run Airflow; use the harness's stored figures (last_results.json),
#                    clearly labelled as such in the table.
# Knobs (environment):
#   RUNS=1                  measured runs per DAG (median and min-max when > 1)
#   BENCH_DAGS=bench_40,bench_10,fanout_100,bash_chain_20,fanout_1000,xcom_chain_20
#   AIRFLOW_HARNESS=<repo>/../shared/bench/airflow   run.sh + measure.py + the four DAGs
#   LEOFLOW_ONLY=1          also run the Leoflow-only figures (scheduler throughput, compile)
#   KEEP_WORK=0             1 = keep the /tmp work dir
# Output: the table on stdout, appended to tests/bench/results.md, and copied into the
# README's Performance section (between the `bench:compare` markers).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HARNESS="${AIRFLOW_HARNESS:-$ROOT/../shared/bench/airflow}"
RUNS="${RUNS:-1}"
BENCH_DAGS="${BENCH_DAGS:-bench_40,bench_10,fanout_100,bash_chain_20,fanout_1000,xcom_chain_20}"
LEOFLOW_ONLY="${LEOFLOW_ONLY:-1}"
KEEP_WORK="${KEEP_WORK:-0}"
SKIP_AIRFLOW=0
for arg in "$@"; do
  case "$arg" in
    --skip-airflow) SKIP_AIRFLOW=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[compare.sh $(date +%H:%M:%S)] $*"; }
free_port() {
  python3 - "$1" <<'EOF'
import socket, sys
p = int(sys.argv[1])
while True:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); s.close(); print(p); break
    except OSError:
        p += 1
EOF
}

[ -f "$HARNESS/measure.py" ] || { echo "no Airflow harness at $HARNESS (set AIRFLOW_HARNESS)" >&2; exit 2; }

log "building release binaries"
(cd "$ROOT" && cargo build --release -q -p leoflow-lite -p leoflow-agent)
BIN="$ROOT/target/release"

WORK="$(mktemp -d /tmp/lfbench.XXXXXX)"
chmod 755 "$WORK"
mkdir -p "$WORK/dags"
cp "$HARNESS"/dags/*.py "$ROOT"/tests/bench/dags/*.py "$WORK/dags/"
LF_PID=""
cleanup() {
  set +e
  if [ -n "$LF_PID" ] && kill -0 "$LF_PID" 2>/dev/null; then
    kill -INT "$LF_PID"
    for _ in $(seq 1 60); do kill -0 "$LF_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$LF_PID" 2>/dev/null && kill -KILL -- "-$LF_PID"
  fi
  if [ "$KEEP_WORK" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- Leoflow Lite
export LEOFLOW_HOME="$WORK/home" LEOFLOW_ADMIN_PASSWORD=password NO_COLOR=1
PORT="$(free_port 58088)"
log "leoflow setup (managed Postgres under $LEOFLOW_HOME)"
"$BIN/leoflow" setup --yes >"$WORK/setup.log" 2>&1
# Like the Airflow harness (`airflow db migrate` before its timed start): the database is
# created and migrated first, so time-to-healthy measures a start, not initdb.
"$BIN/leoflow" db migrate >>"$WORK/setup.log" 2>&1
log "starting leoflow lite on port $PORT"
setsid "$BIN/leoflow" lite "$WORK/dags" --port "$PORT" --executor subprocess \
  >"$WORK/lite.log" 2>&1 </dev/null &
LF_PID=$!
python3 "$HARNESS/measure.py" run --base "http://127.0.0.1:$PORT" --user admin --password password \
  --dags "$BENCH_DAGS" --runs "$RUNS" --warmup 1 --settle 2 --out "$WORK/leoflow.json" \
  || { log "Leoflow measurement failed; its log:"; tail -n 40 "$WORK/lite.log"; exit 1; }
LF_GROUPS="leoflow:$LF_PID"
PG_PID="$(head -1 "$LEOFLOW_HOME"/postgres/data/postmaster.pid 2>/dev/null || true)"
if [ -n "$PG_PID" ]; then
  PG_GROUP="$(ps -o pgid= -p "$PG_PID" | tr -d ' ')"
  [ "$PG_GROUP" != "$LF_PID" ] || log "note: managed Postgres shares Leoflow's process group and is counted"
fi
python3 "$HARNESS/measure.py" sample --groups "$LF_GROUPS" --wait 15 --window 10 --out "$WORK/leoflow_idle.json"

# ---------------------------------------------------------------- Leoflow-only figures
EXTRA="$WORK/extra.md"
: >"$EXTRA"
if [ "$LEOFLOW_ONLY" = 1 ]; then
  log "Leoflow-only: scheduler throughput (no-op executor) and 1,000-task compile"
  {
    echo "Leoflow-only figures (same run). Scheduler throughput, no-op executor, serial dispatch"
    echo "(\`BENCH_REPS=1 cargo bench -p leoflow-tests --bench scheduler_throughput\`):"
    echo
    (cd "$ROOT" && BENCH_REPS=1 cargo bench -q -p leoflow-tests --bench scheduler_throughput 2>/dev/null \
      | grep -E '^\|' || echo "scheduler_throughput: failed")
    echo
    echo "Compile time of a 1,000-task DAG (\`bash leoflow-lite/benches/compile_1000.sh\`):"
    echo
    echo '```'
    (cd "$ROOT" && bash leoflow-lite/benches/compile_1000.sh 2>/dev/null | tail -n 6 || echo "compile_1000: failed")
    echo '```'
  } >>"$EXTRA"
fi

# ---------------------------------------------------------------- Airflow 3.2.1
AF_LOG=""
if [ "$SKIP_AIRFLOW" = 1 ]; then
  AF_JSON="$HARNESS/last_results.json"
  AF_IDLE=""
  AF_LABEL="NOT measured in this run: stored figures from $HARNESS/last_results.json ($(date -r "$AF_JSON" '+%Y-%m-%d %H:%M'))"
else
  log "running the Airflow harness (a copy, so the shared one is not written to)"
  cp -r "$HARNESS" "$WORK/airflow-harness"
  AF_OUT="$WORK/airflow-run.log"
  rm -f "$WORK/airflow-harness/last_results.json"
  set +e
  EXTRA_DAGS="$(ls "$ROOT"/tests/bench/dags/*.py | tr '\n' ' ')" BENCH_DAGS="$BENCH_DAGS" RUNS="$RUNS" \
    KEEP_WORK=1 RESULTS_MD="$WORK/airflow.md" bash "$WORK/airflow-harness/run.sh" 2>&1 | tee "$AF_OUT"
  set -e
  AF_WORK="$(grep -o 'work dir /tmp/afbench\.[A-Za-z0-9]*' "$AF_OUT" | head -1 | cut -d' ' -f3)"
  AF_JSON="$WORK/airflow-harness/last_results.json"
  AF_IDLE="$AF_WORK/idle.json"
  [ -f "$AF_IDLE" ] || AF_IDLE=""
  AF_LABEL="measured in this run (LocalExecutor + Postgres, harness defaults)"
  if [ ! -f "$AF_JSON" ]; then
    # The harness writes no results when a DAG fails; keep its per-DAG lines instead.
    AF_WHY="$(grep -E '^[A-Za-z_.]*(Error|Exception): ' "$AF_OUT" | tail -n 1 | cut -c1-160)"
    [ -n "$AF_WHY" ] || AF_WHY="$(grep -m1 -E 'Error|failed' "$AF_OUT" | cut -c1-160)"
    AF_LABEL="the Airflow harness FAILED in this run ($AF_WHY); the DAGs it finished are read from its log (no trigger -> first task there)"
    AF_JSON=""
    AF_LOG="$AF_OUT"
  fi
fi

# ---------------------------------------------------------------- report
SECTION="$WORK/section.md"
python3 "$ROOT/tests/bench/combine.py" --leoflow "$WORK/leoflow.json" --leoflow-idle "$WORK/leoflow_idle.json" \
  ${AF_JSON:+--airflow "$AF_JSON"} ${AF_LOG:+--airflow-log "$AF_LOG"} ${AF_IDLE:+--airflow-idle "$AF_IDLE"} --airflow-label "$AF_LABEL" --extra "$EXTRA" \
  --meta "command=bash tests/bench/compare.sh $*" --meta "runs per DAG=$RUNS (+1 warm-up of the first DAG)" \
  --meta "machine=$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)" \
  --meta "versions=leoflow $("$BIN/leoflow" version 2>/dev/null | head -1), $(python3 -V), postgres $(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)" \
  --meta "Leoflow=Lite, subprocess executor with the warm Python runtime, managed Postgres, serial dispatch" \
  >"$SECTION"
cat "$SECTION"
{ echo; cat "$SECTION"; } >>"$ROOT/tests/bench/results.md"
python3 - "$ROOT/README.md" "$SECTION" <<'EOF'
import sys
readme, section = sys.argv[1], open(sys.argv[2]).read().rstrip()
text = open(readme).read()
start, end = "<!-- bench:compare:start -->", "<!-- bench:compare:end -->"
if start in text and end in text:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    open(readme, "w").write(f"{head}{start}\n{section}\n{end}{tail}")
    print("README Performance section updated")
else:
    print("README has no bench:compare markers; not updated", file=sys.stderr)
EOF
