"""`airflow.utils.dates`: days_ago (removed in Airflow 3, kept for old DAGs)."""

from __future__ import annotations

import datetime as _dt


def days_ago(n, hour=0, minute=0, second=0, microsecond=0):
    """Midnight UTC today minus `n` days (the date changes every day, so pin start_date where you can)."""
    today = _dt.datetime.now(_dt.timezone.utc).replace(hour=hour, minute=minute, second=second, microsecond=microsecond)
    return today - _dt.timedelta(days=n)
