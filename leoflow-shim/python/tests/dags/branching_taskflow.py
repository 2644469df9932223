"""@task.branch choosing among paths, a join with none_failed_min_one_success, and edge labels."""

import random

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Label, task

with DAG(
    dag_id="branching_taskflow",
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    schedule="@daily",
    tags=["example", "branching"],
) as dag:
    run_this_first = EmptyOperator(task_id="run_this_first")
    options = ["branch_a", "branch_b", "branch_c"]

    @task.branch(task_id="branching")
    def random_choice(choices: list) -> str:
        return f"branch_{random.choice(choices)}"

    random_choice_instance = random_choice(choices=options)
    run_this_first >> random_choice_instance

    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")

    for option in options:

        @task(task_id=option)
        def some_task():
            print("doing something")

        t = some_task()
        empty_follow = EmptyOperator(task_id="follow_" + option)
        random_choice_instance >> Label(option) >> t >> empty_follow >> join
