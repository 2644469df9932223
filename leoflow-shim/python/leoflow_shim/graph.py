"""Graph checks over a DAG's tasks: cycle detection (with the cycle's path) and ancestor sets."""

from __future__ import annotations


def find_cycle(task_dict: dict):
    """The task ids of one cycle as a closed path [a, b, ..., a], or None. Iterative DFS, O(tasks + edges)."""
    done: set = set()
    for start in sorted(task_dict):
        if start in done:
            continue
        path = [start]
        position = {start: 0}
        iterators = [iter(sorted(task_dict[start]._leoflow_downstream))]
        while iterators:
            nxt = next(iterators[-1], None)
            if nxt is None:
                finished = path.pop()
                del position[finished]
                done.add(finished)
                iterators.pop()
                continue
            if nxt in position:
                return path[position[nxt] :] + [nxt]
            if nxt in done:
                continue
            position[nxt] = len(path)
            path.append(nxt)
            iterators.append(iter(sorted(task_dict[nxt]._leoflow_downstream)))
    return None


def ancestors(task) -> set:
    """Ids of every task upstream of `task`, directly or transitively."""
    seen: set = set()
    frontier = list(task._leoflow_upstream.values())
    while frontier:
        current = frontier.pop()
        if current.task_id in seen:
            continue
        seen.add(current.task_id)
        frontier.extend(current._leoflow_upstream.values())
    return seen
