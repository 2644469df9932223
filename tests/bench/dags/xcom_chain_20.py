"""XCom benchmark: 20 chained tasks, each receiving a ~100 KiB dict from the previous one
and passing it on with one more entry."""
from datetime import datetime

from airflow.sdk import DAG, task

LENGTH = 20
PAYLOAD_BYTES = 100 * 1024


with DAG(
    dag_id="xcom_chain_{}".format(LENGTH),
    schedule=None,
    start_date=datetime(2023, 1, 1),
    catchup=False,
    tags=["benchmark"],
) as dag:

    @task(task_id="step_00")
    def first():
        return {"blob": "x" * PAYLOAD_BYTES, "steps": [0]}

    previous = first()
    for i in range(1, LENGTH):

        @task(task_id=f"step_{i:02d}")
        def step(payload: dict, i=i):
            assert len(payload["blob"]) == PAYLOAD_BYTES
            return {"blob": payload["blob"], "steps": payload["steps"] + [i]}

        previous = step(previous)
