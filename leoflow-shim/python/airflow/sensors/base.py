"""`airflow.sensors.base`: BaseSensorOperator and PokeReturnValue."""

from __future__ import annotations

from leoflow_shim.operators.sensors import BaseSensorOperator, PokeReturnValue

__all__ = ["BaseSensorOperator", "PokeReturnValue"]
