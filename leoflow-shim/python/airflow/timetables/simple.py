"""`airflow.timetables.simple`: null, once and continuous timetables."""

from __future__ import annotations

from leoflow_shim.timetables import ContinuousTimetable, NullTimetable, OnceTimetable

__all__ = ["ContinuousTimetable", "NullTimetable", "OnceTimetable"]
