"""Airflow 3 base classes (`airflow.sdk.bases`)."""
