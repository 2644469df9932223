"""`airflow.providers.standard.sensors.bash`: BashSensor."""

from __future__ import annotations

from leoflow_shim.operators.sensors import BashSensor

__all__ = ["BashSensor"]
