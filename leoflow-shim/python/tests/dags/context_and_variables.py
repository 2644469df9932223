"""Tasks reading the context (ti, **context, get_current_context) and Variables with compile-time defaults."""

from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Variable, get_current_context, task

THRESHOLD = int(Variable.get("threshold", default="7"))


def with_ds(ds, **kwargs):
    print(ds, kwargs)


with DAG(
    dag_id="context_and_variables", start_date=datetime(2024, 1, 1), schedule=None, tags=[f"threshold-{THRESHOLD}"]
) as dag:

    @task
    def uses_context(limit: int, ti=None, **context):
        print(ti, context, Variable.get("runtime_only"))
        return get_current_context()["run_id"]

    classic = PythonOperator(task_id="classic_ds", python_callable=with_ds)
    uses_context(THRESHOLD) >> classic
