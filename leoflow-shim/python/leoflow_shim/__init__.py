"""Leoflow's structural Airflow shim: imports Airflow 3 DAG files without Airflow and compiles them to dag.json."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# leoflow-shim/python: the directory that must be on sys.path so `import airflow` finds the shim.
PYTHON_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_ROOT = os.path.dirname(os.path.abspath(__file__))
AIRFLOW_SHIM_ROOT = os.path.join(PYTHON_ROOT, "airflow")
PENDULUM_FALLBACK_DIR = os.path.join(PACKAGE_ROOT, "_fallback")
