"""`airflow.utils.timezone`: Airflow 2 path of the timezone helpers."""

from __future__ import annotations

from airflow.sdk.timezone import convert_to_utc, datetime, make_aware, parse, utc, utcnow  # noqa: F401
