"""`airflow.timetables.interval`: data-interval timetables."""

from __future__ import annotations

from leoflow_shim.timetables import CronDataIntervalTimetable, DeltaDataIntervalTimetable

__all__ = ["CronDataIntervalTimetable", "DeltaDataIntervalTimetable"]
