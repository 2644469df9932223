"""TaskGroup (context manager, nested groups, `group.task` ids) and the @task_group decorator."""

from __future__ import annotations

import functools
import re

from . import scope
from .dependencies import DependencyMixin
from .errors import UnsupportedFeature
from .exceptions import DuplicateTaskIdFound
from .keys import plain, validate_group_key


class TaskGroup(DependencyMixin):
    """A collection of tasks shown together; ids of its tasks are prefixed with the group id by default."""

    def __init__(
        self,
        group_id,
        prefix_group_id: bool = True,
        parent_group=None,
        dag=None,
        default_args=None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
        group_display_name: str = "",
        _root: bool = False,
    ):
        self.prefix_group_id = prefix_group_id
        self.tooltip = tooltip
        self.ui_color = ui_color
        self.ui_fgcolor = ui_fgcolor
        self.group_display_name = group_display_name
        self.children: dict = {}
        self.upstream_task_ids: set = set()
        self.downstream_task_ids: set = set()
        self._leoflow_line = scope.user_line()
        if _root:
            self._group_id = None
            self.parent_group = None
            self.dag = dag
            self.default_args = {}
            self.used_group_ids: set = set()
            return
        group_id = plain(group_id)
        validate_group_key(group_id)
        if parent_group is None:
            parent_group = scope.innermost_group()
            if parent_group is not None and dag is not None and parent_group.dag is not dag:
                parent_group = None
        if dag is None:
            dag = parent_group.dag if parent_group is not None else scope.current_dag()
        if dag is None:
            raise RuntimeError("TaskGroup can only be used inside a dag")
        if parent_group is None:
            parent_group = dag.task_group
        self._group_id = group_id
        self.parent_group = parent_group
        self.dag = dag
        self.used_group_ids = dag.task_group.used_group_ids
        self.default_args = {**parent_group.default_args, **(default_args or {})}
        self._check_for_group_id_collisions(add_suffix_on_collision)
        parent_group.add(self)
        full_id = self.group_id
        self.used_group_ids.add(full_id)
        self.used_group_ids.add(f"{full_id}.downstream_join_id")
        self.used_group_ids.add(f"{full_id}.upstream_join_id")

    @classmethod
    def create_root(cls, dag) -> TaskGroup:
        return cls(None, dag=dag, _root=True)

    def _check_for_group_id_collisions(self, add_suffix_on_collision: bool) -> None:
        if self.group_id not in self.used_group_ids:
            return
        if not add_suffix_on_collision:
            raise DuplicateTaskIdFound(f"group_id '{self._group_id}' has already been added to the DAG")
        base = re.split(r"__\d+$", self._group_id)[0]
        pattern = re.compile(rf"^{re.escape(base)}__(\d+)$")
        suffixes = sorted(
            int(m.group(1)) for used in self.used_group_ids if used is not None for m in [pattern.match(used)] if m
        )
        if not suffixes:
            self._group_id += "__1"
        else:
            self._group_id = f"{base}__{suffixes[-1] + 1}"

    # -- ids ---------------------------------------------------------------------------------------

    @property
    def group_id(self):
        parent = self.parent_group
        if self._group_id and parent is not None and parent.prefix_group_id and parent._group_id:
            return parent.child_id(self._group_id)
        return self._group_id

    @property
    def node_id(self):
        return self.group_id

    @property
    def label(self):
        return self.group_display_name or self._group_id

    @property
    def is_root(self) -> bool:
        return not self._group_id

    def child_id(self, label: str) -> str:
        if self.prefix_group_id:
            group_id = self.group_id
            if group_id:
                return f"{group_id}.{label}"
        return label

    @property
    def task_group(self):
        return self.parent_group

    # -- membership --------------------------------------------------------------------------------

    def add(self, node):
        key = node.node_id
        if key in self.children:
            kind = "Task" if hasattr(node, "task_id") else "Task Group"
            raise DuplicateTaskIdFound(f"{kind} id '{key}' has already been added to the DAG")
        self.children[key] = node
        if hasattr(node, "task_id"):
            node.task_group = self
        return node

    def __iter__(self):
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child
            else:
                yield child

    def has_task(self, task) -> bool:
        return any(t is task for t in self)

    def get_task_group_dict(self) -> dict:
        out = {self.group_id: self}
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                out.update(child.get_task_group_dict())
        return out

    def get_child_by_label(self, label: str):
        return self.children[self.child_id(label)]

    def __getitem__(self, label: str):
        return self.get_child_by_label(label)

    # -- dependencies (Airflow's get_roots / get_leaves, evaluated when `>>` runs) -------------------

    def get_roots(self):
        tasks = list(self)
        ids = {t.task_id for t in tasks}
        for task in tasks:
            if ids.isdisjoint(task._leoflow_upstream):
                yield task

    def get_leaves(self):
        tasks = list(self)
        ids = {t.task_id for t in tasks}

        def has_non_teardown_downstream(task, exclude):
            for down in task._leoflow_downstream.values():
                if down.task_id == exclude or down.task_id not in ids:
                    continue
                if not down.is_teardown:
                    return True
            return False

        def first_non_teardown(task):
            for up in task._leoflow_upstream.values():
                if up.task_id not in ids:
                    continue
                if up.is_teardown:
                    yield from first_non_teardown(up)
                elif task.is_teardown and up.is_setup:
                    continue
                elif not has_non_teardown_downstream(up, exclude=task.task_id):
                    yield up

        for task in tasks:
            if ids.isdisjoint(task._leoflow_downstream):
                if not task.is_teardown:
                    yield task
                else:
                    yield from first_non_teardown(task)

    @property
    def roots(self) -> list:
        return list(self.get_roots())

    @property
    def leaves(self) -> list:
        # Airflow's find_leaves: an empty group stands in with its upstream tasks, then its parent's leaves.
        group = self
        while group is not None:
            leaves = list(group.get_leaves())
            if leaves:
                return leaves
            if group.upstream_task_ids:
                return [group.dag.task_dict[t] for t in group.upstream_task_ids if t in group.dag.task_dict]
            group = group.parent_group
        return []

    # -- context manager ----------------------------------------------------------------------------

    def __enter__(self):
        scope.current().group_stack.append(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        stack = scope.current().group_stack
        if stack and stack[-1] is self:
            stack.pop()

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"

    def __hash__(self):
        return id(self)


class TaskGroupFactory:
    """What @task_group returns: calling it creates a TaskGroup (suffixed on repeated calls) and runs the function."""

    def __init__(self, function, tg_kwargs=None):
        self.function = function
        self.tg_kwargs = dict(tg_kwargs or {})
        self.tg_kwargs.setdefault("group_id", function.__name__)
        functools.update_wrapper(self, function)

    def override(self, **kwargs) -> TaskGroupFactory:
        return TaskGroupFactory(self.function, {**self.tg_kwargs, **kwargs})

    def __call__(self, *args, **kwargs):
        with TaskGroup(add_suffix_on_collision=True, **self.tg_kwargs) as group:
            if self.function.__doc__ and not group.tooltip:
                group.tooltip = self.function.__doc__
            result = self.function(*args, **kwargs)
        if result is not None:
            return result
        return group

    def expand(self, **kwargs):
        raise UnsupportedFeature(
            "mapped task groups (@task_group ... .expand())",
            "map the tasks inside the group with .expand() instead, or make the group's work one mapped @task",
        )

    def expand_kwargs(self, kwargs):
        return self.expand()

    def partial(self, **kwargs):
        return self.expand()


def task_group(group_id=None, **tg_kwargs):
    """Python TaskGroup decorator: `@task_group` or `@task_group(group_id=..., prefix_group_id=..., ...)`."""
    if callable(group_id) and not isinstance(group_id, str):
        return TaskGroupFactory(group_id, tg_kwargs)
    if group_id is not None:
        tg_kwargs["group_id"] = group_id

    def wrapper(function):
        return TaskGroupFactory(function, tg_kwargs)

    return wrapper
