"""`airflow.providers.standard.operators.python`: PythonOperator and variants."""

from __future__ import annotations

from airflow.operators.python import *  # noqa: F401,F403
from airflow.operators.python import __all__  # noqa: F401
