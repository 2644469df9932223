"""Parse-time state: the DAG file being imported, the active DAG / TaskGroup / setup-teardown stacks, and the DAGs made.

One ParseScope exists per imported file, so nothing leaks from one DAG file into the next.
"""

from __future__ import annotations

import sys


class ParseScope:
    """Everything the shim tracks while one DAG file executes."""

    def __init__(self, path=None, mode: str = "compile"):
        # Absolute path of the executing DAG file: frames from this file carry the user's line numbers.
        self.path = path
        # "compile" (ahead of time, no task runs) or "run" (the runtime re-imports the file to run a task).
        self.mode = mode
        self.dag_stack: list = []
        self.group_stack: list = []
        self.setup_teardown_stack: list = []
        # DAGs that left a `with` block with auto_register=True (Airflow 3 DagBag collects these too).
        self.registered_dags: list = []
        self.dag_count = 0


_scope = ParseScope()


def current() -> ParseScope:
    return _scope


def begin(path, mode: str = "compile") -> ParseScope:
    """Start a fresh scope for the DAG file at `path` and return it."""
    global _scope
    _scope = ParseScope(path, mode)
    return _scope


def end() -> None:
    """Drop the file's scope (its DAG objects stay alive only where the caller keeps them)."""
    global _scope
    _scope = ParseScope()


def current_dag():
    stack = _scope.dag_stack
    return stack[-1] if stack else None


def current_group(dag):
    """The innermost active TaskGroup of `dag`, else the DAG's root group."""
    for group in reversed(_scope.group_stack):
        if group.dag is dag:
            return group
    return dag.task_group if dag is not None else None


def innermost_group():
    stack = _scope.group_stack
    return stack[-1] if stack else None


def user_line():
    """Line in the DAG file of the innermost frame executing it, or None when called from elsewhere."""
    path = _scope.path
    if path is None:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == path:
            return frame.f_lineno
        frame = frame.f_back
    return None
