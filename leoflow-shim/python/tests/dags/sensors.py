"""Sensors: @task.sensor, BashSensor, PythonSensor (poke interval, timeout, mode, soft_fail)."""

from datetime import datetime, timedelta

from airflow.providers.standard.sensors.bash import BashSensor
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG, PokeReturnValue, task


def _file_exists(path):
    import os

    return os.path.exists(path)


with DAG(dag_id="sensors", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=False) as dag:

    @task.sensor(poke_interval=30, timeout=3600, mode="reschedule")
    def wait_for_upstream() -> PokeReturnValue:
        return PokeReturnValue(is_done=True, xcom_value="ready")

    wait_file = BashSensor(task_id="wait_file", bash_command="test -f /tmp/flag", poke_interval=timedelta(minutes=1))
    wait_py = PythonSensor(
        task_id="wait_py",
        python_callable=_file_exists,
        op_args=["/tmp/x"],
        timeout=timedelta(hours=2),
        soft_fail=True,
        exponential_backoff=True,
    )

    @task
    def proceed(signal):
        print(signal)

    proceed(wait_for_upstream()) << [wait_file, wait_py]
