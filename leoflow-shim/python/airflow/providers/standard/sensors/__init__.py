"""`airflow.providers.standard.sensors.*`."""
