"""Task dependencies: `>>`/`<<`, set_upstream/set_downstream, lists, edge labels, chain, chain_linear, cross_downstream.

Every dependency-capable object (operator, XComArg, TaskGroup) exposes `roots` and `leaves`; an edge from
A to B links every leaf of A to every root of B, evaluated at the time of the call, as in Airflow.
"""

from __future__ import annotations

from . import scope


class DependencyMixin:
    """`>>`, `<<` and set_upstream/set_downstream for anything with `roots` and `leaves`."""

    @property
    def roots(self) -> list:
        raise NotImplementedError

    @property
    def leaves(self) -> list:
        raise NotImplementedError

    def set_upstream(self, other, edge_modifier=None):
        connect(other, self)

    def set_downstream(self, other, edge_modifier=None):
        connect(self, other)

    def update_relative(self, other, upstream: bool = True, edge_modifier=None) -> None:
        """Hook for TaskGroup bookkeeping; plain tasks need nothing."""

    def __rshift__(self, other):
        connect(self, other)
        return other

    def __lshift__(self, other):
        connect(other, self)
        return other

    def __rrshift__(self, other):
        # [a, b] >> self
        connect(other, self)
        return self

    def __rlshift__(self, other):
        # [a, b] << self
        connect(self, other)
        return self


class EdgeModifier(DependencyMixin):
    """An edge label (`a >> Label("yes") >> b`). Labels only decorate Airflow's graph view; Leoflow keeps the edges."""

    def __init__(self, label=None):
        self.label = label
        self._upstream: list = []
        self._downstream: list = []

    @property
    def roots(self) -> list:
        return list(self._downstream)

    @property
    def leaves(self) -> list:
        return list(self._upstream)

    def __repr__(self) -> str:
        return f"Label({self.label!r})"


def Label(label: str) -> EdgeModifier:  # noqa: N802 - Airflow's spelling
    """Create an EdgeModifier that sets a human-readable label on the edge."""
    return EdgeModifier(label)


def _expand(obj, side: str) -> list:
    """The operators at one side of `obj`: its leaves ("leaves") or roots ("roots")."""
    if isinstance(obj, DependencyMixin):
        return list(getattr(obj, side))
    if isinstance(obj, (list, tuple, set, frozenset)):
        out = []
        for item in obj:
            if isinstance(item, EdgeModifier) or not isinstance(item, DependencyMixin):
                raise TypeError(
                    "Relationships can only be set between operators, task outputs (XComArg) and task groups; "
                    f"received {type(item).__name__} inside a {type(obj).__name__}"
                )
            out.extend(getattr(item, side))
        return out
    raise TypeError(
        "Relationships can only be set between operators, task outputs (XComArg) and task groups; "
        f"received {type(obj).__name__}"
    )


def connect(upstream, downstream) -> None:
    """Make every leaf of `upstream` a direct upstream of every root of `downstream`."""
    if isinstance(downstream, EdgeModifier):
        leaves = _expand(upstream, "leaves")
        downstream._upstream.extend(leaves)
        _link(leaves, downstream._downstream)
        return
    if isinstance(upstream, EdgeModifier):
        roots = _expand(downstream, "roots")
        upstream._downstream.extend(roots)
        _link(upstream._upstream, roots)
        return
    from .taskgroup import TaskGroup

    leaves = _expand(upstream, "leaves")
    roots = _expand(downstream, "roots")
    if isinstance(downstream, TaskGroup):
        downstream.upstream_task_ids.update(t.task_id for t in leaves)
    if isinstance(upstream, TaskGroup):
        upstream.downstream_task_ids.update(t.task_id for t in roots)
    _link(leaves, roots)


def _link(ups, downs) -> None:
    if not ups or not downs:
        return
    dag = _common_dag(ups, downs)
    line = scope.user_line()
    edge_lines = dag._leoflow_edge_lines
    for up in ups:
        downstream = up._leoflow_downstream
        for down in downs:
            down_id = down.task_id
            if downstream.get(down_id) is down:
                continue
            downstream[down_id] = down
            down._leoflow_upstream[up.task_id] = up
            edge_lines.setdefault((up.task_id, down_id), line)


def _common_dag(ups, downs):
    """The DAG all these tasks belong to; tasks without a DAG join it, as in Airflow."""
    dag = None
    for task in (*ups, *downs):
        if task.dag is not None:
            if dag is None:
                dag = task.dag
            elif task.dag is not dag:
                _raise_cross_dag(ups, downs)
    if dag is None:
        raise ValueError(
            "Tried to create relationships between tasks that don't have DAGs yet. Set the DAG for at least one "
            f"task and try again: {[t.task_id for t in (*ups, *downs)]}"
        )
    for task in (*ups, *downs):
        if task.dag is None:
            dag.add_task(task)
    return dag


def _raise_cross_dag(ups, downs):
    for up in ups:
        for down in downs:
            if up.dag is not None and down.dag is not None and up.dag is not down.dag:
                raise RuntimeError(
                    f"cannot make task '{up.task_id}' (DAG '{up.dag.dag_id}') upstream of task '{down.task_id}' "
                    f"(DAG '{down.dag.dag_id}'): tasks of different DAGs cannot depend on each other or pass "
                    "XComs; trigger the other DAG with TriggerDagRunOperator instead"
                )
    raise RuntimeError("Tried to set relationships between tasks in more than one DAG")


def chain(*tasks) -> None:
    """Airflow's chain(): consecutive elements are linked; two lists of equal length are linked pairwise."""
    for up, down in zip(tasks, tasks[1:]):
        if isinstance(up, DependencyMixin):
            up.set_downstream(down)
            continue
        if isinstance(down, DependencyMixin):
            down.set_upstream(up)
            continue
        if not isinstance(up, (list, tuple)) or not isinstance(down, (list, tuple)):
            raise TypeError(f"Chain not supported between instances of {type(up)} and {type(down)}")
        if len(up) != len(down):
            from .exceptions import AirflowException

            raise AirflowException(f"Chain not supported for different length Iterable. Got {len(up)} and {len(down)}.")
        for up_task, down_task in zip(up, down):
            up_task.set_downstream(down_task)


def chain_linear(*elements) -> None:
    """Airflow's chain_linear(): every task of an element is upstream of every task of the next one."""
    if not elements:
        raise ValueError("No tasks provided; nothing to do.")
    previous = None
    deps_set = False
    for current in elements:
        if isinstance(current, EdgeModifier):
            raise ValueError("Labels are not supported by chain_linear")
        if previous is not None:
            for task in previous:
                task >> current
                deps_set = True
        previous = [current] if isinstance(current, DependencyMixin) else current
    if not deps_set:
        raise ValueError("No dependencies were set. Did you forget to expand with `*`?")


def cross_downstream(from_tasks, to_tasks) -> None:
    """Every task of `from_tasks` becomes upstream of every task of `to_tasks`."""
    for task in from_tasks:
        task.set_downstream(to_tasks)
