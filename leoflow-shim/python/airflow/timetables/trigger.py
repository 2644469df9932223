"""`airflow.timetables.trigger`: CronTriggerTimetable and friends."""

from __future__ import annotations

from leoflow_shim.timetables import CronTriggerTimetable, DeltaTriggerTimetable, MultipleCronTriggerTimetable

__all__ = ["CronTriggerTimetable", "DeltaTriggerTimetable", "MultipleCronTriggerTimetable"]
