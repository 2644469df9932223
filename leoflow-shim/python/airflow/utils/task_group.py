"""`airflow.utils.task_group`: TaskGroup."""

from __future__ import annotations

from leoflow_shim.taskgroup import TaskGroup

__all__ = ["TaskGroup"]
