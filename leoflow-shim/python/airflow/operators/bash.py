"""`airflow.operators.bash`: BashOperator."""

from __future__ import annotations

from leoflow_shim.operators.bash import BashOperator

__all__ = ["BashOperator"]
