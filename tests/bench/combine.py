#!/usr/bin/env python3
"""Side-by-side table for `tests/bench/compare.sh`: Leoflow and Airflow results of the same run.

Reads the `measure.py run` and `measure.py sample` outputs of both systems (JSON), plus the
Leoflow-only figures, and prints one Markdown section. Only the standard library is needed.

  combine.py --leoflow lf.json --leoflow-idle lf_idle.json [--airflow af.json | --airflow-log run.log]
             [--airflow-idle af_idle.json] [--airflow-label "measured in this run"] [--extra extra.md]
             [--meta KEY=VALUE ...]

--airflow-log: when the Airflow harness stopped before writing its results (it writes none when a DAG
fails), the per-DAG lines `measure.py` logged for the DAGs that finished are read from the harness's
output instead (total, gap; no trigger -> first task), and the others show as "not finished".

Per DAG (median over the measured repetitions, warm-up excluded; min-max when there are
several): total seconds, per-task overhead, mean transition gap, trigger -> first task.
Per-task overhead = (total - bare compute) / tasks for the sequential DAGs, where the
bare compute is the same task code timed in a plain interpreter here; for the fan-out DAGs
tasks overlap, so only the total and tasks/s are meaningful.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time

# What one task of each benchmark DAG computes, as Python source for a timing subprocess.
TASK_CODE = {
    "bench_40": ("fibo(10)", 40),
    "bench_10": ("fibo(33)", 10),
    "bash_chain_20": (None, 20),
    "xcom_chain_20": (None, 20),
}
FANOUT = {"fanout_100", "fanout_1000"}


def bare_seconds(expr: str) -> float:
    """Median time of `expr` in a fresh plain interpreter (no orchestrator)."""
    prog = (
        "import statistics, time\n"
        "def fibo(n):\n    return n if n <= 1 else fibo(n - 1) + fibo(n - 2)\n"
        "xs = []\n"
        "for _ in range(5):\n"
        f"    t = time.perf_counter(); {expr}; xs.append(time.perf_counter() - t)\n"
        "print(statistics.median(xs))\n"
    )
    out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


# One finished DAG run as `measure.py run` logs it.
_LOGGED_RUN = re.compile(
    r"\[measure [0-9:]+\] (?P<dag>[A-Za-z0-9_.-]+): (?P<state>success|failed) total=(?P<total>[0-9.]+)s "
    r"exec_sum=[0-9.]+s overhead=-?[0-9.]+s gap_mean=(?P<gap>[0-9.]+)ms"
)


def runs_from_log(text: str, n_tasks: dict[str, int], warmups: int = 1) -> dict:
    """`measure.py run`-shaped results from its log lines; the first `warmups` runs of the first DAG are warm-ups."""
    runs = []
    for m in _LOGGED_RUN.finditer(text):
        dag = m["dag"]
        first = runs[0]["dag_id"] if runs else dag
        warm = dag == first and sum(1 for r in runs if r["dag_id"] == dag) < warmups
        runs.append({
            "dag_id": dag,
            "rep": "warm-up" if warm else len(runs),
            "n_tasks": n_tasks.get(dag, 0),
            "state": m["state"],
            "total_s": float(m["total"]),
            "gap_mean_s": float(m["gap"]) / 1000,
            "first_task_s": None,
        })
    return {"runs": runs, "wait_healthy_s": float("nan")}


def measured(results: dict) -> dict[str, list[dict]]:
    """Runs per DAG, warm-up excluded, in first-seen DAG order."""
    by_dag: dict[str, list[dict]] = {}
    for r in results["runs"]:
        if r.get("rep") == "warm-up":
            continue
        by_dag.setdefault(r["dag_id"], []).append(r)
    return by_dag


def spread(values: list[float | None], scale: float = 1.0, nd: int = 2) -> str:
    xs = [v * scale for v in values if v is not None]
    if not xs:
        return "n/a"
    med = f"{statistics.median(xs):.{nd}f}"
    if len(xs) == 1:
        return med
    return f"{med} ({min(xs):.{nd}f}-{max(xs):.{nd}f})"


def median(values: list[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def per_task_overhead(dag: str, run: dict, bare: dict[str, float]) -> float | None:
    if dag in FANOUT or run["state"] != "success":
        return None
    expr, n = TASK_CODE.get(dag, (None, run["n_tasks"]))
    compute = bare.get(expr, 0.0) * n if expr else 0.0
    return (run["total_s"] - compute) / run["n_tasks"]


def ratio(airflow: float | None, leoflow: float | None) -> str:
    if airflow is None or leoflow is None or leoflow <= 0:
        return "n/a"
    return f"{airflow / leoflow:.1f}x"


def dag_table(lf: dict, af: dict, bare: dict[str, float]) -> str:
    lf_runs, af_runs = measured(lf), measured(af)
    hdr = [
        "DAG", "tasks", "Leoflow total s", "Airflow total s", "speed-up",
        "Leoflow overhead/task ms", "Airflow overhead/task ms",
        "Leoflow mean gap ms", "Airflow mean gap ms",
        "Leoflow trigger->1st s", "Airflow trigger->1st s", "Leoflow state", "Airflow state",
    ]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "|".join("---" for _ in hdr) + "|"]
    for dag in list(dict.fromkeys([*lf_runs, *af_runs])):
        lr, ar = lf_runs.get(dag, []), af_runs.get(dag, [])
        tasks = (lr or ar)[0]["n_tasks"]
        lines.append("| " + " | ".join([
            dag, str(tasks),
            spread([r["total_s"] for r in lr]), spread([r["total_s"] for r in ar]),
            ratio(median([r["total_s"] for r in ar]), median([r["total_s"] for r in lr])),
            spread([per_task_overhead(dag, r, bare) for r in lr], 1000, 1),
            spread([per_task_overhead(dag, r, bare) for r in ar], 1000, 0),
            spread([r["gap_mean_s"] for r in lr], 1000, 1),
            spread([r["gap_mean_s"] for r in ar], 1000, 0),
            spread([r["first_task_s"] for r in lr], 1, 3),
            spread([r["first_task_s"] for r in ar]),
            ",".join(sorted({r["state"] for r in lr})) or "not run",
            ",".join(sorted({r["state"] for r in ar})) or af.get("missing", "not run"),
        ]) + " |")
    return "\n".join(lines)


def idle_totals(idle: dict | None) -> dict | None:
    """Sums over the measured components (each a process group)."""
    if not idle:
        return None
    comps = idle["components"].values()
    return {
        "n": sum(c["n"] for c in comps),
        "rss": sum(c["rss_kib"] for c in comps) / 1024,
        "pss": sum(c["pss_kib"] for c in comps) / 1024,
        "cpu": sum(c["idle_cpu_pct"] for c in comps),
        "names": ", ".join(idle["components"]),
    }


def footprint_table(lf: dict, af: dict, lf_idle: dict | None, af_idle: dict | None) -> str:
    lt, at = idle_totals(lf_idle), idle_totals(af_idle)

    def cell(t, key, fmt):
        return "n/a" if t is None else fmt.format(t[key])

    rows = [
        ("idle RSS MiB (sum over processes)", cell(lt, "rss", "{:.0f}"), cell(at, "rss", "{:.0f}")),
        ("idle PSS MiB", cell(lt, "pss", "{:.0f}"), cell(at, "pss", "{:.0f}")),
        ("processes", cell(lt, "n", "{}"), cell(at, "n", "{}")),
        ("idle CPU % of one core", cell(lt, "cpu", "{:.2f}"), cell(at, "cpu", "{:.1f}")),
        ("time to healthy s", f"{lf['wait_healthy_s']:.2f}", f"{af['wait_healthy_s']:.2f}"),
        ("components measured", cell(lt, "names", "{}"), cell(at, "names", "{}")),
    ]
    lines = [
        "| footprint (Postgres not counted for either) | Leoflow Lite | Airflow 3.2.1 |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--leoflow", required=True)
    p.add_argument("--leoflow-idle")
    p.add_argument("--airflow", help="omitted when the Airflow run produced no results")
    p.add_argument("--airflow-log", help="the Airflow harness's output, read when there is no --airflow")
    p.add_argument("--airflow-idle")
    p.add_argument("--airflow-label", default="measured in this run")
    p.add_argument("--extra", help="a Markdown file appended as is (Leoflow-only figures)")
    p.add_argument("--meta", action="append", default=[], help="KEY=VALUE lines for the header")
    a = p.parse_args()

    load = lambda path: json.load(open(path)) if path else None  # noqa: E731
    lf = load(a.leoflow)
    af = load(a.airflow) or {"runs": [], "wait_healthy_s": float("nan")}
    if not a.airflow and a.airflow_log:
        n_tasks = {r["dag_id"]: r["n_tasks"] for r in lf["runs"]}
        af = runs_from_log(open(a.airflow_log, errors="replace").read(), n_tasks)
        af["missing"] = "not finished"
    bare = {expr: bare_seconds(expr) for expr, _ in TASK_CODE.values() if expr}

    out = [f"## Run {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", ""]
    out += [f"- {m.replace('=', ': ', 1)}" for m in a.meta]
    out.append(f"- Airflow figures: {a.airflow_label}")
    out.append("- bare compute per task (plain python3 here, median): "
               + ", ".join(f"{k} {v * 1000:.3f} ms" for k, v in bare.items()))
    out += ["", dag_table(lf, af, bare), "", footprint_table(lf, af, load(a.leoflow_idle), load(a.airflow_idle))]
    if a.extra:
        out += ["", open(a.extra).read().rstrip()]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
