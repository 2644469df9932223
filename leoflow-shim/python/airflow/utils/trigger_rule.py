"""`airflow.utils.trigger_rule`: the TriggerRule enum."""

from __future__ import annotations

from leoflow_shim.trigger_rule import TriggerRule

__all__ = ["TriggerRule"]
