"""TaskGroups: nested context managers, prefix_group_id=False, group >> group and task >> group dependencies."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TaskGroup, task

with DAG(dag_id="taskgroups_nested", start_date=datetime(2024, 1, 1), schedule="@weekly", tags=["groups"]) as dag:
    start = EmptyOperator(task_id="start")

    with TaskGroup("section_1", tooltip="Tasks for section_1") as section_1:
        task_1 = EmptyOperator(task_id="task_1")
        task_2 = EmptyOperator(task_id="task_2")
        task_3 = EmptyOperator(task_id="task_3")
        task_1 >> [task_2, task_3]

    with TaskGroup("section_2") as section_2:
        first = EmptyOperator(task_id="first")
        with TaskGroup("inner_section_2") as inner:
            deep_a = EmptyOperator(task_id="deep_a")
            deep_b = EmptyOperator(task_id="deep_b")
            deep_a >> deep_b
        first >> inner

    with TaskGroup("flat", prefix_group_id=False) as flat:

        @task
        def unprefixed():
            return 1

        unprefixed()

    end = EmptyOperator(task_id="end")
    start >> section_1 >> section_2 >> flat >> end
