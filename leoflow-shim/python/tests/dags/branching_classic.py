"""BranchPythonOperator with classic operators and a join that tolerates skips."""

from datetime import datetime

from airflow.operators.python import BranchPythonOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.utils.trigger_rule import TriggerRule


def choose(**context):
    return "weekday" if context["logical_date"].weekday() < 5 else "weekend"


with DAG("branching_classic", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=False) as dag:
    pick = BranchPythonOperator(task_id="pick", python_callable=choose)
    weekday = BashOperator(task_id="weekday", bash_command="echo weekday")
    weekend = BashOperator(task_id="weekend", bash_command="echo weekend")
    done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    pick >> [weekday, weekend] >> done
