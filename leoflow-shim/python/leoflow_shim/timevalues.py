"""Conversions of Airflow time values (datetimes, timedeltas, seconds) into dag.json's RFC 3339 strings and seconds."""

from __future__ import annotations

import datetime as _dt

UTC = _dt.timezone.utc


def to_seconds(value, what: str):
    """Seconds in a timedelta or a plain number, as an int when whole (dag.json numbers)."""
    if isinstance(value, _dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{what} must be a timedelta or a number of seconds, got {type(value).__name__}")
    return json_number(seconds)


def json_number(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def coerce_datetime(value, what: str):
    """A datetime from a datetime, a date or an ISO 8601 string (as Airflow's timezone.parse accepts)."""
    if value is None or isinstance(value, _dt.datetime):
        return value
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not an ISO 8601 date or datetime") from None
    raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")


def to_utc(value: _dt.datetime) -> _dt.datetime:
    """Naive datetimes are UTC (Airflow's default timezone); aware ones are converted."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def rfc3339(value: _dt.datetime) -> str:
    utc = to_utc(value)
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def timezone_name(tzinfo, at=None):
    """IANA name of a tzinfo (zoneinfo, pendulum or fixed whole-hour offsets), or None when it has none."""
    if tzinfo is None:
        return None
    for attr in ("key", "name", "zone"):
        name = getattr(tzinfo, attr, None)
        if isinstance(name, str) and name:
            return "UTC" if name in ("UTC", "Etc/UTC", "utc", "Z", "+00:00") else name
    offset = tzinfo.utcoffset(at)
    if offset is None:
        return None
    if offset == _dt.timedelta(0):
        return "UTC"
    seconds = int(offset.total_seconds())
    if seconds % 3600 == 0:
        hours = seconds // 3600
        # POSIX-style names invert the sign: UTC+2 is Etc/GMT-2.
        return f"Etc/GMT{-hours:+d}"
    return None
