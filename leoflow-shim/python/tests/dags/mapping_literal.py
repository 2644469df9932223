"""Dynamic task mapping over literal lists: one argument, a cartesian product, partial(), a dict, a range."""

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="mapping_literal", start_date=datetime(2022, 3, 4), schedule=None) as dag:

    @task
    def add_one(x: int):
        return x + 1

    @task
    def multiply(x: int, y: int, factor: int = 1):
        return x * y * factor

    @task
    def sum_it(values):
        total = sum(values)
        print(f"Total was {total}")

    @task
    def show(pair):
        print(pair)

    added = add_one.expand(x=[1, 2, 3])
    sum_it(added)
    multiply.partial(factor=10).expand(x=[1, 2], y=(3, 4))
    show.expand(pair={"a": 1, "b": 2})
    add_one.override(task_id="ranged").expand(x=range(3))
