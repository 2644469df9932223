"""`airflow.timetables.events`: EventsTimetable (unsupported)."""

from __future__ import annotations

from leoflow_shim.timetables import EventsTimetable

__all__ = ["EventsTimetable"]
