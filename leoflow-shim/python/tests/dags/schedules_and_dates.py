"""Schedules in every form Airflow 3 accepts (several DAGs in one file), plus catchup, end_date and timezones."""

from datetime import datetime, timedelta, timezone

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronTriggerTimetable

SCHEDULES = {
    "sched_none": None,
    "sched_once": "@once",
    "sched_daily": "@daily",
    "sched_cron": "*/15 * * * *",
    "sched_timedelta": timedelta(minutes=90),
    "sched_continuous": "@continuous",
}

for dag_id, schedule in SCHEDULES.items():
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=datetime(2024, 1, 1),
        max_active_runs=1 if schedule == "@continuous" else None,
    ):
        EmptyOperator(task_id="only")

with DAG(
    dag_id="sched_paris",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Paris"),
    end_date=pendulum.datetime(2024, 12, 31, tz="Europe/Paris"),
    catchup=True,
    max_active_runs=3,
    max_active_tasks=8,
    dagrun_timeout=timedelta(hours=2),
):
    EmptyOperator(task_id="only")

with DAG(
    dag_id="sched_timetable",
    schedule=CronTriggerTimetable("0 9 * * 1-5", timezone="America/New_York"),
    start_date=datetime(2024, 1, 1, 12, 30, tzinfo=timezone.utc),
    catchup=False,
):
    EmptyOperator(task_id="only")
