"""TaskGroup(dag=...) without a with-block, operators given dag= and task_group= explicitly (legacy style)."""

from datetime import datetime

from airflow.models.baseoperator import chain
from airflow.models.dag import DAG
from airflow.operators.bash import BashOperator
from airflow.utils.task_group import TaskGroup

dag = DAG(dag_id="taskgroup_explicit_args", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=False)

group = TaskGroup(group_id="load", dag=dag, default_args={"retries": 4})
first = BashOperator(task_id="first", bash_command="echo 1", dag=dag, task_group=group)
second = BashOperator(task_id="second", bash_command="echo 2", dag=dag, task_group=group)
prepare = BashOperator(task_id="prepare", bash_command="echo 0", dag=dag)
publish = BashOperator(task_id="publish", bash_command="echo 3", dag=dag)
chain(prepare, first, second, publish)
