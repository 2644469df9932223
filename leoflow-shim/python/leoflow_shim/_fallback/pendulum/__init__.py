"""A tiny stand-in for `pendulum`, used only when the real package is not installed.

It covers what DAG files use at the top level (datetime, duration, timezone, now, today, yesterday, tomorrow,
parse, instance, from_timestamp) and returns standard datetimes/timedeltas with tzinfo set (zoneinfo zones).
"""

from __future__ import annotations

import datetime as _dt

try:
    import zoneinfo as _zoneinfo
except ImportError:  # pragma: no cover - Python < 3.9 is not supported
    _zoneinfo = None

__version__ = "0.0.0+leoflow-stand-in"

Duration = _dt.timedelta
Date = _dt.date
Time = _dt.time


class DateTime(_dt.datetime):
    """A datetime with the few pendulum helpers DAG files call (add, subtract, in_timezone, start_of)."""

    def add(self, years=0, months=0, weeks=0, days=0, hours=0, minutes=0, seconds=0, microseconds=0):
        result = self + _dt.timedelta(
            weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds, microseconds=microseconds
        )
        if years or months:
            total = result.month - 1 + months + 12 * years
            year, month = result.year + total // 12, total % 12 + 1
            result = result.replace(year=year, month=month)
        return result

    def subtract(self, **kwargs):
        return self.add(**{k: -v for k, v in kwargs.items()})

    def in_timezone(self, tz):
        return self.astimezone(timezone(tz) if isinstance(tz, str) else tz)

    in_tz = in_timezone

    def start_of(self, unit: str):
        if unit == "day":
            return self.replace(hour=0, minute=0, second=0, microsecond=0)
        if unit == "hour":
            return self.replace(minute=0, second=0, microsecond=0)
        if unit == "month":
            return self.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if unit == "year":
            return self.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        raise ValueError(f"start_of({unit!r}) is not supported by the pendulum stand-in")

    def to_iso8601_string(self) -> str:
        return self.isoformat()

    @property
    def timezone_name(self):
        return getattr(self.tzinfo, "key", None) or (self.tzname() if self.tzinfo else None)


def _wrap(value: _dt.datetime) -> DateTime:
    return DateTime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=value.tzinfo,
        fold=value.fold,
    )


def timezone(name):
    """A tzinfo for an IANA name ("UTC", "Europe/Paris") or an offset in seconds."""
    if isinstance(name, _dt.tzinfo):
        return name
    if isinstance(name, (int, float)):
        return _dt.timezone(_dt.timedelta(seconds=name))
    if name in ("UTC", "utc", "Z"):
        return UTC
    if _zoneinfo is None:
        raise ValueError(f"timezone {name!r} needs the zoneinfo module")
    return _zoneinfo.ZoneInfo(name)


def _tz(tz):
    return timezone(tz) if tz is not None else UTC


UTC = _zoneinfo.ZoneInfo("UTC") if _zoneinfo is not None else _dt.timezone.utc
utc = UTC


def datetime(year, month=1, day=1, hour=0, minute=0, second=0, microsecond=0, tz="UTC", fold=1):
    return DateTime(year, month, day, hour, minute, second, microsecond, tzinfo=_tz(tz) if tz is not None else None)


def local(year, month=1, day=1, hour=0, minute=0, second=0, microsecond=0):
    return datetime(year, month, day, hour, minute, second, microsecond, tz=UTC)


def naive(year, month=1, day=1, hour=0, minute=0, second=0, microsecond=0):
    return DateTime(year, month, day, hour, minute, second, microsecond)


def date(year, month, day):
    return _dt.date(year, month, day)


def duration(days=0, seconds=0, microseconds=0, milliseconds=0, minutes=0, hours=0, weeks=0, years=0, months=0):
    if years or months:
        raise ValueError("the pendulum stand-in has no calendar durations (years/months); use days or weeks")
    return _dt.timedelta(
        days=days,
        seconds=seconds,
        microseconds=microseconds,
        milliseconds=milliseconds,
        minutes=minutes,
        hours=hours,
        weeks=weeks,
    )


def now(tz="UTC"):
    return _wrap(_dt.datetime.now(_tz(tz)))


def today(tz="UTC"):
    return now(tz).start_of("day")


def yesterday(tz="UTC"):
    return today(tz) - _dt.timedelta(days=1)


def tomorrow(tz="UTC"):
    return today(tz) + _dt.timedelta(days=1)


def instance(dt, tz="UTC"):
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_tz(tz))
    return _wrap(dt)


def from_timestamp(timestamp, tz="UTC"):
    return _wrap(_dt.datetime.fromtimestamp(timestamp, _tz(tz)))


def parse(text, tz="UTC", strict=True, **options):
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = _dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_tz(tz))
    return _wrap(parsed)


def is_stand_in() -> bool:
    return True
