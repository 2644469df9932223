"""`airflow.macros`: the template macros (ds_add, ds_format, datetime, timedelta...) for use in task code."""

from __future__ import annotations

from leoflow_shim.macros import datetime, dateutil, ds_add, ds_format, json, random, time, timedelta, uuid

__all__ = ["dateutil", "datetime", "ds_add", "ds_format", "json", "random", "time", "timedelta", "uuid"]
