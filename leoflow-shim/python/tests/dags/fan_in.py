"""Fan-in of several task outputs into one parameter, as a list and as a dict, next to literal arguments."""

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="fan_in", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task
    def shard(n: int):
        return n * n

    @task(multiple_outputs=True)
    def stats():
        return {"mean": 1.0, "max": 3}

    @task
    def aggregate(parts: list, summary: dict, label: str = "total"):
        print(label, sum(parts), summary)

    parts = [shard(i) for i in range(4)]
    s = stats()
    aggregate(parts, {"mean": s["mean"], "max": s["max"], "first": parts[0]}, label="sum")
