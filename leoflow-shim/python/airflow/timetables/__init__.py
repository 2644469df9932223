"""`airflow.timetables`: the timetables dag.json can express."""
