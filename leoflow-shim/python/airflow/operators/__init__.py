"""Airflow 2 operators path (`airflow.operators.*`), kept for existing DAGs."""
