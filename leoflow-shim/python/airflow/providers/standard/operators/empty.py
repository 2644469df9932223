"""`airflow.providers.standard.operators.empty`: EmptyOperator."""

from __future__ import annotations

from leoflow_shim.operators.empty import EmptyOperator

__all__ = ["EmptyOperator"]
