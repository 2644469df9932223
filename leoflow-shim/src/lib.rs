//! Embeds the Python Airflow shim and parser and runs them to compile DAG files to dag.json.
//!
//! Skeleton only: the Python side lives in python/; the Rust side is filled by issue #5.
