"""Mapping over an upstream task's output; the consumer receives the mapped results as a list."""

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="mapping_xcom", start_date=datetime(2022, 3, 4), schedule=None, tags=["mapping"]) as dag:

    @task
    def make_list():
        return [1, 2, {"a": "b"}, "str"]

    @task(retries=2)
    def consumer(arg, scale=2):
        print(arg, scale)

    @task
    def collect(results):
        return len(results)

    listed = make_list()
    consumed = consumer.partial(scale=3).expand(arg=listed)
    collect(consumed)
