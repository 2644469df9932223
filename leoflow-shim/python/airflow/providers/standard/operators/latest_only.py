"""`airflow.providers.standard.operators.latest_only`: LatestOnlyOperator."""

from __future__ import annotations

from leoflow_shim.operators.empty import LatestOnlyOperator

__all__ = ["LatestOnlyOperator"]
