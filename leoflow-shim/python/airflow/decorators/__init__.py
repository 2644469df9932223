"""Airflow 2 decorator path (`airflow.decorators`): dag, task, task_group, setup, teardown."""

from __future__ import annotations

from leoflow_shim.dag import dag
from leoflow_shim.taskflow import setup, task, teardown
from leoflow_shim.taskgroup import task_group

__all__ = ["dag", "task", "task_group", "setup", "teardown"]
