"""Structured compile errors (file, line, message) and the translation of Python exceptions into what to do next."""

from __future__ import annotations

import os


class UnsupportedFeature(Exception):
    """An Airflow feature Leoflow cannot run; the message names it and says what to write instead."""

    def __init__(self, feature: str, instead: str):
        super().__init__(f"{feature} is not supported by Leoflow: {instead}")
        self.feature = feature


class DagDefinitionError(Exception):
    """A problem found after the file ran (cycle, bad XCom reference...), carrying the DAG-file line it is about."""

    def __init__(self, message: str, line=None):
        super().__init__(message)
        self.line = line


class ImportTimeout(Exception):
    """The DAG file ran longer than the import timeout."""


class CompileError:
    """One entry of the CLI's `errors` array."""

    __slots__ = ("file", "line", "message")

    def __init__(self, file: str, line, message: str):
        self.file = file
        self.line = line
        self.message = message

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "message": self.message}

    def __repr__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


SUPPORTED_SURFACE = (
    "airflow.sdk, airflow.decorators, airflow.models, airflow.operators.{bash,python,empty,latest_only,"
    "trigger_dagrun,branch}, airflow.sensors.{base,bash,python}, airflow.providers.standard.*, "
    "airflow.providers.http.operators.http, airflow.utils.{trigger_rule,task_group,edgemodifier,dates,state}, "
    "airflow.exceptions"
)

_PROVIDER_ADVICE = (
    "call the service's Python library inside a @task instead, declare the library under `dependencies` "
    "in leoflow.yaml, and import it inside the task function"
)

# Module prefix -> what to write instead. The longest matching prefix wins.
MODULE_HINTS = {
    "airflow.operators.dummy": (
        "DummyOperator was removed in Airflow 3; use EmptyOperator from airflow.providers.standard.operators.empty"
    ),
    "airflow.operators.dummy_operator": "use EmptyOperator from airflow.providers.standard.operators.empty",
    "airflow.operators.bash_operator": "import BashOperator from airflow.providers.standard.operators.bash",
    "airflow.operators.python_operator": "import PythonOperator from airflow.providers.standard.operators.python",
    "airflow.operators.subdag": "SubDAGs were removed in Airflow 3; use a TaskGroup",
    "airflow.operators.email": "send the e-mail from a @task (smtplib) instead",
    "airflow.operators.datetime": "use @task.branch with the logical date from get_current_context()",
    "airflow.operators.weekday": "use @task.branch with the logical date from get_current_context()",
    "airflow.sensors.external_task": (
        "cross-DAG sensors are not available; trigger the downstream DAG with TriggerDagRunOperator instead"
    ),
    "airflow.providers.standard.sensors.external_task": (
        "cross-DAG sensors are not available; trigger the downstream DAG with TriggerDagRunOperator instead"
    ),
    "airflow.sensors.time_delta": "use @task.sensor that compares the current time yourself",
    "airflow.sensors.date_time": "use @task.sensor that compares the current time yourself",
    "airflow.sensors.filesystem": "use @task.sensor that checks the path with os.path.exists",
    "airflow.providers.standard.sensors.filesystem": "use @task.sensor that checks the path with os.path.exists",
    "airflow.providers.standard.sensors.time_delta": "use @task.sensor that compares the current time yourself",
    "airflow.providers.standard.sensors.date_time": "use @task.sensor that compares the current time yourself",
    "airflow.providers.cncf.kubernetes": (
        "every Leoflow task already runs in a pod of the DAG's image; use @task (or BashOperator) and set "
        "resources in leoflow.yaml"
    ),
    "airflow.providers.docker": (
        "every Leoflow task already runs in a container of the DAG's image; use @task (or BashOperator)"
    ),
    "airflow.providers.http.sensors": "use @task.sensor that calls the endpoint with urllib",
    "airflow.providers.http.hooks": (
        "call the endpoint with urllib (or requests, declared under `dependencies`) inside a @task"
    ),
    "airflow.providers": _PROVIDER_ADVICE,
    "airflow.contrib": "airflow.contrib was removed; " + _PROVIDER_ADVICE,
    "airflow.utils.helpers": "import chain and cross_downstream from airflow.sdk",
    "airflow.kubernetes": "every Leoflow task already runs in a pod of the DAG's image; use @task",
}

# Names that a supported module does not provide -> what to write instead.
NAME_HINTS = {
    "DummyOperator": "use EmptyOperator",
    "SubDagOperator": "use a TaskGroup",
    "ExternalTaskSensor": (
        "cross-DAG sensors are not available; trigger the downstream DAG with TriggerDagRunOperator instead"
    ),
    "ExternalTaskMarker": (
        "cross-DAG markers are not available; trigger the downstream DAG with TriggerDagRunOperator instead"
    ),
    "ExternalPythonOperator": "use @task; tasks run with the image's Python and the `dependencies` of leoflow.yaml",
    "BranchExternalPythonOperator": "use @task.branch",
    "BranchPythonVirtualenvOperator": "use @task.branch and declare packages under `dependencies` in leoflow.yaml",
    "ObjectStoragePath": "use the storage library inside a @task",
    "BaseNotifier": "notifications are not available; send them from a task",
    "asset": "the @asset decorator needs asset-driven scheduling; use @dag with a cron schedule",
}


def _module_hint(module: str):
    best = None
    for prefix, hint in MODULE_HINTS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, hint)
    return best[1] if best else None


def describe(exc: BaseException) -> str:
    """The user-facing message for an exception raised while importing a DAG file."""
    if isinstance(exc, (UnsupportedFeature, DagDefinitionError, ImportTimeout)):
        return str(exc)
    if isinstance(exc, SyntaxError):
        return f"syntax error: {exc.msg}"
    if isinstance(exc, ModuleNotFoundError):
        name = exc.name or str(exc)
        if name == "airflow" or name.startswith("airflow."):
            hint = _module_hint(name)
            if hint:
                return f"Airflow module '{name}' is not supported by Leoflow: {hint}"
            return (
                f"Airflow module '{name}' is not part of Leoflow's Airflow shim (supported: {SUPPORTED_SURFACE}); "
                "rewrite that part of the DAG with @task"
            )
        root = name.split(".")[0]
        return (
            f"module '{name}' is not installed where DAGs are compiled; declare '{root}' under `dependencies` "
            "in leoflow.yaml and import heavy libraries inside the task function instead of at the top of the DAG file"
        )
    if isinstance(exc, ImportError):
        module = exc.name or ""
        text = str(exc)
        if module == "airflow" or module.startswith("airflow."):
            missing = text.split("'")[1] if text.startswith("cannot import name '") else None
            hint = NAME_HINTS.get(missing or "")
            if missing and hint:
                return f"'{missing}' (from {module}) is not supported by Leoflow: {hint}"
            if missing:
                return (
                    f"'{missing}' cannot be imported from {module}: Leoflow's Airflow shim does not provide it "
                    "(see leoflow-shim/python/README.md for the supported surface); "
                    "rewrite that part of the DAG with @task"
                )
        return f"ImportError: {text}"
    from .exceptions import AirflowDagCycleException, DuplicateTaskIdFound

    if isinstance(exc, DuplicateTaskIdFound):
        if str(exc).startswith("group_id"):
            return (
                f"{exc}; give every TaskGroup a unique group_id (repeated @task_group calls are suffixed __1, __2...)"
            )
        return (
            f"{exc}; give every task a unique task_id (Airflow suffixes repeated TaskFlow tasks with __1, __2..., "
            "but classic operators must be unique)"
        )
    if isinstance(exc, AirflowDagCycleException):
        return str(exc)
    if isinstance(exc, SystemExit):
        return f"the DAG file called sys.exit({exc.code!r}) while being imported"
    return f"{type(exc).__name__}: {exc}"


def _is_under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


_INSTALLED = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


def is_user_code(path: str, user_dirs, shim_dir: str) -> bool:
    """True for the user's own files: under the DAG or project directory, not the shim, not an installed package
    (a project's .venv may live under its root)."""
    if _is_under(path, shim_dir) or any(marker in path for marker in _INSTALLED):
        return False
    return any(_is_under(path, d) for d in user_dirs)


def locate(exc: BaseException, dag_path: str, user_dirs, shim_dir: str):
    """(line in the DAG file, (file, line) of the deepest frame in the user's own code) for `exc`."""
    line = None
    deepest = None
    if isinstance(exc, SyntaxError) and exc.filename:
        if os.path.abspath(exc.filename) == dag_path:
            line = exc.lineno
        else:
            deepest = (os.path.abspath(exc.filename), exc.lineno)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == dag_path:
            if not (isinstance(exc, SyntaxError) and line is not None):
                line = tb.tb_lineno
            deepest = None
        elif is_user_code(filename, user_dirs, shim_dir):
            deepest = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename and os.path.abspath(exc.filename) != dag_path:
        deepest = (os.path.abspath(exc.filename), exc.lineno)
    return line, deepest


def from_exception(exc: BaseException, fileloc: str, dag_path: str, root: str, shim_dir: str) -> CompileError:
    """A CompileError pointing at the DAG file's line, mentioning a helper module's line when the error is there."""
    user_dirs = [os.path.dirname(dag_path), root]
    line, deepest = locate(exc, dag_path, user_dirs, shim_dir)
    if isinstance(exc, DagDefinitionError) and exc.line is not None:
        line = exc.line
    message = describe(exc)
    if deepest is not None and deepest[0] != dag_path:
        where = os.path.relpath(deepest[0], root).replace(os.sep, "/")
        message += f" (raised in {where}:{deepest[1]})"
    return CompileError(fileloc, line, message)
