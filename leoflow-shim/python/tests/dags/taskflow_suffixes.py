"""Repeated TaskFlow calls get Airflow's __1, __2 suffixes, inside and outside groups; .override() renames."""

from datetime import datetime

from airflow.sdk import DAG, TaskGroup, task

with DAG(dag_id="taskflow_suffixes", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task
    def step(n):
        return n

    first = step(1)
    second = step(2)
    third = step(3)
    renamed = step.override(task_id="renamed")(4)
    explicit = step.override(task_id="step__7")(7)
    after_explicit = step(8)

    with TaskGroup("grp"):
        g1 = step(5)
        g2 = step(6)

    first >> second >> third >> renamed >> explicit >> after_explicit >> g1 >> g2
