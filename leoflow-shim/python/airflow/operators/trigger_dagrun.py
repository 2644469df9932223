"""`airflow.operators.trigger_dagrun`: TriggerDagRunOperator."""

from __future__ import annotations

from leoflow_shim.operators.trigger_dagrun import TriggerDagRunOperator

__all__ = ["TriggerDagRunOperator"]
