"""`airflow.providers.standard.sensors.python`: PythonSensor."""

from __future__ import annotations

from leoflow_shim.operators.sensors import PythonSensor

__all__ = ["PythonSensor"]
