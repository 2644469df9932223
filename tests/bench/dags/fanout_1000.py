"""Wide fan-out benchmark: start -> 1,000 parallel trivial tasks -> join.

Stresses dispatch: on Lite every attempt is its own process, started one at a time.
"""
from datetime import datetime

from airflow.sdk import DAG, task

WIDTH = 1000


with DAG(
    dag_id="fanout_{}".format(WIDTH),
    schedule=None,
    start_date=datetime(2023, 1, 1),
    catchup=False,
    tags=["benchmark"],
) as dag:

    @task(task_id="start")
    def start():
        return 0

    @task(task_id="join")
    def join():
        return 0

    start_task = start()
    join_task = join()
    for i in range(WIDTH):

        @task(task_id=f"task_{i:04d}")
        def trivial(i=i):
            return i

        start_task >> trivial() >> join_task
