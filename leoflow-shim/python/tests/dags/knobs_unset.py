"""No retries, delays or timeouts anywhere: dag.json must carry none (the engine applies Airflow's defaults)."""

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

with DAG(dag_id="knobs_unset", schedule=None) as dag:

    @task
    def first():
        return "x"

    @task
    def second(value):
        return value

    second(first()) >> BashOperator(task_id="third", bash_command="echo done")
