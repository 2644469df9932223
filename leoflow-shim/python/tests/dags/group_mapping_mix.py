"""Mapping inside a task group, reading a group task's output outside the group."""

from datetime import datetime

from airflow.sdk import DAG, TaskGroup, task

with DAG(dag_id="group_mapping_mix", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task
    def list_files():
        return ["a.csv", "b.csv"]

    with TaskGroup("ingest") as ingest:

        @task
        def parse(path: str):
            return {"path": path}

        parsed = parse.expand(path=list_files())

    @task
    def summarize(items):
        return len(items)

    summarize(parsed)
