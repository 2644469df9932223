"""`airflow.utils`: the few helpers DAG files import."""
