"""The TriggerRule enum: exactly the twelve Airflow trigger rules dag.json accepts."""

from __future__ import annotations

from enum import Enum


class TriggerRule(str, Enum):
    """Class with task's trigger rules (Airflow's names and values)."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"

    @classmethod
    def is_valid(cls, trigger_rule) -> bool:
        return trigger_rule in cls.all_triggers()

    @classmethod
    def all_triggers(cls) -> set:
        return {rule.value for rule in cls}

    def __str__(self) -> str:
        return self.value


def coerce_trigger_rule(value, task_id: str, dag_id) -> TriggerRule:
    """Return the TriggerRule for `value`, raising with the list of valid rules when it is unknown."""
    try:
        return TriggerRule(value)
    except ValueError:
        valid = ", ".join(rule.value for rule in TriggerRule)
        where = f"task '{task_id}' of DAG '{dag_id}'" if dag_id else f"task '{task_id}'"
        raise ValueError(f"unknown trigger_rule {str(value)!r} on {where}; use one of: {valid}") from None
