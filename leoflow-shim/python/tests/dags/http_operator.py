"""HttpOperator / SimpleHttpOperator compiled to inline http_api tasks."""

from datetime import datetime, timedelta

from airflow.providers.http.operators.http import HttpOperator, SimpleHttpOperator
from airflow.sdk import DAG

with DAG(dag_id="http_operator", start_date=datetime(2024, 1, 1), schedule=None, tags=["http"]) as dag:
    get_full_url = HttpOperator(
        task_id="get_full_url",
        method="get",
        endpoint="https://httpbin.org/get",
        execution_timeout=timedelta(seconds=30),
    )
    post_json = HttpOperator(
        task_id="post_json",
        http_conn_id="http_target",
        endpoint="/post",
        data={"name": "leoflow", "n": 1},
        headers={"Content-Type": "application/json"},
        extra_options={"timeout": 15},
        retries=2,
    )
    legacy = SimpleHttpOperator(task_id="legacy_default_conn", endpoint="api/ping", method="GET")
    get_full_url >> post_json >> legacy
