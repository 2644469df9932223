"""What the task runtime will use: re-import a DAG file in run mode, find a task by id, run it.

The runtime (leoflow_shim/runtime.py, tested end to end in test_runtime.py) is built on these entry points; the tests
here pin them in-process.
"""

from __future__ import annotations

import os
import shutil

import pytest

from leoflow_shim.loader import load_task
from leoflow_shim.task_context import get_current_context, get_parsing_context, running_task
from support import DAGS_DIR


class FakeTaskInstance:
    """Answers xcom_pull from a dict keyed by (task_id, key)."""

    def __init__(self, values):
        self.values = values

    def xcom_pull(self, task_ids, key="return_value"):
        return self.values[(task_ids, key)]


def _context(values=None, **extra):
    return {"ti": FakeTaskInstance(values or {}), "params": {}, "run_id": "manual__1", **extra}


def _task(filename, dag_id, task_id):
    return load_task(os.path.join(DAGS_DIR, filename), DAGS_DIR, dag_id, task_id)


def test_taskflow_task_runs_with_its_upstream_values():
    transform = _task("taskflow_etl.py", "tutorial_taskflow_api", "transform")
    context = _context({("extract", "return_value"): {"a": 1.5, "b": 2.5}})
    with running_task(context):
        assert transform.execute(context) == {"total_order_value": 4.0, "count": 2}


def test_classic_python_operator_runs_with_its_literal_arguments():
    compute = _task("classic_operators.py", "classic_operators", "compute")
    assert compute.execute(_context()) == 30


def test_custom_operator_gets_rendered_template_fields():
    hello = _task("custom_operators.py", "custom_operators", "hello")
    context = _context({("who", "return_value"): "world"})
    hello.render_template_fields(context)
    assert hello.execute(context) == "Hi world"


def test_dag_params_are_resolved_from_the_run():
    send = _task("dag_function_params.py", "dag_function_params", "send")
    context = _context(params={"email": "me@example.com", "limit": 3})
    from leoflow_shim.task_context import resolve

    assert resolve(send.op_args, context) == ["me@example.com", 3]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_task_bash_runs_the_returned_command():
    greet = _task("task_bash_decorator.py", "task_bash_decorator", "greet")
    context = _context({("get_name", "return_value"): "leoflow"})
    assert greet.execute(context) == "hi leoflow"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_mapped_classic_operator_unmaps_into_a_real_operator():
    echo = _task("mapping_classic.py", "mapping_classic", "echo")
    instance = echo.unmap({"bash_command": "echo 2"})
    assert type(instance).__name__ == "BashOperator"
    assert instance.retries == 1 and instance.retry_delay.total_seconds() == 5
    assert instance.execute(_context()) == "2"


def test_mapped_taskflow_task_unmaps_with_its_element():
    add_one = _task("mapping_literal.py", "mapping_literal", "add_one")
    assert add_one.unmap({"x": 41}).execute(_context()) == 42


def test_current_context_and_variables_inside_a_running_task(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_RUNTIME_ONLY", "from-env")
    task = _task("context_and_variables.py", "context_and_variables", "uses_context")
    context = _context()
    with running_task(context):
        assert get_current_context() is context
        assert task.execute(context) == "manual__1"


def test_parsing_context_names_the_task_while_the_runtime_imports():
    assert tuple(get_parsing_context()) == (None, None)
    task = _task("trigger_dagrun.py", "trigger_controller", "trigger_target")
    assert task.trigger_dag_id == "trigger_target"
    assert tuple(get_parsing_context()) == (None, None)


def test_connections_come_from_the_environment(monkeypatch):
    from leoflow_shim.connection import Connection

    monkeypatch.setenv("AIRFLOW_CONN_PG", "postgres://user:p%40ss@db.example:5432/sales?__extra__=%7B%22a%22%3A1%7D")
    with running_task(_context()):
        conn = Connection.get("pg")
    assert (conn.conn_type, conn.host, conn.login, conn.password, conn.port, conn.schema) == (
        "postgres",
        "db.example",
        "user",
        "p@ss",
        5432,
        "sales",
    )
    assert conn.extra_dejson == {"a": 1}


def test_unknown_task_is_a_clear_error():
    from leoflow_shim.exceptions import TaskNotFound

    with pytest.raises(TaskNotFound):
        _task("fan_in.py", "fan_in", "nope")
