"""TaskFlow inside `with DAG`: @task(task_id=, retries=, retry_delay=, execution_timeout=, trigger_rule=)."""

from datetime import datetime, timedelta

from airflow.sdk import DAG, TriggerRule, task

with DAG(
    dag_id="taskflow_task_options",
    start_date=datetime(2024, 1, 1),
    schedule="0 6 * * *",
    catchup=False,
    tags=["options"],
) as dag:

    @task(task_id="fetch_rows", retries=3, retry_delay=timedelta(seconds=30))
    def fetch():
        return [1, 2, 3]

    @task(execution_timeout=timedelta(minutes=10), retry_exponential_backoff=True, max_retry_delay=timedelta(hours=1))
    def crunch(rows):
        return sum(rows)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def always_report(total):
        print(total)

    @task(trigger_rule="one_failed", retries=0)
    def alert():
        print("something failed")

    total = crunch(fetch())
    always_report(total)
    total >> alert()
