"""All twelve trigger rules, given as strings and as TriggerRule members."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TriggerRule

RULES = [
    "all_success",
    "all_failed",
    "all_done",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
]

with DAG(dag_id="trigger_rules_all", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    root = EmptyOperator(task_id="root")
    for rule in RULES:
        root >> EmptyOperator(task_id=f"rule_{rule}", trigger_rule=rule)
    root >> EmptyOperator(task_id="enum_all_done_setup_success", trigger_rule=TriggerRule.ALL_DONE_SETUP_SUCCESS)
    root >> EmptyOperator(task_id="enum_none_skipped", trigger_rule=TriggerRule.NONE_SKIPPED)
