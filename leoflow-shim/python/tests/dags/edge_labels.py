"""Label() on edges (kept as plain dependencies) with a branch and a join."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Label
from airflow.utils.edgemodifier import Label as LegacyLabel

with DAG("edge_labels", schedule="@daily", start_date=datetime(2021, 1, 1), catchup=False) as dag:
    ingest = EmptyOperator(task_id="ingest")
    analyse = EmptyOperator(task_id="analyze")
    check = EmptyOperator(task_id="check_integrity")
    describe = EmptyOperator(task_id="describe_integrity")
    error = EmptyOperator(task_id="email_error")
    save = EmptyOperator(task_id="save")
    report = EmptyOperator(task_id="report")

    ingest >> analyse >> check
    check >> Label("No errors") >> save >> report
    check >> LegacyLabel("Errors found") >> describe >> error >> report
