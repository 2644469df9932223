"""Two DAGs in one file: a context-manager DAG and a DAG object kept in a module global."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="multi_first", start_date=datetime(2024, 1, 1), schedule="@daily", tags=["multi"]):
    BashOperator(task_id="hello", bash_command="echo first")

second_dag = DAG(dag_id="multi_second", start_date=datetime(2024, 1, 1), schedule="@hourly", tags=["multi"])
one = BashOperator(task_id="one", bash_command="echo 1", dag=second_dag)
two = BashOperator(task_id="two", bash_command="echo 2", dag=second_dag)
one >> two


def _never_registered():
    # Built inside a function, never entered nor stored globally: Airflow's DagBag does not see it.
    DAG(dag_id="multi_invisible", schedule=None)


_never_registered()
