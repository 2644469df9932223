"""The task-run context: get_current_context(), get_parsing_context(), and resolving task arguments at run time.

At compile time no task runs, so get_current_context() fails with a message saying where to call it. The task
runtime enters `running_task(context)` around a task's execute(), which makes the context available.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple

from .errors import UnsupportedFeature

KNOWN_CONTEXT_KEYS = frozenset(
    {
        "conn",
        "dag",
        "dag_run",
        "data_interval_end",
        "data_interval_start",
        "ds",
        "ds_nodash",
        "exception",
        "expanded_ti_count",
        "inlet_events",
        "inlets",
        "logical_date",
        "macros",
        "map_index_template",
        "outlet_events",
        "outlets",
        "params",
        "prev_data_interval_end_success",
        "prev_data_interval_start_success",
        "prev_end_date_success",
        "prev_start_date_success",
        "reason",
        "run_id",
        "start_date",
        "task",
        "task_instance",
        "task_instance_key_str",
        "task_reschedule_count",
        "templates_dict",
        "test_mode",
        "ti",
        "triggering_asset_events",
        "try_number",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "var",
    }
)

_contexts: list = []

AirflowParsingContext = namedtuple("AirflowParsingContext", ["dag_id", "task_id"])
_parsing = {"dag_id": None, "task_id": None}

Context = dict


def get_current_context():
    """The running task's context; only available inside a task while it runs."""
    if not _contexts:
        raise UnsupportedFeature(
            "calling get_current_context() while the DAG file is parsed",
            "the context exists only while a task runs; call get_current_context() inside the task function body",
        )
    return _contexts[-1]


@contextlib.contextmanager
def running_task(context):
    """Make `context` the current context for the duration of a task's execution (used by the runtime)."""
    _contexts.append(context)
    try:
        yield context
    finally:
        _contexts.pop()


def is_task_running() -> bool:
    return bool(_contexts)


def get_parsing_context():
    """Which DAG/task the file is being parsed for: both None when Leoflow compiles the whole file."""
    return AirflowParsingContext(_parsing["dag_id"], _parsing["task_id"])


@contextlib.contextmanager
def parsing_for(dag_id, task_id):
    """Set get_parsing_context() while the runtime re-imports a DAG file to run one task."""
    previous = dict(_parsing)
    _parsing.update(dag_id=dag_id, task_id=task_id)
    try:
        yield
    finally:
        _parsing.update(previous)


def context_to_airflow_vars(context) -> dict:
    """Airflow's AIRFLOW_CTX_* environment variables for a running task (what BashOperator exports to bash)."""
    context = context or {}
    ti = context.get("ti")
    task = context.get("task")
    dag_run = context.get("dag_run")
    logical_date = context.get("logical_date")
    values = {
        "AIRFLOW_CTX_DAG_OWNER": getattr(task, "owner", None),
        "AIRFLOW_CTX_DAG_ID": getattr(ti, "dag_id", None) or getattr(task, "dag_id", None),
        "AIRFLOW_CTX_TASK_ID": getattr(ti, "task_id", None) or getattr(task, "task_id", None),
        "AIRFLOW_CTX_LOGICAL_DATE": logical_date.isoformat() if hasattr(logical_date, "isoformat") else None,
        "AIRFLOW_CTX_TRY_NUMBER": getattr(ti, "try_number", None),
        "AIRFLOW_CTX_DAG_RUN_ID": getattr(dag_run, "run_id", None) or context.get("run_id"),
    }
    return {name: str(value) for name, value in values.items() if value is not None}


def resolve(value, context):
    """Replace XComArgs and DagParams inside `value` by their run-time values (lists, tuples, dicts searched)."""
    from .params import DagParam
    from .xcom import XComArg

    if isinstance(value, (XComArg, DagParam)):
        return value.resolve(context)
    if isinstance(value, list):
        return [resolve(v, context) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, context) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, context) for k, v in value.items()}
    return value
