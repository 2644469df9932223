"""Airflow's timezone helpers (`airflow.sdk.timezone`, `airflow.utils.timezone`)."""

from __future__ import annotations

import datetime as _dt

utc = _dt.timezone.utc


def datetime(*args, **kwargs):
    """A datetime that is UTC unless tzinfo is given (Airflow's timezone.datetime)."""
    kwargs.setdefault("tzinfo", utc)
    return _dt.datetime(*args, **kwargs)


def utcnow():
    return _dt.datetime.now(utc)


def convert_to_utc(value):
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=utc)
    return value.astimezone(utc)


def make_aware(value, timezone=None):
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone or utc)


def parse(string, timezone=None):
    text = string.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    value = _dt.datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone or utc)
