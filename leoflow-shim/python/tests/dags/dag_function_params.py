"""@dag function arguments become DAG params; passing them to tasks leaves the value to the run's params."""

import pendulum

from airflow.sdk import Param, dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"region": Param("eu", enum=["eu", "us"])},
)
def dag_function_params(email: str = "ops@example.com", limit: int = 10):
    """Greets by e-mail."""

    @task
    def send(to, limit, subject: str = "hi"):
        print(to, limit, subject)

    send(email, limit, subject="report")


dag_function_params()
