"""Schedule and time conversions: every `schedule=` form, RFC 3339 output and timezone names."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from leoflow_shim.timetables import CronDataIntervalTimetable, DeltaTriggerTimetable, normalize_schedule
from leoflow_shim.timevalues import rfc3339, timezone_name, to_seconds


@pytest.mark.parametrize(
    "schedule, expected",
    [
        (None, (None, None)),
        ("@once", ("@once", None)),
        ("@daily", ("@daily", None)),
        ("@quarterly", ("@quarterly", None)),
        ("  0  6 * * 1-5 ", ("0 6 * * 1-5", None)),
        ("0 0 0 1 1 *", ("0 0 0 1 1 *", None)),
        (dt.timedelta(hours=1, minutes=30), ("@every 5400s", None)),
        (dt.timedelta(days=2), ("@every 172800s", None)),
        (CronDataIntervalTimetable("0 1 * * *", timezone="Europe/Berlin"), ("0 1 * * *", "Europe/Berlin")),
        (DeltaTriggerTimetable(dt.timedelta(minutes=5)), ("@every 300s", None)),
    ],
)
def test_normalize_schedule(schedule, expected):
    assert normalize_schedule(schedule) == expected


@pytest.mark.parametrize(
    "schedule, message",
    [
        ("@fortnightly", "invalid schedule '@fortnightly'"),
        ("* * *", "invalid cron expression '* * *'"),
        ("0 0 * * * * *", "invalid cron expression"),
        (dt.timedelta(0), "must be positive"),
        (dt.timedelta(milliseconds=10), "whole number of seconds"),
        (42, "42 is not a valid schedule"),
    ],
)
def test_invalid_schedules(schedule, message):
    with pytest.raises(ValueError, match=message):
        normalize_schedule(schedule)


@pytest.mark.parametrize(
    "value, expected",
    [
        (dt.datetime(2024, 1, 1), "2024-01-01T00:00:00Z"),
        (dt.datetime(2024, 1, 1, 12, 0, 0, 250000), "2024-01-01T12:00:00.25Z"),
        (dt.datetime(2024, 6, 1, 2, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")), "2024-06-01T00:00:00Z"),
        (dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "2024-01-01T05:00:00Z"),
    ],
)
def test_rfc3339(value, expected):
    assert rfc3339(value) == expected


@pytest.mark.parametrize(
    "tzinfo, expected",
    [
        (None, None),
        (dt.timezone.utc, "UTC"),
        (zoneinfo.ZoneInfo("UTC"), "UTC"),
        (zoneinfo.ZoneInfo("Asia/Kolkata"), "Asia/Kolkata"),
        (dt.timezone(dt.timedelta(hours=2)), "Etc/GMT-2"),
        (dt.timezone(dt.timedelta(hours=5, minutes=30)), None),
    ],
)
def test_timezone_name(tzinfo, expected):
    assert timezone_name(tzinfo, dt.datetime(2024, 1, 1)) == expected


def test_to_seconds():
    assert to_seconds(dt.timedelta(minutes=2), "x") == 120
    assert to_seconds(1.5, "x") == 1.5
    assert isinstance(to_seconds(30.0, "x"), int)
    with pytest.raises(TypeError, match="x must be a timedelta or a number of seconds"):
        to_seconds("30", "x")
