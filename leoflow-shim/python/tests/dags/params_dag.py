"""DAG params with Param schemas (the UI trigger form) and plain values; default_args params merge in."""

from datetime import datetime

from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="params_dag",
    start_date=datetime(2024, 1, 1),
    schedule=None,
    params={
        "x": Param(5, type="integer", minimum=3, description="how many"),
        "name": Param("world", type="string", enum=["world", "moon"], title="Who"),
        "flag": True,
        "required_value": Param(type="string"),
    },
    default_args={"params": {"from_default_args": 1}},
) as dag:

    @task
    def show(params=None):
        print(params)

    show()
