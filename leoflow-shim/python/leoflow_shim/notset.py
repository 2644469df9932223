"""The NOTSET sentinel: Airflow's marker for "this argument was not given", distinct from None."""

from __future__ import annotations


class ArgNotSet:
    """Type of NOTSET; falsy so `value or default` still reads naturally."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOTSET"


NOTSET = ArgNotSet()


def is_arg_set(value) -> bool:
    return value is not NOTSET
