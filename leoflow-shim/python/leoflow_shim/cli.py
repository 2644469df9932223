"""Command line used by the Rust side: `compile`, `version`, and the task runtime's `run` and `serve`.

- `python3 -m leoflow_shim compile --root ROOT FILE...` writes exactly one JSON document to stdout,
  `{"dags": [...], "errors": [...]}`, and exits 0 whenever it could write it; anything the DAG files print goes to
  stderr so stdout stays parseable.
- `python3 -m leoflow_shim run WORKDIR` runs one task attempt from WORKDIR/context.json (see runtime.py).
- `python3 -m leoflow_shim serve --socket PATH --root PROJECT_DIR [--preload FILE...]` is the warm fork server
  (see forkserver.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .compiler import compile_dag
from .errors import CompileError
from .loader import DEFAULT_TIMEOUT_SECONDS, fileloc_of, load_file


def compile_files(paths, root: str, timeout=None) -> dict:
    """The CLI's document for `paths` (DAG files), with filelocs relative to `root`."""
    dags: list = []
    errors: list = []
    seen: dict = {}
    for path in paths:
        fileloc = fileloc_of(path, root)
        if os.path.isdir(path):
            errors.append(CompileError(fileloc, None, f"{fileloc} is a directory; pass the DAG files it contains"))
            continue
        if not os.path.exists(path):
            errors.append(CompileError(fileloc, None, f"{fileloc} does not exist"))
            continue
        try:
            _compile_file(path, root, timeout, seen, dags, errors)
        except Exception as exc:  # noqa: BLE001 - a shim bug must not take the other files down
            errors.append(
                CompileError(
                    fileloc, None, f"internal error in leoflow_shim: {type(exc).__name__}: {exc} (please report it)"
                )
            )
    return {"dags": dags, "errors": [e.to_json() for e in errors]}


def _compile_file(path, root, timeout, seen: dict, dags: list, errors: list) -> None:
    """Load one DAG file and compile its DAGs into `dags`/`errors`; `seen` maps dag_id -> fileloc across files."""
    result = load_file(path, root, timeout=DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout)
    errors.extend(result.errors)
    for dag in result.dags:
        if dag.dag_id in seen:
            other = seen[dag.dag_id]
            where = "earlier in this file" if other == result.fileloc else f"in {other}"
            errors.append(
                CompileError(
                    result.fileloc,
                    dag._leoflow_line,
                    f"dag_id '{dag.dag_id}' is already defined {where}; every DAG needs a unique dag_id",
                )
            )
            continue
        seen[dag.dag_id] = result.fileloc
        spec, problems = compile_dag(dag, result.fileloc)
        for problem in problems:
            errors.append(CompileError(result.fileloc, problem.line, str(problem)))
        if spec is not None:
            dags.append(spec)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m leoflow_shim", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    compile_cmd = commands.add_parser("compile", help="compile Airflow DAG files to dag.json objects")
    compile_cmd.add_argument("--root", required=True, help="project root; filelocs are relative to it")
    compile_cmd.add_argument("--timeout", type=float, default=None, help="seconds allowed per DAG file (default 30)")
    compile_cmd.add_argument("files", nargs="+", help="DAG files")
    commands.add_parser("version", help="print the shim version")
    run_cmd = commands.add_parser("run", help="run one task attempt from WORKDIR/context.json")
    run_cmd.add_argument("workdir", help="the attempt's work dir (context.json in, result.json out)")
    serve_cmd = commands.add_parser("serve", help="warm fork server: one forked child per attempt")
    serve_cmd.add_argument("--socket", required=True, help="Unix socket path to listen on")
    serve_cmd.add_argument("--root", required=True, help="project dir (the children's working directory)")
    serve_cmd.add_argument(
        "--preload", nargs="*", action="extend", default=[], help="DAG files to import once to warm their imports"
    )
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "run":
        from .runtime import run

        return run(args.workdir)
    if args.command == "serve":
        from .forkserver import serve

        return serve(args.socket, args.root, args.preload)
    # DAG files may print or spawn processes writing to fd 1: send all of that to stderr, keep a private stdout.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        document = compile_files(args.files, args.root, args.timeout)
        out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
    finally:
        out.flush()
        out.close()
    return 0
