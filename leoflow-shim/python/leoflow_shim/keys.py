"""Validation of dag ids, task ids and task-group ids, with Airflow's rules plus dag.json's ASCII pattern."""

from __future__ import annotations

import re

# Airflow accepts any \w character; dag.json (and therefore Leoflow) accepts ASCII only and no leading '.'/'-'.
_AIRFLOW_KEY = re.compile(r"^[\w.-]+$")
_AIRFLOW_GROUP_KEY = re.compile(r"^[\w-]+$")
_DAG_JSON_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")


def plain(key):
    """A str subclass (such as a TriggerRule member used as an id) as a plain str; other values unchanged."""
    return str.__str__(key) if isinstance(key, str) and type(key) is not str else key


def validate_key(key, what: str = "key", max_length: int = 250) -> None:
    """Raise like Airflow's validate_key when `key` cannot be a dag or task id."""
    if not isinstance(key, str):
        raise TypeError(f"The {what} has to be a string, got {type(key).__name__}")
    if len(key) > max_length:
        raise ValueError(f"The {what} {key!r} has to be less than {max_length} characters")
    if not _AIRFLOW_KEY.match(key):
        raise ValueError(
            f"The {what} {key!r} has to be made of alphanumeric characters, dashes, dots and underscores exclusively"
        )
    if not _DAG_JSON_ID.match(key):
        raise ValueError(
            f"The {what} {key!r} is not accepted by Leoflow: use ASCII letters, digits, '_', '.' and '-' only, "
            "and do not start with '.' or '-'"
        )


def validate_group_key(key, max_length: int = 200) -> None:
    """Raise like Airflow's validate_group_key when `key` cannot be a task-group id."""
    if not isinstance(key, str):
        raise TypeError(f"The group_id has to be a string, got {type(key).__name__}")
    if len(key) > max_length:
        raise ValueError(f"The key {key!r} has to be less than {max_length} characters")
    if not _AIRFLOW_GROUP_KEY.match(key):
        raise ValueError(
            f"The key {key!r} has to be made of alphanumeric characters, dashes and underscores exclusively"
        )
    if not key.isascii() or key.startswith("-"):
        raise ValueError(f"The group_id {key!r} is not accepted by Leoflow: use ASCII letters, digits, '_' and '-'")
