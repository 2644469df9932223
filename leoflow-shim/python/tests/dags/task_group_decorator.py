"""@task_group called repeatedly: group ids get Airflow's __1, __2 suffixes; return values bind dependencies."""

import pendulum

from airflow.sdk import dag, task, task_group


@dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, catchup=False, tags=["groups"])
def task_group_decorator():
    @task
    def task_start():
        return "[Task_start]"

    @task
    def task_1(value: str):
        return f"[ Task1 {value} ]"

    @task
    def task_2(value: str):
        return f"[ Task2 {value} ]"

    @task
    def task_end():
        print("[ Task_End  ]")

    @task_group
    def task_group_function(value: str):
        """TaskGroup docstring"""
        return task_2(task_1(value))

    @task_group(group_id="custom")
    def other():
        task_1.override(task_id="lonely")("x")

    current = task_start()
    for _ in range(3):
        current = task_group_function(current)
    current >> other() >> task_end()


task_group_decorator()
