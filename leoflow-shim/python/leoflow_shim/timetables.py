"""Schedules: Airflow's timetable classes and the normalisation of any `schedule=` value to dag.json's string form."""

from __future__ import annotations

import datetime as _dt
import re

from .errors import UnsupportedFeature
from .timevalues import timezone_name

PRESETS = frozenset(
    {
        "@once",
        "@continuous",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@quarterly",
        "@yearly",
        "@annually",
    }
)

_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?#LW-]+$")
_EVERY = re.compile(r"^@every\s+((\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d))+)$")


class Timetable:
    """Base class of the timetables the shim understands."""

    description = ""

    def _leoflow_schedule(self):
        """(dag.json schedule string or None, timezone name or None)."""
        raise NotImplementedError


class NullTimetable(Timetable):
    def _leoflow_schedule(self):
        return None, None


class OnceTimetable(Timetable):
    def _leoflow_schedule(self):
        return "@once", None


class ContinuousTimetable(Timetable):
    def _leoflow_schedule(self):
        return "@continuous", None


class _CronTimetable(Timetable):
    def __init__(self, cron: str, timezone="UTC", **kwargs):
        self._expression = validate_cron(cron)
        self._timezone = timezone

    def _leoflow_schedule(self):
        tz = self._timezone
        name = tz if isinstance(tz, str) else timezone_name(tz)
        return self._expression, name


class CronTriggerTimetable(_CronTimetable):
    """Runs at each cron point (Airflow 3's default for cron strings)."""

    def __init__(self, cron: str, *, timezone="UTC", interval=_dt.timedelta(), run_immediately=False):
        super().__init__(cron, timezone)
        self.interval = interval
        self.run_immediately = run_immediately


class CronDataIntervalTimetable(_CronTimetable):
    """Runs at the end of each cron-delimited data interval."""

    def __init__(self, cron: str, timezone="UTC"):
        super().__init__(cron, timezone)


class _DeltaTimetable(Timetable):
    def __init__(self, delta, **kwargs):
        self._delta = delta

    def _leoflow_schedule(self):
        return every(self._delta), None


class DeltaDataIntervalTimetable(_DeltaTimetable):
    pass


class DeltaTriggerTimetable(_DeltaTimetable):
    def __init__(self, delta, *, interval=_dt.timedelta()):
        super().__init__(delta)


class MultipleCronTriggerTimetable(Timetable):
    def __init__(self, *crons, timezone="UTC", interval=_dt.timedelta(), run_immediately=False):
        raise UnsupportedFeature(
            "MultipleCronTriggerTimetable", "dag.json holds one schedule per DAG; define one DAG per cron expression"
        )


class EventsTimetable(Timetable):
    def __init__(self, event_dates, **kwargs):
        raise UnsupportedFeature(
            "EventsTimetable", "use a cron schedule, or trigger the DAG manually or through the API"
        )


def validate_cron(expression) -> str:
    if not isinstance(expression, str):
        raise TypeError(f"a cron schedule must be a string, got {type(expression).__name__}")
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text in PRESETS or _EVERY.match(text):
            return text
        raise ValueError(
            f"invalid schedule {expression!r}: the presets are {', '.join(sorted(PRESETS))}; "
            "otherwise use a 5-field cron expression or a timedelta"
        )
    fields = text.split(" ")
    if len(fields) not in (5, 6) or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(
            f"invalid cron expression {expression!r}: expected 5 fields (minute hour day-of-month month day-of-week), "
            "a preset such as '@daily', a timedelta, or None"
        )
    return text


def every(delta) -> str:
    if not isinstance(delta, _dt.timedelta):
        name = type(delta).__name__
        if name == "relativedelta":
            raise UnsupportedFeature("relativedelta schedules", "use a timedelta (fixed interval) or a cron expression")
        raise TypeError(f"a delta schedule must be a timedelta, got {name}")
    seconds = delta.total_seconds()
    if seconds <= 0:
        raise ValueError(f"a timedelta schedule must be positive, got {delta!r}")
    if not seconds.is_integer():
        raise ValueError(f"a timedelta schedule must be a whole number of seconds, got {delta!r}")
    return f"@every {int(seconds)}s"


def normalize_schedule(schedule):
    """(dag.json schedule or None, timezone name or None) for any value Airflow 3 accepts as `schedule=`."""
    from .assets import BaseAsset, reject_asset_schedule

    if schedule is None:
        return None, None
    if isinstance(schedule, str):
        return validate_cron(schedule), None
    if isinstance(schedule, _dt.timedelta):
        return every(schedule), None
    if isinstance(schedule, Timetable):
        return schedule._leoflow_schedule()
    if isinstance(schedule, BaseAsset):
        reject_asset_schedule()
    if isinstance(schedule, (list, tuple, set, frozenset)):
        if all(isinstance(item, BaseAsset) for item in schedule):
            reject_asset_schedule()
        raise ValueError("All elements in 'schedule' should be either assets, asset references, or asset aliases")
    if type(schedule).__name__ == "relativedelta":
        every(schedule)
    raise ValueError(f"{schedule!r} is not a valid schedule.")
