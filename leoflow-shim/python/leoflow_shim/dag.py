"""The DAG object (context manager or plain object) and the @dag decorator."""

from __future__ import annotations

import functools
import inspect
import os
from datetime import timedelta

from . import scope
from .exceptions import DuplicateTaskIdFound, TaskNotFound
from .keys import plain, validate_key
from .notset import NOTSET
from .params import DagParam, ParamsDict
from .timetables import normalize_schedule
from .timevalues import coerce_datetime, timezone_name

TAG_MAX_LEN = 100

# DAG arguments Airflow 3 accepts that change nothing in dag.json; accepted and kept as attributes.
_ACCEPTED_KWARGS = frozenset(
    {
        "template_searchpath",
        "template_undefined",
        "user_defined_macros",
        "user_defined_filters",
        "max_consecutive_failed_dag_runs",
        "deadline",
        "sla_miss_callback",
        "on_success_callback",
        "on_failure_callback",
        "access_control",
        "is_paused_upon_creation",
        "jinja_environment_kwargs",
        "render_template_as_native_obj",
        "owner_links",
        "auto_register",
        "fail_fast",
        "dag_display_name",
        "disable_bundle_versioning",
    }
)

# Airflow 2 arguments removed in Airflow 3, with what to write instead.
_REMOVED_KWARGS = {
    "schedule_interval": "use schedule= (Airflow 3 removed schedule_interval)",
    "timetable": "pass the timetable as schedule= (Airflow 3 removed timetable=)",
    "concurrency": "use max_active_tasks= (Airflow 3 removed concurrency)",
    "full_filepath": "remove it (Airflow 3 removed full_filepath)",
    "default_view": "remove it (Airflow 3 removed default_view)",
    "orientation": "remove it (Airflow 3 removed orientation)",
}


def _positive_int(value, name: str):
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"'{name}' must be <class 'int'> (got {value!r} that is a {type(value)})")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 in Leoflow, got {value}")
    return value


class DAG:
    """A collection of tasks with directional dependencies (Airflow's DAG, structurally)."""

    def __init__(
        self,
        dag_id: str,
        *,
        description=None,
        schedule=None,
        start_date=None,
        end_date=None,
        default_args=None,
        max_active_tasks=None,
        max_active_runs=None,
        dagrun_timeout=None,
        catchup=None,
        doc_md=None,
        params=None,
        tags=None,
        **kwargs,
    ):
        for name in kwargs:
            if name in _REMOVED_KWARGS:
                raise TypeError(f"DAG.__init__() got an unexpected keyword argument '{name}': {_REMOVED_KWARGS[name]}")
            if name not in _ACCEPTED_KWARGS:
                raise TypeError(f"DAG.__init__() got an unexpected keyword argument '{name}'")
        dag_id = plain(dag_id)
        validate_key(dag_id, "dag_id")
        if description is not None and not isinstance(description, str):
            raise TypeError(f"'description' must be <class 'str'> (got {description!r})")
        if default_args is not None and not isinstance(default_args, dict):
            raise TypeError(f"'default_args' must be <class 'dict'> (got {default_args!r})")
        self.dag_id = dag_id
        self.description = description
        self.default_args = dict(default_args or {})
        if start_date is None and self.default_args.get("start_date"):
            start_date = self.default_args["start_date"]
        self.start_date = coerce_datetime(start_date, "start_date")
        self.end_date = coerce_datetime(end_date, "end_date")
        self.schedule = schedule
        self._leoflow_schedule, schedule_tz = normalize_schedule(schedule)
        self.timezone = (
            schedule_tz
            or (timezone_name(self.start_date.tzinfo, self.start_date) if self.start_date else None)
            or "UTC"
        )
        self.max_active_tasks = _positive_int(max_active_tasks, "max_active_tasks")
        self.max_active_runs = _positive_int(max_active_runs, "max_active_runs")
        if dagrun_timeout is not None and not isinstance(dagrun_timeout, timedelta):
            raise TypeError(f"'dagrun_timeout' must be <class 'datetime.timedelta'> (got {dagrun_timeout!r})")
        self.dagrun_timeout = dagrun_timeout
        self.catchup = bool(catchup) if catchup is not None else False
        schedulable = self._leoflow_schedule is not None
        if schedulable and self.catchup and self.start_date is None:
            raise ValueError("start_date is required when catchup=True")
        self.doc_md = _read_doc_md(doc_md)
        merged_params = dict(params or {})
        if "params" in self.default_args:
            merged_params.update(self.default_args.pop("params") or {})
        self.params = ParamsDict(merged_params)
        if schedulable:
            missing = [name for name in self.params if not self.params.get_param(name).has_value]
            if missing:
                raise ValueError(
                    f"Dag {dag_id!r} is not allowed to define a Schedule, as there are required params without "
                    f"default values, or the default values are not valid ({', '.join(missing)})."
                )
        tag_set = set(tags or [])
        for tag in tag_set:
            if not isinstance(tag, str):
                raise TypeError(f"tags must be strings, got {tag!r}")
            if len(tag) > TAG_MAX_LEN:
                raise ValueError(f"tag cannot be longer than {TAG_MAX_LEN} characters")
        self.tags = tag_set
        self.auto_register = bool(kwargs.get("auto_register", True))
        for name, value in kwargs.items():
            setattr(self, name, value)

        from .taskgroup import TaskGroup

        self.task_dict: dict = {}
        self.task_group = TaskGroup.create_root(self)
        self.fileloc = scope.current().path or ""
        self._leoflow_edge_lines: dict = {}
        self._leoflow_suffixes: dict = {}
        self._leoflow_line = scope.user_line()
        current = scope.current()
        current.dag_count += 1
        self._leoflow_seq = current.dag_count

    # -- context manager ----------------------------------------------------------------------------

    def __enter__(self):
        scope.current().dag_stack.append(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        current = scope.current()
        if current.dag_stack and current.dag_stack[-1] is self:
            current.dag_stack.pop()
        if self.auto_register and self not in current.registered_dags:
            current.registered_dags.append(self)

    # -- tasks -------------------------------------------------------------------------------------

    def add_task(self, task, task_group=None) -> None:
        if task.dag is not None and task.dag is not self:
            raise RuntimeError(f"task '{task.task_id}' already belongs to DAG '{task.dag.dag_id}'")
        task_id = task.task_id
        used = self.task_group.used_group_ids
        if (task_id in self.task_dict and self.task_dict[task_id] is not task) or task_id in used:
            raise DuplicateTaskIdFound(f"Task id '{task_id}' has already been added to the DAG")
        self.task_dict[task_id] = task
        used.add(task_id)
        task.dag = self
        group = task_group or task.task_group or self.task_group
        if task.task_group is None:
            group.add(task)
        base, _, digits = task_id.rpartition("__")
        if base and digits.isdigit():
            number = int(digits)
            if number > self._leoflow_suffixes.get(base, 0):
                self._leoflow_suffixes[base] = number

    def add_tasks(self, tasks) -> None:
        for task in tasks:
            self.add_task(task)

    def unique_task_id(self, task_id: str, task_group=None) -> str:
        """Airflow's get_unique_task_id: a TaskFlow id already in the DAG gets the next free __N suffix."""
        full_id = task_group.child_id(task_id) if task_group is not None else task_id
        if full_id not in self.task_dict:
            return task_id
        base = _strip_suffix(full_id)
        core = _strip_suffix(task_id)
        return f"{core}__{self._leoflow_suffixes.get(base, 0) + 1}"

    @property
    def tasks(self) -> list:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list:
        return list(self.task_dict)

    @property
    def roots(self) -> list:
        return [t for t in self.task_dict.values() if not t._leoflow_upstream]

    @property
    def leaves(self) -> list:
        return [t for t in self.task_dict.values() if not t._leoflow_downstream]

    def get_task(self, task_id: str):
        if task_id in self.task_dict:
            return self.task_dict[task_id]
        raise TaskNotFound(f"Task {task_id} not found")

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    @property
    def task_group_dict(self) -> dict:
        return {k: v for k, v in self.task_group.get_task_group_dict().items() if k is not None}

    def param(self, name: str, default=NOTSET) -> DagParam:
        return DagParam(current_dag=self, name=name, default=default)

    @property
    def owner(self) -> str:
        return self.default_args.get("owner", "airflow")

    @property
    def folder(self) -> str:
        return os.path.dirname(self.fileloc)

    @property
    def task(self):
        from .taskflow import task

        return functools.partial(task, dag=self)

    def validate(self) -> None:
        """Airflow calls this from the DagBag; the compiler runs the equivalent checks."""

    def test(self, *args, **kwargs):
        from .errors import UnsupportedFeature

        raise UnsupportedFeature("dag.test()", "run the DAG with `leoflow lite` instead")

    def cli(self):
        self.test()

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    def __hash__(self):
        return id(self)

    def __lt__(self, other):
        return self.dag_id < other.dag_id


def _strip_suffix(task_id: str) -> str:
    base, _, digits = task_id.rpartition("__")
    return base if base and digits.isdigit() else task_id


def _read_doc_md(doc_md):
    if isinstance(doc_md, str) and doc_md.endswith(".md"):
        path = doc_md
        if not os.path.isabs(path) and scope.current().path:
            path = os.path.join(os.path.dirname(scope.current().path), path)
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except OSError:
            return doc_md
    return doc_md


def dag(dag_id=None, **decorator_kwargs):
    """Python dag decorator: calling the decorated function builds the DAG; its arguments become DAG params."""
    if callable(dag_id) and not isinstance(dag_id, str):
        return _dag_factory(dag_id, None, {})
    if dag_id is not None and not isinstance(dag_id, str):
        raise TypeError(f"dag_id must be a string, got {type(dag_id).__name__}")

    def wrapper(func):
        return _dag_factory(func, dag_id or decorator_kwargs.pop("dag_id", None), decorator_kwargs)

    return wrapper


def _dag_factory(func, dag_id, decorator_kwargs):
    signature = inspect.signature(func)

    @functools.wraps(func)
    def factory(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with DAG(dag_id or func.__name__, **decorator_kwargs) as dag_obj:
            if func.__doc__ and not dag_obj.doc_md:
                dag_obj.doc_md = func.__doc__
            f_kwargs = {name: dag_obj.param(name, value) for name, value in bound.arguments.items()}
            func(**f_kwargs)
        return dag_obj

    return factory
