"""Airflow 2 sensors path (`airflow.sensors.*`)."""
