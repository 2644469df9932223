"""Imports one DAG file under the shim, isolated from other files, and returns the DAG objects it defines.

The same loader serves the task runtime: `load_task()` imports a DAG file in "run" mode and returns the task
object (operator instance, TaskFlow callable and arguments) for one task id. In the warm fork server, `warm_dag()`
imports a DAG file once and keeps it while the file and the project modules it imported are unchanged; the attempts
forked from the server then find it in memory instead of importing it again (ADR 0010).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import signal
import sys
import threading
import types

from . import PENDULUM_FALLBACK_DIR, PYTHON_ROOT, scope
from .errors import CompileError, ImportTimeout, from_exception, is_user_code

DEFAULT_TIMEOUT_SECONDS = 30.0

_IMPORTS_AIRFLOW = re.compile(r"^\s*(?:from\s+airflow[\s.]|import\s+airflow\b)", re.MULTILINE)


class LoadResult:
    """What importing one DAG file produced."""

    def __init__(self, fileloc: str, path: str):
        self.fileloc = fileloc
        self.path = path
        self.dags: list = []
        self.errors: list = []
        self.module = None


def fileloc_of(path: str, root: str) -> str:
    return os.path.relpath(os.path.abspath(path), os.path.abspath(root)).replace(os.sep, "/")


def might_contain_dag(source: bytes) -> bool:
    """Airflow's DagBag heuristic: only files mentioning both "airflow" and "dag" are imported."""
    lowered = source.lower()
    return b"airflow" in lowered and b"dag" in lowered


def _module_path(module):
    """Where a module was loaded from (a namespace package's first directory), or None."""
    path = getattr(module, "__file__", None)
    if path is None:
        paths = list(getattr(module, "__path__", []) or [])
        path = paths[0] if paths else None
    return os.path.abspath(path) if path else None


def _is_shim_module(module) -> bool:
    path = _module_path(module)
    return path is not None and path.startswith(PYTHON_ROOT + os.sep)


# airflow modules already found to come from the shim (name -> module object), so they are not checked again.
_SHIM_MODULES: dict = {}
# len(sys.modules) after the last full check: an attempt forked from the warm runtime skips the walk over every module
# (which would also copy the pages of the forked memory it touches) when no module came or went since.
_CHECKED_MODULE_COUNT = [-1]


def prepare_interpreter() -> None:
    """Make `import airflow` resolve to the shim and `import pendulum` work, whatever else is installed."""
    if not sys.path or sys.path[0] != PYTHON_ROOT:
        if PYTHON_ROOT in sys.path:
            sys.path.remove(PYTHON_ROOT)
        sys.path.insert(0, PYTHON_ROOT)
    if _CHECKED_MODULE_COUNT[0] == len(sys.modules) and "airflow" in sys.modules:
        return
    for name in [n for n in sys.modules if n == "airflow" or n.startswith("airflow.")]:
        module = sys.modules[name]
        if _SHIM_MODULES.get(name) is module:
            continue
        if _is_shim_module(module):
            _SHIM_MODULES[name] = module
        else:
            del sys.modules[name]
    import airflow  # noqa: F401 - the shim package, cached so a DAG folder cannot shadow it

    if "pendulum" not in sys.modules and PENDULUM_FALLBACK_DIR not in sys.path:
        if importlib.util.find_spec("pendulum") is None:
            sys.path.append(PENDULUM_FALLBACK_DIR)
    _CHECKED_MODULE_COUNT[0] = len(sys.modules)


def _module_name(path: str) -> str:
    digest = hashlib.sha1(path.encode()).hexdigest()
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    return f"unusual_prefix_{digest}_{stem}"


def _is_user_module(module, user_dirs) -> bool:
    path = _module_path(module)
    return path is not None and is_user_code(path, user_dirs, PYTHON_ROOT)


class _Timeout:
    """Raise ImportTimeout in the main thread when a DAG file runs too long (Airflow's dagbag_import_timeout)."""

    def __init__(self, seconds, fileloc: str):
        self.seconds = seconds
        self.fileloc = fileloc
        self.active = (
            bool(seconds) and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        )

    def _fire(self, signum, frame):
        raise ImportTimeout(
            f"importing {self.fileloc} took longer than {self.seconds:g}s; move slow work (network, big "
            "computations) into tasks"
        )

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def load_file(
    path: str, root: str, mode: str = "compile", timeout=DEFAULT_TIMEOUT_SECONDS, keep_modules: bool = False
) -> LoadResult:
    """Execute the DAG file at `path` and collect its DAGs; errors carry the file (relative to `root`) and line."""
    path = os.path.abspath(path)
    root = os.path.abspath(root)
    fileloc = fileloc_of(path, root)
    result = LoadResult(fileloc, path)
    try:
        with open(path, "rb") as fh:
            source = fh.read()
    except OSError as err:
        result.errors.append(CompileError(fileloc, None, f"cannot read {fileloc}: {err.strerror or err}"))
        return result
    if not might_contain_dag(source):
        return result

    prepare_interpreter()
    dag_dir = os.path.dirname(path)
    before = set(sys.modules)
    sys.path.insert(0, dag_dir)
    module_name = _module_name(path)
    module = types.ModuleType(module_name)
    module.__file__ = path
    module.__loader__ = None
    current = scope.begin(path, mode)
    try:
        try:
            code = compile(source, path, "exec", dont_inherit=True)
            sys.modules[module_name] = module
            with _Timeout(timeout, fileloc):
                exec(code, module.__dict__)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - every failure becomes an error entry
            result.errors.append(from_exception(exc, fileloc, path, root, PYTHON_ROOT))
            return result
        result.dags = _collect_dags(module, current)
        if not result.dags and _IMPORTS_AIRFLOW.search(source.decode("utf-8", "replace")):
            result.errors.append(CompileError(fileloc, None, f"no DAG found in {fileloc}"))
        result.module = module
        return result
    finally:
        scope.end()
        try:
            sys.path.remove(dag_dir)
        except ValueError:
            pass
        if not keep_modules:
            for name in _added_user_modules(before, path, root):
                del sys.modules[name]
            sys.modules.pop(module_name, None)


def _added_user_modules(before: set, path: str, root: str) -> dict:
    """The modules imported since `before` that belong to the DAG file at `path`: itself and the project's own."""
    user_dirs = [os.path.dirname(path), root]
    module_name = _module_name(path)
    return {
        name: sys.modules[name]
        for name in set(sys.modules) - before
        if name == module_name or _is_user_module(sys.modules[name], user_dirs)
    }


def _collect_dags(module, current) -> list:
    """DAGs bound to module globals plus DAGs that left a `with` block, in creation order (Airflow's DagBag)."""
    from .dag import DAG

    found = {}
    for value in list(module.__dict__.values()):
        if isinstance(value, DAG):
            found[id(value)] = value
    for dag in current.registered_dags:
        found[id(dag)] = dag
    return sorted(found.values(), key=lambda d: d._leoflow_seq)


def load_task(path: str, root: str, dag_id: str, task_id: str):
    """Import a DAG file in run mode and return the task object for (dag_id, task_id) — for the task runtime.

    A DAG file the fork server warmed (and that is unchanged) is taken from memory instead of being imported again.
    """
    from .task_context import parsing_for

    warm = _WARM_DAGS.get(os.path.abspath(path))
    if warm is not None and warm.is_current():
        sys.modules.update(warm.modules)
        result = warm.result
    else:
        with parsing_for(dag_id, task_id):
            result = load_file(path, root, mode="run", keep_modules=True)
    if result.errors:
        raise RuntimeError("; ".join(repr(e) for e in result.errors))
    for dag in result.dags:
        if dag.dag_id == dag_id:
            return dag.get_task(task_id)
    raise LookupError(f"DAG {dag_id!r} not found in {result.fileloc}")


# -- the warm DAG cache (fork server) ----------------------------------------------------------------------------------


def _file_stamp(path: str):
    """What identifies one version of a file without reading it: (inode, size, mtime in ns), or None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class WarmDag:
    """A DAG file imported once in the fork server: its DAGs, the modules it imported, and their files' stamps."""

    def __init__(self, result: LoadResult, modules: dict, stamps: dict):
        self.result = result
        self.modules = modules
        self.stamps = stamps

    def is_current(self) -> bool:
        """True while the DAG file and every project module it imported are unchanged on disk."""
        return all(_file_stamp(path) == stamp for path, stamp in self.stamps.items())


# Absolute DAG file path -> WarmDag, filled by warm_dag() in the fork server and inherited by the forked attempts.
_WARM_DAGS: dict = {}


def warm_dag(path: str, root: str) -> bool:
    """Import the DAG file at `path` into the warm cache unless it is there and current; True when it is cached.

    The project modules the file imports are kept with it but taken out of `sys.modules`, so two DAG files with
    same-named helper modules (a workspace of projects) never see each other's. A file that fails to import is not
    cached: its attempts import it themselves and report the error.
    """
    path = os.path.abspath(path)
    warm = _WARM_DAGS.get(path)
    if warm is not None and warm.is_current():
        return True
    _WARM_DAGS.pop(path, None)
    stamp = _file_stamp(path)
    if stamp is None:
        return False
    root = os.path.abspath(root)
    before = set(sys.modules)
    result = load_file(path, root, mode="run", keep_modules=True)
    added = _added_user_modules(before, path, root)
    for name in added:
        del sys.modules[name]
    if result.errors or not result.dags:
        return False
    stamps = {path: stamp}
    for module in added.values():
        source = getattr(module, "__file__", None)
        if source:
            stamps[os.path.abspath(source)] = _file_stamp(source)
    _WARM_DAGS[path] = WarmDag(result, added, stamps)
    prepare_interpreter()  # records the module count, so the forked attempts skip the check
    return True
