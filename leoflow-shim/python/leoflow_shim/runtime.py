"""The task runtime: `python3 -m leoflow_shim run <workdir>` runs one attempt described by `<workdir>/context.json`.

It re-imports the DAG file under the shim (entrypoint `"<fileloc>:<task_id>"`), or imports a Go-era
`module:callable`, builds Airflow's context, renders the templated fields, runs the task, and writes
`<workdir>/result.json`:

- `{"status": "success", "return_value": <JSON or null>}`;
- `{"status": "skipped", "message": "..."}` (AirflowSkipException, a soft_fail sensor timing out);
- `{"status": "failed", "error": "<one line>", "retryable": true|false}`. AirflowFailException, AirflowSensorTimeout,
  a return value that is not JSON-serialisable and other causes no retry can fix are not retryable. Any other
  exception is retryable, and its traceback goes to stderr.

The exit code is 0 whenever result.json was written, and 1 only when it could not be. stdout and stderr are the task
log; the return value is never printed. `ti.xcom_push` appends to `<workdir>/xcom.jsonl`.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import types

from .exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
from .jsonvalues import NotJSON, dumps

CONTEXT_FILE = "context.json"
RESULT_FILE = "result.json"
XCOM_FILE = "xcom.jsonl"
MAX_ERROR_CHARS = 2000


class TaskFailure(Exception):
    """A failure the runtime itself detects, with whether a retry could help."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, TaskFailure):
        line = text
    else:
        line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    line = " ".join(line.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


def _not_retryable(exc: BaseException) -> bool:
    from .agent_client import XComForbidden
    from .templating import UnsupportedTemplate

    if isinstance(exc, TaskFailure):
        return not exc.retryable
    return isinstance(exc, (AirflowFailException, AirflowSensorTimeout, XComForbidden, UnsupportedTemplate))


def failed(error: str, retryable: bool) -> dict:
    return {"status": "failed", "error": error, "retryable": retryable}


def outcome_of(exc: BaseException) -> dict:
    """The result.json document for a task that raised `exc`."""
    if isinstance(exc, AirflowSkipException):
        return {"status": "skipped", "message": str(exc) or "the task raised AirflowSkipException"}
    if not isinstance(exc, TaskFailure):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return failed(_one_line(exc), not _not_retryable(exc))


# -- the trigger hook -----------------------------------------------------------------------------------------------


def _trigger_not_supported(trigger_dag_id=None, **_ignored):
    raise AirflowFailException(
        f"TriggerDagRunOperator is not supported yet in this runtime: triggering DAG '{trigger_dag_id}' from a task "
        "needs an agent endpoint that a later Leoflow release adds; trigger that DAG from the API or the UI meanwhile"
    )


def _install_hooks() -> None:
    from .operators import trigger_dagrun

    if trigger_dagrun.trigger_dag_run_hook is None:
        trigger_dagrun.trigger_dag_run_hook = _trigger_not_supported


# -- running one attempt --------------------------------------------------------------------------------------------


class Attempt:
    """One attempt as context.json describes it."""

    def __init__(self, document: dict, workdir: str):
        if not isinstance(document, dict):
            raise TaskFailure(f"{CONTEXT_FILE} must hold a JSON object", retryable=False)
        self.document = document
        self.workdir = workdir
        self.attempt = document.get("attempt") or {}
        self.spec = document.get("task") or {}
        self.dag_doc = document.get("dag") or {}
        self.inputs = document.get("inputs") or {}
        self.call_args = document.get("call_args") or {}
        self.mapped = document.get("mapped_kwargs") or {}
        self.task_id = self.attempt.get("task_id") or self.spec.get("task_id")
        self.dag_id = self.attempt.get("dag_id") or self.dag_doc.get("dag_id")
        map_index = self.attempt.get("map_index")
        self.map_index = map_index if isinstance(map_index, int) else -1
        try_number = self.attempt.get("try_number")
        self.try_number = try_number if isinstance(try_number, int) else 1

    def task_instance(self, task, client):
        from .task_instance import RuntimeTaskInstance, known_xcoms

        return RuntimeTaskInstance(
            dag_id=self.dag_id,
            run_id=self.attempt.get("run_id") or (self.document.get("run") or {}).get("run_id"),
            task_id=self.task_id,
            map_index=self.map_index,
            try_number=self.try_number,
            task=task,
            known=known_xcoms(self.spec.get("xcom_input") or {}, self.inputs),
            client=client,
            xcom_path=os.path.join(self.workdir, XCOM_FILE),
        )

    def run(self):
        """Run the task and return its return value (exceptions propagate)."""
        kind = self.spec.get("type", "python")
        if kind != "python":
            raise TaskFailure(
                f"the Python task runtime runs tasks of type python; task '{self.task_id}' is of type {kind!r}",
                retryable=False,
            )
        entrypoint = self.spec.get("entrypoint") or ""
        target, sep, name = entrypoint.rpartition(":")
        if not sep or not target or not name:
            raise TaskFailure(
                f"task '{self.task_id}' has the entrypoint {entrypoint!r}; expected '<file.py>:<task_id>' or "
                "'module:callable'",
                retryable=False,
            )
        from .agent_client import AgentClient
        from .loader import prepare_interpreter

        client = AgentClient.from_environment()
        prepare_interpreter()
        _install_hooks()
        if target.endswith(".py"):
            return self.run_dag_task(target, name, client)
        return self.run_module_callable(target, name, client)

    def run_dag_task(self, fileloc: str, task_id: str, client):
        from .loader import load_task
        from .run_context import build_context, run_params
        from .task_context import running_task

        root = os.getcwd()
        path = fileloc if os.path.isabs(fileloc) else os.path.join(root, fileloc)
        try:
            task = load_task(path, root, self.dag_id, task_id)
        except Exception as err:  # noqa: BLE001 - an import failure is the attempt's failure
            raise TaskFailure(f"cannot load task '{task_id}' of DAG '{self.dag_id}' from {fileloc}: {err}") from err
        dag = task.dag
        operator, callable_mapped, no_render = self.instance_of(task)
        operator.map_index = self.map_index
        ti = self.task_instance(operator, client)
        context = build_context(self.document, ti, operator, dag, run_params(self.document, operator))
        with running_task(context):
            self.prepare(operator, dag, context, callable_mapped, no_render)
            operator.pre_execute(context)
            result = operator.execute(context)
            operator.post_execute(context, result)
        if getattr(operator, "do_xcom_push", True) is False:
            return None
        if self.spec.get("multiple_outputs", getattr(operator, "multiple_outputs", False)):
            _check_multiple_outputs(result)
        return result

    def instance_of(self, task):
        """(operator to run, mapped values for the callable's parameters, fields not to render) for this instance."""
        from .mapping import MappedOperator
        from .task_arguments import literal_map_names

        literal = literal_map_names(self.spec.get("map"))
        if isinstance(task, MappedOperator):
            # A mapped classic operator: the expanded names are operator arguments.
            return task.unmap(dict(self.mapped)), {}, {n for n in self.mapped if n not in literal}
        if getattr(task, "_leoflow_map", None) is not None:
            task._leoflow_map = None
            return task, dict(self.mapped), set()
        return task, {}, set()

    def prepare(self, operator, dag, context, callable_mapped, no_render) -> None:
        """Sensor settings from dag.json, the callable's arguments, and the rendered template fields."""
        from .operators.python import CallableTaskMixin
        from .operators.sensors import BaseSensorOperator
        from .task_arguments import bind_callable_arguments, literal_map_names
        from .templating import render_fields

        sensor = self.spec.get("sensor")
        if isinstance(sensor, dict) and isinstance(operator, BaseSensorOperator):
            operator.poke_interval = sensor.get("poke_interval_seconds", operator.poke_interval)
            operator.timeout = sensor.get("timeout_seconds", operator.timeout)
            operator.soft_fail = bool(sensor.get("soft_fail", operator.soft_fail))
            operator.exponential_backoff = bool(sensor.get("exponential_backoff", operator.exponential_backoff))
            operator.mode = sensor.get("mode", operator.mode)
        skip = set(no_render)
        if isinstance(operator, CallableTaskMixin):
            bind_callable_arguments(
                operator,
                self.call_args,
                self.inputs,
                callable_mapped,
                literal_map_names(self.spec.get("map")),
                context,
                dag,
            )
            skip.update(("op_args", "op_kwargs"))
        render_fields(operator, context, dag, skip)

    def run_module_callable(self, module_name: str, attribute: str, client):
        """The Go-era entrypoint: import `module`, call `callable` with call_args/inputs/mapped_kwargs by keyword."""
        import importlib

        from .run_context import build_context, run_params
        from .task_arguments import module_callable_kwargs
        from .task_context import running_task

        root = os.getcwd()
        if root not in sys.path:
            sys.path.insert(1, root)
        task = types.SimpleNamespace(
            task_id=self.task_id,
            dag_id=self.dag_id,
            map_index=self.map_index,
            owner=self.dag_doc.get("owner") or "airflow",
            retries=self.spec.get("retries", 0),
            params={},
        )
        dag = types.SimpleNamespace(
            dag_id=self.dag_id,
            fileloc=self.dag_doc.get("fileloc"),
            params=dict(self.dag_doc.get("params") or {}),
            owner=task.owner,
        )
        ti = self.task_instance(task, client)
        context = build_context(self.document, ti, task, dag, run_params(self.document, task))
        with running_task(context):
            module = importlib.import_module(module_name)
            try:
                function = getattr(module, attribute)
            except AttributeError:
                raise TaskFailure(
                    f"module {module_name!r} has no attribute {attribute!r} (entrypoint {module_name}:{attribute})",
                    retryable=False,
                ) from None
            function = getattr(function, "function", function)  # a @task-decorated function: the raw function
            kwargs = module_callable_kwargs(function, self.call_args, self.inputs, self.mapped, context)
            return function(**kwargs)


def _check_multiple_outputs(result) -> None:
    """Airflow's checks on a multiple_outputs return value (the engine splits the dict into XComs)."""
    if result is None:
        return
    if not isinstance(result, dict):
        raise TypeError(f"Returned output was type {type(result)} expected dictionary for multiple_outputs")
    for key in result:
        if not isinstance(key, str):
            raise TypeError(
                f"Returned dictionary keys must be strings when using multiple_outputs, found {key} ({type(key)}) "
                "instead"
            )


# -- result.json ----------------------------------------------------------------------------------------------------


def _success_text(value, task_id) -> str:
    try:
        text = dumps(value)
    except NotJSON as err:
        raise TaskFailure(
            f"the return value of task '{task_id}' is not JSON-serialisable: it contains {err}. Return "
            "JSON-serialisable data (dict, list, str, number, bool, None), or write the data to storage and return "
            "its path",
            retryable=False,
        ) from None
    return '{"status":"success","return_value":' + text + "}"


def execute(workdir: str) -> str:
    """Run the attempt in `workdir` and return the text of its result.json."""
    path = os.path.join(workdir, CONTEXT_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            attempt = Attempt(json.load(fh), workdir)
    except TaskFailure as err:
        return json.dumps(outcome_of(err))
    except (OSError, ValueError) as err:
        return json.dumps(failed(f"cannot read {path}: {err}", retryable=False))
    try:
        value = attempt.run()
        return _success_text(value, attempt.task_id)
    except BaseException as exc:  # noqa: BLE001 - every way a task can end becomes a result
        try:
            return json.dumps(outcome_of(exc), ensure_ascii=False)
        except Exception as inner:  # noqa: BLE001 - e.g. an exception whose str() fails
            return json.dumps(failed(f"{type(exc).__name__} (its message could not be read: {inner})", True))


def write_result(workdir: str, text: str) -> None:
    """Write result.json in place: the agent reads it only once this process has exited."""
    path = os.path.join(workdir, RESULT_FILE)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.write("\n")
    except OSError:
        try:
            os.unlink(path)  # no half-written result
        except OSError:
            pass
        raise


def run(workdir: str) -> int:
    """`leoflow_shim run <workdir>`: 0 when result.json was written, 1 otherwise."""
    workdir = os.path.abspath(workdir)
    try:
        text = execute(workdir)
    except BaseException as exc:  # noqa: BLE001 - a runtime bug must still produce a result
        text = json.dumps(failed(f"internal error in the leoflow_shim runtime: {type(exc).__name__}: {exc}", True))
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    try:
        write_result(workdir, text)
    except OSError as err:
        print(f"leoflow_shim: cannot write {os.path.join(workdir, RESULT_FILE)}: {err}", file=sys.stderr)
        return 1
    return 0
