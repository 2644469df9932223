"""XComArg (a task's future output) and how task arguments become dag.json `xcom_input` / `call_args` / map sources."""

from __future__ import annotations

from .dependencies import DependencyMixin
from .errors import UnsupportedFeature
from .jsonvalues import NotJSON, to_json
from .notset import NOTSET

XCOM_RETURN_KEY = "return_value"


class XComArg(DependencyMixin):
    """Reference to an XCom pushed by `operator` under `key`, usable as a task argument or in `>>`."""

    def __init__(self, operator, key: str = XCOM_RETURN_KEY):
        self.operator = operator
        self.key = key

    @property
    def roots(self) -> list:
        return [self.operator]

    @property
    def leaves(self) -> list:
        return [self.operator]

    def __getitem__(self, key: str) -> XComArg:
        if not isinstance(key, str):
            raise TypeError(f"XCom keys are strings; got {key!r} for the output of task '{self.operator.task_id}'")
        return XComArg(self.operator, key)

    def __iter__(self):
        raise TypeError(
            f"the output of task '{self.operator.task_id}' is not known while the DAG file is parsed, so it cannot be "
            "iterated; pass it to a task, or map over it with .expand()"
        )

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        parts = [f"task_ids='{self.operator.task_id}'", f"dag_id='{self.operator.dag_id}'"]
        if self.key is not None:
            parts.append(f"key='{self.key}'")
        return "{{ task_instance.xcom_pull(" + ", ".join(parts) + ") }}"

    def __repr__(self) -> str:
        return f"XComArg({self.operator!r}, key={self.key!r})"

    def iter_references(self):
        yield self.operator, self.key

    def resolve(self, context):
        """The pushed value, pulled through the runtime's task instance (`context["ti"]`)."""
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)

    # Setup / teardown, forwarded to the producing task.
    @property
    def is_setup(self) -> bool:
        return self.operator.is_setup

    @is_setup.setter
    def is_setup(self, value: bool) -> None:
        self.operator.is_setup = value

    @property
    def is_teardown(self) -> bool:
        return self.operator.is_teardown

    @is_teardown.setter
    def is_teardown(self, value: bool) -> None:
        self.operator.is_teardown = value

    @property
    def on_failure_fail_dagrun(self) -> bool:
        return self.operator.on_failure_fail_dagrun

    @on_failure_fail_dagrun.setter
    def on_failure_fail_dagrun(self, value: bool) -> None:
        self.operator.on_failure_fail_dagrun = value

    def as_setup(self):
        self.operator.as_setup()
        return self

    def as_teardown(self, *, setups=NOTSET, on_failure_fail_dagrun=NOTSET):
        self.operator.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self):
        return self.operator.__enter__()

    def __exit__(self, exc_type, exc, tb):
        return self.operator.__exit__(exc_type, exc, tb)

    # XComArg transformations run code on XCom values between tasks; dag.json has no place for that code.
    def map(self, f):
        raise UnsupportedFeature(
            "XComArg.map()", "transform the values inside a task, then map over that task's output"
        )

    def zip(self, *others, fillvalue=NOTSET):
        raise UnsupportedFeature("XComArg.zip()", "zip the lists inside a task, then map over that task's output")

    def concat(self, *others):
        raise UnsupportedFeature("XComArg.concat()", "concatenate the lists inside a task, then map over its output")

    def __hash__(self):
        return id(self)


PlainXComArg = XComArg


def iter_xcom_args(value):
    """Every XComArg inside `value`, looking through lists, tuples, sets and dict values (as Airflow does)."""
    if isinstance(value, XComArg):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from iter_xcom_args(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_xcom_args(item)


def xcom_ref(arg: XComArg):
    """dag.json's reference to an XCom: "task" for return_value, else {"task_id", "key"}."""
    if arg.key == XCOM_RETURN_KEY or arg.key is None:
        return arg.operator.task_id
    return {"task_id": arg.operator.task_id, "key": arg.key}


def _mixing_error(what: str) -> ValueError:
    return ValueError(
        f"{what} mixes task outputs (XComArgs) with literal values or nests them; dag.json can bind a task output, a "
        "list of task outputs or a dict of task outputs to one parameter. Pass the literals as separate arguments, "
        "or build the combined value inside a task"
    )


def encode_input(value, what: str):
    """("xcom", reference) | ("literal", JSON) | ("opaque", None) for one argument value.

    "opaque" values (DAG params, objects without a JSON form) are left to the runtime, which re-imports the DAG
    file and reads them from the task object itself.
    """
    if isinstance(value, XComArg):
        return "xcom", xcom_ref(value)
    has_xcom = any(True for _ in iter_xcom_args(value))
    if not has_xcom:
        try:
            return "literal", to_json(value)
        except NotJSON:
            return "opaque", None
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, XComArg) for item in value):
            return "xcom", [xcom_ref(item) for item in value]
        raise _mixing_error(what)
    if isinstance(value, dict):
        if all(isinstance(item, XComArg) for item in value.values()) and all(isinstance(k, str) for k in value):
            return "xcom", {"dict": {k: xcom_ref(item) for k, item in value.items()}}
        raise _mixing_error(what)
    raise _mixing_error(what)


def refs_in(encoded) -> list:
    """Task ids referenced by an encoded xcom_input value or map source."""
    if isinstance(encoded, str):
        return [encoded]
    if isinstance(encoded, list):
        return [r if isinstance(r, str) else r["task_id"] for r in encoded]
    if isinstance(encoded, dict):
        if "dict" in encoded:
            return [r if isinstance(r, str) else r["task_id"] for r in encoded["dict"].values()]
        if "task_id" in encoded:
            return [encoded["task_id"]]
    return []
