"""The standard provider (Airflow 3 home of the core operators)."""
