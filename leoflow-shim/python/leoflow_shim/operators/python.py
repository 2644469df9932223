"""Python-callable operators: PythonOperator, BranchPythonOperator, ShortCircuitOperator, virtualenv variants.

They share how a callable's arguments become dag.json `xcom_input` (task outputs) and `call_args` (literals):
the arguments are bound to the callable's signature, as Airflow does when the task runs.
"""

from __future__ import annotations

import copy
import inspect

from ..errors import UnsupportedFeature
from ..exceptions import AirflowException
from ..operator import BaseOperator
from ..task_context import KNOWN_CONTEXT_KEYS, resolve

_SIGNATURES: dict = {}


def context_signature(python_callable) -> inspect.Signature:
    """The callable's signature with context-key parameters (ti, ds, params...) made optional, as Airflow does."""
    code = getattr(python_callable, "__code__", None)
    key = None
    if code is not None:
        defaults = getattr(python_callable, "__defaults__", None) or ()
        kwdefaults = getattr(python_callable, "__kwdefaults__", None) or {}
        key = (code, len(defaults), frozenset(kwdefaults))
        cached = _SIGNATURES.get(key)
        if cached is not None:
            return cached
    signature = inspect.signature(python_callable)
    params = [
        p.replace(default=None) if p.name in KNOWN_CONTEXT_KEYS and p.default is p.empty else p
        for p in signature.parameters.values()
    ]
    # Python forbids a parameter without a default after one with a default among positional parameters.
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    seen_default = False
    fixed = []
    for p in params:
        if p.kind in positional:
            if p.default is not p.empty:
                seen_default = True
            elif seen_default:
                p = p.replace(default=None)
        fixed.append(p)
    signature = signature.replace(parameters=fixed)
    if key is not None:
        _SIGNATURES[key] = signature
    return signature


def bind_arguments(python_callable, op_args, op_kwargs, partial: bool = False):
    """BoundArguments of op_args/op_kwargs against the callable (bind_partial for mapped tasks)."""
    signature = context_signature(python_callable)
    binder = signature.bind_partial if partial else signature.bind
    return signature, binder(*op_args, **op_kwargs)


def callable_inputs(task_id, python_callable, op_args, op_kwargs, partial: bool = False):
    """(xcom_input, call_args) of a Python-callable task, keyed by the callable's parameter names."""
    from ..xcom import encode_input

    try:
        signature, bound = bind_arguments(python_callable, op_args, op_kwargs, partial)
    except TypeError as err:
        name = getattr(python_callable, "__name__", repr(python_callable))
        raise TypeError(f"the arguments of task '{task_id}' do not match {name}(): {err}") from None
    xcom_input: dict = {}
    call_args: dict = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        items = value.items() if kind == inspect.Parameter.VAR_KEYWORD else ((name, value),)
        for key, item in items:
            tag, encoded = encode_input(item, f"argument '{key}' of task '{task_id}'")
            if tag == "xcom":
                xcom_input[key] = encoded
            elif tag == "literal":
                call_args[key] = encoded
    return xcom_input, call_args


def context_kwargs(python_callable, op_args, context, op_kwargs) -> dict:
    """Airflow's determine_kwargs: the context entries the callable accepts, overridden by op_kwargs.

    Parameters already filled by `op_args` (positionally) get nothing from the context.
    """
    signature = inspect.signature(python_callable)
    positional = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ][: len(op_args)]
    merged = {k: v for k, v in context.items() if k not in positional}
    merged.update(op_kwargs)
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return merged
    return {
        k: v
        for k, v in merged.items()
        if k in signature.parameters and signature.parameters[k].kind != inspect.Parameter.POSITIONAL_ONLY
    }


class CallableTaskMixin:
    """Tasks whose work is `python_callable(*op_args, **op_kwargs)`."""

    def _leoflow_inputs(self):
        if self.templates_dict and any(True for _ in _xcom_args(self.templates_dict)):
            raise UnsupportedFeature(
                f"a task output inside templates_dict of task '{self.task_id}'",
                "pass the task output as an argument of the callable (op_kwargs) instead",
            )
        return callable_inputs(
            self.task_id, self.python_callable, self.op_args, self.op_kwargs, partial=self._leoflow_map is not None
        )

    def unmap(self, mapped_kwargs: dict):
        """A copy of this mapped TaskFlow task for one map instance (used by the runtime)."""
        instance = copy.copy(self)
        instance.op_kwargs = {**self.op_kwargs, **mapped_kwargs}
        instance._leoflow_map = None
        return instance

    def execute_callable(self, context):
        op_args = resolve(list(self.op_args), context)
        op_kwargs = resolve(dict(self.op_kwargs), context)
        kwargs = context_kwargs(self.python_callable, op_args, context, op_kwargs)
        return self.python_callable(*op_args, **kwargs)


def _xcom_args(value):
    from ..xcom import iter_xcom_args

    return iter_xcom_args(value)


class PythonOperator(CallableTaskMixin, BaseOperator):
    """Executes a Python callable."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")
    template_fields_renderers = {"templates_dict": "json", "op_args": "py", "op_kwargs": "py"}
    ui_color = "#ffefeb"
    _leoflow_map = None

    def __init__(
        self,
        *,
        python_callable,
        op_args=None,
        op_kwargs=None,
        templates_dict=None,
        templates_exts=None,
        show_return_value_in_logs: bool = True,
        **kwargs,
    ):
        if not callable(python_callable):
            raise AirflowException("`python_callable` param must be callable")
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or ())
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict
        self.templates_exts = templates_exts
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context):
        if self.templates_dict is not None:
            context = {**context, "templates_dict": self.templates_dict}
        return self.execute_callable(context)


class BranchPythonOperator(PythonOperator):
    """The callable returns the task id(s) to follow; other direct downstream tasks are skipped."""

    _leoflow_branch = "branch"


class ShortCircuitOperator(PythonOperator):
    """A falsy return value skips downstream tasks."""

    _leoflow_branch = "short_circuit"
    ui_color = "#e9ffdb"

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def _leoflow_spec(self, fileloc):
        spec = super()._leoflow_spec(fileloc)
        spec["ignore_downstream_trigger_rules"] = bool(self.ignore_downstream_trigger_rules)
        return spec


class PythonVirtualenvOperator(PythonOperator):
    """Runs as a plain Python task in the DAG's image: declare packages under `dependencies` in leoflow.yaml."""

    template_fields = ("templates_dict", "op_args", "op_kwargs", "requirements")

    def __init__(
        self,
        *,
        python_callable,
        requirements=None,
        python_version=None,
        serializer=None,
        system_site_packages: bool = True,
        pip_install_options=None,
        use_dill: bool = False,
        use_airflow_context: bool = False,
        expect_airflow: bool = True,
        string_args=None,
        templates_exts=None,
        index_urls=None,
        index_urls_from_connection_ids=None,
        venv_cache_path=None,
        env_vars=None,
        inherit_env: bool = True,
        skip_on_exit_code=None,
        **kwargs,
    ):
        super().__init__(python_callable=python_callable, templates_exts=templates_exts, **kwargs)
        self.requirements = requirements
        self.python_version = python_version


class _UnsupportedPythonOperator(BaseOperator):
    _leoflow_feature = ""
    _leoflow_instead = ""

    def __init__(self, **kwargs):
        raise UnsupportedFeature(self._leoflow_feature, self._leoflow_instead)


class ExternalPythonOperator(_UnsupportedPythonOperator):
    _leoflow_feature = "ExternalPythonOperator"
    _leoflow_instead = (
        "use @task or PythonOperator; tasks run with the image's Python and the `dependencies` of leoflow.yaml"
    )


class BranchPythonVirtualenvOperator(_UnsupportedPythonOperator):
    _leoflow_feature = "BranchPythonVirtualenvOperator"
    _leoflow_instead = "use @task.branch and declare packages under `dependencies` in leoflow.yaml"


class BranchExternalPythonOperator(_UnsupportedPythonOperator):
    _leoflow_feature = "BranchExternalPythonOperator"
    _leoflow_instead = "use @task.branch"
