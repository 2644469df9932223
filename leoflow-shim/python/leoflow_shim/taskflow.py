"""TaskFlow: the @task decorators (@task, .bash, .branch, .short_circuit, .sensor, .virtualenv), @setup, @teardown.

Calling a decorated function creates one task and returns an XComArg for its return value; repeated calls get
Airflow's `name__1`, `name__2` ids. `.expand()` / `.partial()` / `.expand_kwargs()` create mapped tasks.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import types

from .errors import UnsupportedFeature
from .mapping import is_mappable, link_map_sources, map_block, prevent_duplicates
from .operators.bash import DEFAULT_SKIP_EXIT_CODE, run_bash
from .operators.python import CallableTaskMixin, PythonOperator, context_signature
from .operators.sensors import BaseSensorOperator, PokeReturnValue
from .task_context import KNOWN_CONTEXT_KEYS
from .trigger_rule import TriggerRule
from .xcom import XComArg


def infer_multiple_outputs(function) -> bool:
    """Airflow's rule: a return annotation that is a Mapping type (dict, Dict[...], a TypedDict) means True."""
    annotations = getattr(function, "__annotations__", None) or {}
    if "return" not in annotations:
        return False
    annotation = annotations["return"]
    if isinstance(annotation, str):
        try:
            annotation = eval(annotation, getattr(function, "__globals__", {}))  # noqa: S307 - Airflow does the same
        except Exception:
            return False
    origin = getattr(annotation, "__origin__", annotation)
    return isinstance(origin, type) and issubclass(origin, collections.abc.Mapping)


def prepare_decorated(python_callable, task_id, op_args, op_kwargs, kwargs, mapped: bool):
    """Unique task id, default_args-filled op_kwargs and an argument check, as Airflow's DecoratedOperator does."""
    dag = kwargs.get("dag")
    if dag is not None:
        task_id = dag.unique_task_id(task_id, kwargs.get("task_group"))
    op_args = list(op_args or ())
    op_kwargs = dict(op_kwargs or {})
    signature = context_signature(python_callable)
    for param in signature.parameters.values():
        if param.name in KNOWN_CONTEXT_KEYS and param.default is not None and param.default is not param.empty:
            raise ValueError(f"Context key parameter {param.name} can't have a default other than None")
    default_args = kwargs.get("default_args") or {}
    positional = list(signature.parameters)[: len(op_args)]
    for name in signature.parameters:
        if name not in op_kwargs and name in default_args and name not in positional:
            op_kwargs[name] = default_args[name]
    binder = signature.bind_partial if mapped else signature.bind
    try:
        binder(*op_args, **op_kwargs)
    except TypeError as err:
        name = getattr(python_callable, "__name__", "the task function")
        raise TypeError(f"invalid arguments for task '{task_id}' ({name}): {err}") from None
    return task_id, op_args, op_kwargs


class DecoratedPythonOperator(PythonOperator):
    """The operator behind @task."""

    custom_operator_name = "@task"
    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable,
        task_id,
        op_args=None,
        op_kwargs=None,
        _airflow_mapped_validation_only: bool = False,
        **kwargs,
    ):
        task_id, op_args, op_kwargs = prepare_decorated(
            python_callable, task_id, op_args, op_kwargs, kwargs, _airflow_mapped_validation_only
        )
        super().__init__(
            python_callable=python_callable, task_id=task_id, op_args=op_args, op_kwargs=op_kwargs, **kwargs
        )


class DecoratedBashOperator(DecoratedPythonOperator):
    """@task.bash: the function returns the command at run time; the shim's execute() then runs it with bash."""

    custom_operator_name = "@task.bash"
    template_fields = ("templates_dict", "op_args", "op_kwargs", "env", "cwd")

    def __init__(
        self,
        *,
        env=None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code=DEFAULT_SKIP_EXIT_CODE,
        cwd=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        self.skip_on_exit_code = skip_on_exit_code
        self.cwd = cwd

    def execute(self, context):
        from .templating import render_string

        command = self.execute_callable(context)
        if not isinstance(command, str) or not command.strip():
            raise TypeError("The returned value from the TaskFlow callable must be a non-empty string.")
        # Airflow renders the returned command as a template (bash_command is a template field of BashOperator).
        command = render_string(command, context, self.dag)
        return run_bash(
            command, self.env, self.append_env, self.cwd, self.skip_on_exit_code, self.output_encoding, context=context
        )


class DecoratedBranchOperator(DecoratedPythonOperator):
    custom_operator_name = "@task.branch"
    _leoflow_branch = "branch"


class DecoratedShortCircuitOperator(DecoratedPythonOperator):
    custom_operator_name = "@task.short_circuit"
    _leoflow_branch = "short_circuit"

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def _leoflow_spec(self, fileloc):
        spec = super()._leoflow_spec(fileloc)
        spec["ignore_downstream_trigger_rules"] = bool(self.ignore_downstream_trigger_rules)
        return spec


class DecoratedVirtualenvOperator(DecoratedPythonOperator):
    """@task.virtualenv runs as a plain Python task in the DAG's image (declare packages in leoflow.yaml)."""

    custom_operator_name = "@task.virtualenv"

    def __init__(
        self,
        *,
        requirements=None,
        python_version=None,
        serializer=None,
        system_site_packages=True,
        pip_install_options=None,
        use_dill=False,
        use_airflow_context=False,
        expect_airflow=True,
        string_args=None,
        index_urls=None,
        index_urls_from_connection_ids=None,
        venv_cache_path=None,
        env_vars=None,
        inherit_env=True,
        skip_on_exit_code=None,
        templates_exts=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.requirements = requirements
        self.python_version = python_version


class DecoratedSensorOperator(CallableTaskMixin, BaseSensorOperator):
    """@task.sensor: the function is poked until it returns True (or a done PokeReturnValue)."""

    custom_operator_name = "@task.sensor"
    template_fields = ("op_args", "op_kwargs")
    templates_dict = None
    _leoflow_map = None

    def __init__(
        self,
        *,
        python_callable,
        task_id,
        op_args=None,
        op_kwargs=None,
        _airflow_mapped_validation_only: bool = False,
        **kwargs,
    ):
        task_id, op_args, op_kwargs = prepare_decorated(
            python_callable, task_id, op_args, op_kwargs, kwargs, _airflow_mapped_validation_only
        )
        super().__init__(task_id=task_id, **kwargs)
        self.python_callable = python_callable
        self.op_args = op_args
        self.op_kwargs = op_kwargs

    def poke(self, context):
        result = self.execute_callable(context)
        return result if isinstance(result, PokeReturnValue) else PokeReturnValue(bool(result))


class _TaskDecorator:
    """A @task-decorated function: call it to create a task; .expand/.partial/.override as in Airflow."""

    def __init__(self, function, operator_class, multiple_outputs=None, kwargs=None, decorator_name="task"):
        if not callable(function):
            raise TypeError(f"@{decorator_name} must decorate a function, got {type(function).__name__}")
        if "self" in context_signature(function).parameters:
            raise TypeError(f"@{decorator_name} does not support methods")
        self.function = function
        self.operator_class = operator_class
        self.decorator_name = decorator_name
        self.kwargs = dict(kwargs or {})
        self.kwargs.setdefault("task_id", function.__name__)
        self.multiple_outputs = infer_multiple_outputs(function) if multiple_outputs is None else multiple_outputs
        self.is_setup = False
        self.is_teardown = False
        self.on_failure_fail_dagrun = False
        functools.update_wrapper(self, function)

    def _copy(self, kwargs) -> _TaskDecorator:
        new = _TaskDecorator(self.function, self.operator_class, self.multiple_outputs, kwargs, self.decorator_name)
        new.is_setup = self.is_setup
        new.is_teardown = self.is_teardown
        new.on_failure_fail_dagrun = self.on_failure_fail_dagrun
        return new

    def _operator_kwargs(self) -> dict:
        kwargs = dict(self.kwargs)
        if self.is_teardown:
            if "trigger_rule" in kwargs:
                raise ValueError("Trigger rule not configurable for teardown tasks.")
            kwargs["trigger_rule"] = TriggerRule.ALL_DONE_SETUP_SUCCESS
        return kwargs

    def _finish(self, op, on_failure_fail_dagrun) -> XComArg:
        op.is_setup = self.is_setup
        op.is_teardown = self.is_teardown
        op.on_failure_fail_dagrun = on_failure_fail_dagrun
        if self.function.__doc__ and not any((op.doc, op.doc_json, op.doc_md, op.doc_rst, op.doc_yaml)):
            op.doc_md = self.function.__doc__
        return XComArg(op)

    def __call__(self, *args, **kwargs) -> XComArg:
        op_kwargs = self._operator_kwargs()
        on_fail = op_kwargs.pop("on_failure_fail_dagrun", self.on_failure_fail_dagrun)
        if "op_kwargs" in op_kwargs:
            partial_kwargs = op_kwargs.pop("op_kwargs")
            prevent_duplicates(partial_kwargs, kwargs, "duplicate partial")
            kwargs = {**partial_kwargs, **kwargs}
        op = self.operator_class(
            python_callable=self.function,
            op_args=args,
            op_kwargs=kwargs,
            multiple_outputs=self.multiple_outputs,
            **op_kwargs,
        )
        return self._finish(op, on_fail)

    def override(self, **kwargs) -> _TaskDecorator:
        return self._copy({**self.kwargs, **kwargs})

    def _validate_arg_names(self, func: str, kwargs: dict) -> None:
        mapped_context = KNOWN_CONTEXT_KEYS.intersection(kwargs)
        if mapped_context:
            names = ", ".join(repr(n) for n in sorted(mapped_context))
            raise ValueError(
                f"cannot call {func}() on task context variable{'s' if len(mapped_context) > 1 else ''} {names}"
            )
        parameters = context_signature(self.function).parameters
        if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return
        left = [name for name in kwargs if name not in parameters]
        if len(left) == 1:
            raise TypeError(f"{func}() got an unexpected keyword argument {left[0]!r}")
        if left:
            raise TypeError(f"{func}() got unexpected keyword arguments {', '.join(repr(n) for n in left)}")

    def partial(self, **kwargs) -> _TaskDecorator:
        self._validate_arg_names("partial", kwargs)
        old = self.kwargs.get("op_kwargs", {})
        prevent_duplicates(old, kwargs, "duplicate partial")
        return self._copy({**self.kwargs, "op_kwargs": {**old, **kwargs}})

    def expand(self, **map_kwargs) -> XComArg:
        if not map_kwargs:
            raise TypeError("no arguments to expand against")
        self._validate_arg_names("expand", map_kwargs)
        for name, value in map_kwargs.items():
            if not is_mappable(value):
                raise ValueError(
                    f"expand() got an unexpected type {type(value).__name__!r} for keyword argument {name!r}"
                )
        prevent_duplicates(self.kwargs.get("op_kwargs", {}), map_kwargs, "mapping already partial")
        return self._expand("expand", map_kwargs)

    def expand_kwargs(self, kwargs, *, strict: bool = True) -> XComArg:
        return self._expand("expand_kwargs", kwargs)

    def _expand(self, kind: str, value) -> XComArg:
        op_kwargs = self._operator_kwargs()
        on_fail = op_kwargs.pop("on_failure_fail_dagrun", self.on_failure_fail_dagrun)
        partial_kwargs = op_kwargs.pop("op_kwargs", {})
        op = self.operator_class(
            python_callable=self.function,
            op_args=(),
            op_kwargs=partial_kwargs,
            multiple_outputs=self.multiple_outputs,
            _airflow_mapped_validation_only=True,
            **op_kwargs,
        )
        op._leoflow_map = map_block(kind, value, op.task_id)
        link_map_sources(op, value)
        return self._finish(op, on_fail)


def _make_decorator(operator_class, decorator_name, python_callable, multiple_outputs, kwargs):
    if python_callable is not None:
        return _TaskDecorator(python_callable, operator_class, multiple_outputs, kwargs, decorator_name)

    def decorator(function):
        return _TaskDecorator(function, operator_class, multiple_outputs, kwargs, decorator_name)

    return decorator


_UNSUPPORTED_DECORATORS = {
    "external_python": "use @task; tasks run with the image's Python and the `dependencies` of leoflow.yaml",
    "branch_external_python": "use @task.branch",
    "branch_virtualenv": "use @task.branch and declare packages under `dependencies` in leoflow.yaml",
    "docker": "every Leoflow task already runs in a container of the DAG's image; use @task or @task.bash",
    "kubernetes": (
        "every Leoflow task already runs in a pod of the DAG's image; use @task and set resources in leoflow.yaml"
    ),
    "kubernetes_cmd": "every Leoflow task already runs in a pod of the DAG's image; use @task.bash",
    "pyspark": "use @task and create the Spark session inside the task",
    "snowpark": "use @task with the Snowflake library declared under `dependencies`",
    "sql": "use @task with the database driver declared under `dependencies`",
    "run_if": "put the condition in a @task.short_circuit task upstream of the task",
    "skip_if": "put the condition in a @task.short_circuit task upstream of the task",
    "stub": "give the task a real body",
}


class TaskDecoratorCollection:
    """`task`: @task itself plus its variants as attributes."""

    def __call__(self, python_callable=None, multiple_outputs=None, **kwargs):
        return self.python(python_callable, multiple_outputs, **kwargs)

    def python(self, python_callable=None, multiple_outputs=None, **kwargs):
        return _make_decorator(DecoratedPythonOperator, "task", python_callable, multiple_outputs, kwargs)

    def bash(self, python_callable=None, **kwargs):
        return _make_decorator(DecoratedBashOperator, "task.bash", python_callable, False, kwargs)

    def branch(self, python_callable=None, multiple_outputs=None, **kwargs):
        return _make_decorator(DecoratedBranchOperator, "task.branch", python_callable, multiple_outputs, kwargs)

    def short_circuit(self, python_callable=None, multiple_outputs=None, **kwargs):
        return _make_decorator(
            DecoratedShortCircuitOperator, "task.short_circuit", python_callable, multiple_outputs, kwargs
        )

    def sensor(self, python_callable=None, **kwargs):
        return _make_decorator(DecoratedSensorOperator, "task.sensor", python_callable, False, kwargs)

    def virtualenv(self, python_callable=None, multiple_outputs=None, **kwargs):
        return _make_decorator(
            DecoratedVirtualenvOperator, "task.virtualenv", python_callable, multiple_outputs, kwargs
        )

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        instead = _UNSUPPORTED_DECORATORS.get(name)

        def unsupported(*args, **kwargs):
            if instead is not None:
                raise UnsupportedFeature(f"@task.{name}", instead)
            raise UnsupportedFeature(
                f"@task.{name}",
                "Leoflow knows @task, @task.bash, @task.branch, @task.short_circuit, @task.sensor and @task.virtualenv",
            )

        return unsupported


task = TaskDecoratorCollection()


def setup(func):
    """Mark a @task (or plain function, which becomes a @task) as a setup task."""
    from .taskgroup import TaskGroupFactory

    if isinstance(func, types.FunctionType):
        func = task(func)
    if isinstance(func, TaskGroupFactory):
        from .exceptions import AirflowException

        raise AirflowException("Task groups cannot be marked as setup or teardown.")
    func.is_setup = True
    return func


def teardown(_func=None, *, on_failure_fail_dagrun: bool = False):
    """Mark a @task (or plain function) as a teardown task; its trigger rule becomes all_done_setup_success."""

    def teardown_task(func):
        from .taskgroup import TaskGroupFactory

        if isinstance(func, types.FunctionType):
            func = task(func)
        if isinstance(func, TaskGroupFactory):
            from .exceptions import AirflowException

            raise AirflowException("Task groups cannot be marked as setup or teardown.")
        func.is_teardown = True
        func.on_failure_fail_dagrun = on_failure_fail_dagrun
        return func

    if _func is None:
        return teardown_task
    return teardown_task(_func)
