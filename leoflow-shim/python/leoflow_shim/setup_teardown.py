"""`with setup_task >> teardown_task:` blocks: tasks created inside run after the setups and before the teardowns."""

from __future__ import annotations

from . import scope
from .dependencies import connect


class SetupTeardownBlock:
    """One active `with` block: its setup tasks, teardown tasks, and the tasks created inside it."""

    def __init__(self, setups: list, teardowns: list):
        self.setups = setups
        self.teardowns = teardowns
        self.tasks: list = []


def _nearest(task, direction: str, flag: str) -> list:
    """The closest tasks upstream ("up") or downstream ("down") of `task` that have `flag` set."""
    attr = "_leoflow_upstream" if direction == "up" else "_leoflow_downstream"
    frontier = list(getattr(task, attr).values())
    seen = {task.task_id}
    while frontier:
        found = [t for t in frontier if getattr(t, flag)]
        if found:
            return found
        next_frontier = []
        for t in frontier:
            if t.task_id in seen:
                continue
            seen.add(t.task_id)
            next_frontier.extend(getattr(t, attr).values())
        frontier = next_frontier
    return []


def enter_setup_teardown(operator) -> SetupTeardownBlock:
    if not operator.is_setup and not operator.is_teardown:
        raise RuntimeError("Only setup/teardown tasks can be used as context managers.")
    if operator.is_teardown:
        block = SetupTeardownBlock(_nearest(operator, "up", "is_setup"), [operator])
    else:
        block = SetupTeardownBlock([operator], _nearest(operator, "down", "is_teardown"))
    scope.current().setup_teardown_stack.append(block)
    return block


def exit_setup_teardown() -> None:
    stack = scope.current().setup_teardown_stack
    block = stack.pop()
    work = [t for t in block.tasks if not t.is_setup and not t.is_teardown]
    if work:
        roots = [t for t in work if not t._leoflow_upstream] or [work[0]]
        leaves = [t for t in work if not t._leoflow_downstream] or [work[-1]]
        for setup in block.setups:
            connect(setup, roots)
        for teardown in block.teardowns:
            connect(leaves, teardown)
    if stack:
        outer = stack[-1]
        for outer_setup in outer.setups:
            for inner_setup in block.setups:
                connect(outer_setup, inner_setup)
        for inner_teardown in block.teardowns:
            for outer_teardown in outer.teardowns:
                connect(inner_teardown, outer_teardown)
