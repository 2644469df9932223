"""Strict conversion of Python values to JSON values, for call_args, map literals and params."""

from __future__ import annotations

import math


class NotJSON(ValueError):
    """The value has no faithful JSON form (a datetime, an object, a dict with non-string keys...)."""


def to_json(value):
    """Return the JSON form of `value` (tuples become lists) or raise NotJSON."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotJSON(f"{value!r} is not a finite number")
        return value
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJSON(f"dict key {key!r} is not a string")
            out[key] = to_json(item)
        return out
    raise NotJSON(f"a {type(value).__name__} is not JSON")


def is_json(value) -> bool:
    try:
        to_json(value)
    except NotJSON:
        return False
    return True


def dumps(value) -> str:
    """`value` as JSON text with the standard json semantics (tuples become lists, non-string keys are stringified).

    Raises NotJSON naming the first offending type: an object json cannot encode, or a NaN/infinite float.
    """
    import json

    def refuse(item):
        raise NotJSON(f"a {type(item).__module__}.{type(item).__qualname__}".replace("builtins.", ""))

    try:
        return json.dumps(value, default=refuse, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError as err:  # NotJSON is a ValueError too
        if isinstance(err, NotJSON):
            raise
        if "ircular" in str(err):
            raise NotJSON("a structure that contains itself") from None
        raise NotJSON("a NaN or infinite float") from None
    except TypeError as err:  # e.g. a dict key json cannot stringify (a tuple)
        raise NotJSON(str(err)) from None
    except RecursionError:
        raise NotJSON("a structure nested too deeply (or containing itself)") from None
