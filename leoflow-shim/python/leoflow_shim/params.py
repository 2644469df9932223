"""DAG params: Param (a default plus a JSON Schema), ParamsDict, and DagParam (an @dag function argument)."""

from __future__ import annotations

from .exceptions import ParamValidationError
from .jsonvalues import NotJSON, to_json
from .notset import NOTSET


class Param:
    """A DAG param with a default value and a JSON Schema, as shown in Airflow's trigger form."""

    CLASS_IDENTIFIER = "__class"

    def __init__(self, default=NOTSET, description=None, source=None, **kwargs):
        self.value = default
        self.description = description
        self.schema = kwargs.pop("schema") if "schema" in kwargs else kwargs
        self.source = source
        if default is not NOTSET:
            try:
                to_json(default)
            except NotJSON:
                raise ParamValidationError(
                    f"All provided parameters must be json-serializable. The value '{default!r}' is not serializable."
                ) from None
        try:
            to_json(self.schema)
        except NotJSON as err:
            raise ParamValidationError(f"Param schema must be JSON: {err}") from None

    @property
    def has_value(self) -> bool:
        return self.value is not NOTSET

    def resolve(self, value=NOTSET, suppress_exception: bool = False):
        """The given value, else the default (schema validation is the UI's and the runtime's job)."""
        if value is not NOTSET:
            return value
        if self.value is NOTSET:
            if suppress_exception:
                return None
            raise ParamValidationError("No value passed and Param has no default value")
        return self.value

    def dump(self) -> dict:
        return {
            "value": None if self.value is NOTSET else self.value,
            "description": self.description,
            "schema": self.schema,
        }

    def __repr__(self) -> str:
        return f"Param({self.value!r})"


class ParamsDict(dict):
    """A dict of name -> Param whose item access returns the param's resolved value, as in Airflow."""

    def __init__(self, dict_obj=None, suppress_exception: bool = False):
        super().__init__()
        self.suppress_exception = suppress_exception
        for key, value in (dict_obj or {}).items():
            self[key] = value

    def __setitem__(self, key, value):
        if not isinstance(value, Param):
            value = Param(value)
        super().__setitem__(key, value)

    def __getitem__(self, key):
        return super().__getitem__(key).resolve(suppress_exception=True)

    def get_param(self, key) -> Param:
        return super().__getitem__(key)

    def items_params(self):
        return super().items()

    def update(self, other=(), **kwargs):
        items = other.items() if hasattr(other, "items") else other
        for key, value in items:
            if isinstance(other, ParamsDict):
                value = other.get_param(key)
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def dump(self) -> dict:
        return {key: self.get_param(key).resolve(suppress_exception=True) for key in self}

    def validate(self) -> dict:
        return self.dump()


class DagParam:
    """A reference to a DAG param passed to tasks by an @dag function; resolved by the runtime at run time."""

    def __init__(self, current_dag, name: str, default=NOTSET):
        if default is not NOTSET:
            current_dag.params[name] = default
        self._name = name
        self._default = default
        self.current_dag = current_dag

    def iter_references(self):
        return ()

    def resolve(self, context):
        params = context.get("params") or {}
        if self._name in params:
            return params[self._name]
        if self._default is not NOTSET:
            return self._default.value if isinstance(self._default, Param) else self._default
        raise KeyError(f"param {self._name!r} has no value and no default")

    def __repr__(self) -> str:
        return f"DagParam({self._name!r})"
