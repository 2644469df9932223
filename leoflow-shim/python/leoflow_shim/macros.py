"""Airflow's template macros (`{{ macros.ds_add(ds, 1) }}`, `from airflow.macros import ds_add`).

Like `airflow.macros`, the module also exposes `datetime`, `timedelta`, `json`, `time`, `uuid` and `random` (the
function), and `dateutil` when it is installed.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from random import random

try:  # optional, as in Airflow's image
    import dateutil
except ImportError:  # pragma: no cover - depends on the image
    dateutil = None

__all__ = ["dateutil", "datetime", "ds_add", "ds_format", "json", "random", "time", "timedelta", "uuid"]


def ds_add(ds: str, days: int) -> str:
    """Add or subtract days from a YYYY-MM-DD date: ds_add("2015-01-01", 5) is "2015-01-06"."""
    if not days:
        return str(ds)
    value = datetime.strptime(str(ds), "%Y-%m-%d") + timedelta(days=days)
    return value.strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Re-format a date string: ds_format("2015-01-01", "%Y-%m-%d", "%m-%d-%y") is "01-01-15"."""
    return datetime.strptime(str(ds), input_format).strftime(output_format)
