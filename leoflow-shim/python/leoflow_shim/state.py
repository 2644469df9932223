"""Run and task-instance state names (DagRunState, TaskInstanceState, State), as DAG files reference them."""

from __future__ import annotations

from enum import Enum


class DagRunState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class TaskInstanceState(str, Enum):
    REMOVED = "removed"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    RESTARTING = "restarting"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    DEFERRED = "deferred"

    def __str__(self) -> str:
        return self.value


class State:
    """Airflow 2's State constants."""

    SUCCESS = TaskInstanceState.SUCCESS
    FAILED = TaskInstanceState.FAILED
    SKIPPED = TaskInstanceState.SKIPPED
    RUNNING = TaskInstanceState.RUNNING
    QUEUED = TaskInstanceState.QUEUED
    UPSTREAM_FAILED = TaskInstanceState.UPSTREAM_FAILED
    UP_FOR_RETRY = TaskInstanceState.UP_FOR_RETRY
    NONE = None
