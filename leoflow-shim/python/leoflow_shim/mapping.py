"""Dynamic task mapping: `.expand()`, `.partial().expand()`, `.expand_kwargs()` and the dag.json `map` block."""

from __future__ import annotations

from collections.abc import Sequence

from .dependencies import connect
from .errors import UnsupportedFeature
from .jsonvalues import NotJSON, to_json
from .operator import BASE_OPERATOR_PARAMS, BaseOperator, init_param_names
from .timevalues import to_seconds
from .xcom import XCOM_RETURN_KEY, XComArg, iter_xcom_args, xcom_ref


def is_mappable(value) -> bool:
    if isinstance(value, XComArg):
        return True
    return isinstance(value, (Sequence, dict)) and not isinstance(value, (str, bytes, bytearray))


def _literal(value, what: str):
    try:
        return to_json(value)
    except NotJSON as err:
        raise ValueError(f"{what} must be JSON values to be mapped over by Leoflow: {err}") from None


def _xcom_source(arg: XComArg):
    if arg.key != XCOM_RETURN_KEY:
        raise ValueError(f"cannot map over XCom with custom key {arg.key!r} from {arg.operator!r}")
    return xcom_ref(arg)


def expand_source(value, name: str, task_id: str):
    """The dag.json map source for one `.expand(name=value)` argument."""
    if isinstance(value, XComArg):
        return _xcom_source(value)
    if not is_mappable(value):
        raise ValueError(f"expand() got an unexpected type {type(value).__name__!r} for keyword argument {name!r}")
    if any(True for _ in iter_xcom_args(value)):
        raise ValueError(
            f"expand({name}=...) of task '{task_id}' maps over a literal collection containing task outputs; "
            "Leoflow maps over a literal list or one task's output: return the list from a task and expand over that"
        )
    if isinstance(value, dict):
        # Airflow maps over a dict's items; each instance receives a (key, value) pair.
        items = [[k, v] for k, v in value.items()]
        return {"literal": _literal(items, f"the items of expand({name}=...)")}
    return {"literal": _literal(list(value), f"the values of expand({name}=...)")}


def expand_kwargs_source(value, task_id: str):
    """The dag.json map source for `.expand_kwargs(value)`."""
    if isinstance(value, XComArg):
        return _xcom_source(value)
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(f"expected XComArg or list[dict], not {type(value).__name__}")
    for item in value:
        if isinstance(item, XComArg) or any(True for _ in iter_xcom_args(item)):
            raise ValueError(
                f"expand_kwargs() of task '{task_id}' got task outputs inside its list; Leoflow maps over a literal "
                "list of dicts or over one task's output: build the list of dicts in a task and pass its output"
            )
        if not isinstance(item, dict):
            raise TypeError(f"expected XComArg or list[dict], not list[{type(item).__name__}]")
    return {"literal": _literal(list(value), "the dicts given to expand_kwargs()")}


def map_block(kind: str, value, task_id: str) -> dict:
    if kind == "expand":
        return {"expand": {name: expand_source(v, name, task_id) for name, v in value.items()}}
    return {"expand_kwargs": expand_kwargs_source(value, task_id)}


def map_names(kind: str, value):
    """The argument names a map block fills, or None when they are only known at run time."""
    if kind == "expand":
        return set(value)
    if isinstance(value, XComArg):
        return None
    return set().union(*(item.keys() for item in value)) if value else set()


def link_map_sources(task, value) -> None:
    for arg in iter_xcom_args(value):
        connect(arg.operator, task)


def prevent_duplicates(kwargs1, kwargs2, fail_reason: str) -> None:
    duplicated = set(kwargs1).intersection(kwargs2)
    if len(duplicated) == 1:
        raise TypeError(f"{fail_reason} argument: {duplicated.pop()}")
    if duplicated:
        raise TypeError(f"{fail_reason} arguments: {', '.join(sorted(duplicated))}")


class OperatorPartial:
    """`SomeOperator.partial(task_id=..., **fixed)`; call .expand() or .expand_kwargs() on it."""

    def __init__(self, operator_class, kwargs):
        if "task_id" not in kwargs:
            raise TypeError("partial() missing 1 required keyword-only argument: 'task_id'")
        accepted = init_param_names(operator_class) | {"dag", "task_group", "default_args", "params"}
        unknown = [name for name in kwargs if name not in accepted]
        if len(unknown) == 1:
            raise TypeError(f"partial() got an unexpected keyword argument {unknown[0]!r}")
        if unknown:
            raise TypeError(f"partial() got unexpected keyword arguments {', '.join(repr(n) for n in unknown)}")
        self.operator_class = operator_class
        self.kwargs = dict(kwargs)

    def expand(self, **mapped_kwargs):
        if not mapped_kwargs:
            raise TypeError("no arguments to expand against")
        accepted = init_param_names(self.operator_class)
        for name in mapped_kwargs:
            if name not in accepted:
                raise TypeError(f"expand() got an unexpected keyword argument {name!r}")
            if name in BASE_OPERATOR_PARAMS:
                raise UnsupportedFeature(
                    f"mapping over the task setting {name!r}",
                    "map over the operator's own arguments; set task settings such as retries in partial()",
                )
        prevent_duplicates(self.kwargs, mapped_kwargs, "unmappable or already specified")
        return self._create("expand", mapped_kwargs)

    def expand_kwargs(self, kwargs, *, strict: bool = True):
        return self._create("expand_kwargs", kwargs)

    def _create(self, kind, value):
        base = {k: v for k, v in self.kwargs.items() if k in BASE_OPERATOR_PARAMS}
        specific = {k: v for k, v in self.kwargs.items() if k not in BASE_OPERATOR_PARAMS}
        return MappedOperator(
            operator_class=self.operator_class, operator_kwargs=specific, map_kind=kind, map_value=value, **base
        )


class MappedOperator(BaseOperator):
    """A classic operator mapped over values; the runtime builds one operator per element with unmap()."""

    def __init__(self, *, operator_class, operator_kwargs, map_kind, map_value, **kwargs):
        super().__init__(**kwargs)
        self.operator_class = operator_class
        self.partial_kwargs = operator_kwargs
        self.template_fields = operator_class.template_fields
        self._leoflow_base_kwargs = {k: v for k, v in kwargs.items() if k not in ("dag", "task_group")}
        self._leoflow_map = map_block(map_kind, map_value, self.task_id)
        self._leoflow_map_names = map_names(map_kind, map_value)
        self._leoflow_map_input = (map_kind, map_value)
        link_map_sources(self, map_value)

    @property
    def operator_name(self) -> str:
        cls = self.operator_class
        return getattr(cls, "custom_operator_name", None) or cls.__name__

    def _leoflow_link_xcom_args(self) -> None:
        upstream = self._leoflow_upstream
        for field in self.template_fields:
            for arg in iter_xcom_args(self.partial_kwargs.get(field)):
                if upstream.get(arg.operator.task_id) is not arg.operator:
                    connect(arg.operator, self)

    def _leoflow_inputs(self):
        from .operators.python import CallableTaskMixin, callable_inputs
        from .xcom import encode_input

        kw = self.partial_kwargs
        if issubclass(self.operator_class, CallableTaskMixin):
            return callable_inputs(
                self.task_id, kw["python_callable"], kw.get("op_args") or (), kw.get("op_kwargs") or {}, partial=True
            )
        xcom_input = {}
        for field in self.template_fields:
            value = kw.get(field)
            if any(True for _ in iter_xcom_args(value)):
                xcom_input[field] = encode_input(value, f"argument '{field}' of task '{self.task_id}'")[1]
        return xcom_input, {}

    def _leoflow_spec(self, fileloc):
        return mapped_spec(self, fileloc)

    def unmap(self, mapped_kwargs: dict):
        """One real operator for a map instance (used by the runtime, never registered in the DAG)."""
        base = {k: v for k, v in self._leoflow_base_kwargs.items() if k != "task_id"}
        return self.operator_class(
            task_id=self.task_id, _leoflow_detached=True, **base, **self.partial_kwargs, **mapped_kwargs
        )


def mapped_spec(mapped: MappedOperator, fileloc: str) -> dict:
    """dag.json type-specific fields of a mapped classic operator, from its class and partial arguments."""
    from .operators.bash import DEFAULT_SKIP_EXIT_CODE, SCRIPT_EXTENSIONS, BashOperator, _plain_env
    from .operators.empty import EmptyOperator
    from .operators.http import HttpOperator
    from .operators.python import ShortCircuitOperator
    from .operators.sensors import BaseSensorOperator

    cls = mapped.operator_class
    kw = mapped.partial_kwargs
    names = mapped._leoflow_map_names
    python = {"type": "python", "entrypoint": f"{fileloc}:{mapped.task_id}"}
    if issubclass(cls, HttpOperator):
        raise UnsupportedFeature(
            f"mapping an HttpOperator (task '{mapped.task_id}')",
            "map a @task that makes the request with urllib (or requests, declared under `dependencies`)",
        )
    if issubclass(cls, EmptyOperator) and cls.execute is EmptyOperator.execute:
        return {"type": "empty"}
    if issubclass(cls, BashOperator) and cls.execute is BashOperator.execute:
        # A "bash" task needs its command as the entrypoint, so only mapping over env stays native; a mapped
        # command runs as Python (the shim's BashOperator.execute on each unmapped instance).
        command = kw.get("bash_command")
        native = (
            names is not None
            and names <= {"env"}
            and isinstance(command, str)
            and not command.endswith(SCRIPT_EXTENSIONS)
            and kw.get("cwd") is None
            and kw.get("output_processor") is None
            and kw.get("skip_on_exit_code", DEFAULT_SKIP_EXIT_CODE) == DEFAULT_SKIP_EXIT_CODE
            and _plain_env(kw.get("env"))
        )
        if native:
            spec = {"type": "bash", "entrypoint": command}
            if kw.get("env"):
                spec["env"] = dict(kw["env"])
            return spec
        return python
    if cls._leoflow_branch:
        python["branch"] = cls._leoflow_branch
    if issubclass(cls, ShortCircuitOperator):
        python["ignore_downstream_trigger_rules"] = bool(kw.get("ignore_downstream_trigger_rules", True))
    if issubclass(cls, BaseSensorOperator):
        python["sensor"] = {
            "poke_interval_seconds": to_seconds(kw.get("poke_interval", 60), "poke_interval"),
            "timeout_seconds": to_seconds(kw.get("timeout", 60 * 60 * 24 * 7), "timeout"),
            "mode": kw.get("mode", "poke"),
            "soft_fail": bool(kw.get("soft_fail", False)),
            "exponential_backoff": bool(kw.get("exponential_backoff", False)),
        }
    return python
