"""`airflow.providers.standard.operators.*`."""
