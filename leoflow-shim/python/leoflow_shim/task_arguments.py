"""The arguments a Python-callable task is called with at run time, from context.json and the re-imported task.

For each parameter of the callable (a `**kwargs` parameter contributes each of its keys), the value is, from the
strongest source down:

1. `mapped_kwargs`: this map instance's expanded argument;
2. `inputs`: the upstream XCom the agent resolved for it (`xcom_input`);
3. `call_args`: the literal compiled into dag.json;
4. the value the re-imported DAG file gives (DAG params, and objects that have no JSON form).

Strings written in the DAG file (call_args, literals of the task, literal map values) are rendered as templates;
task outputs are passed as they are.
"""

from __future__ import annotations

import inspect

from .templating import render_value


def literal_map_names(map_block) -> frozenset:
    """The mapped argument names whose values are literals in dag.json (those are rendered; XCom-fed ones are not)."""
    if not isinstance(map_block, dict):
        return frozenset()
    if "expand" in map_block and isinstance(map_block["expand"], dict):
        return frozenset(
            name for name, source in map_block["expand"].items() if isinstance(source, dict) and "literal" in source
        )
    source = map_block.get("expand_kwargs")
    if isinstance(source, dict) and isinstance(source.get("literal"), list):
        return frozenset(name for item in source["literal"] if isinstance(item, dict) for name in item)
    return frozenset()


def _values_by_name(signature, op_args, op_kwargs) -> dict:
    """The task's own arguments by parameter name (a **kwargs parameter flattened into its keys)."""
    bound = signature.bind_partial(*op_args, **op_kwargs)
    values = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind == inspect.Parameter.VAR_KEYWORD:
            values.update(value)
        else:
            values[name] = value
    return values


def _split(signature, values: dict, function_name: str):
    """(args, kwargs) calling a function with `signature` with the named `values`."""
    values = dict(values)
    args: list = []
    kwargs: dict = {}
    positional = True
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            if param.name in values and positional:
                args.append(values.pop(param.name))
                continue
            positional = False
            if param.name in values:
                if param.kind == inspect.Parameter.POSITIONAL_ONLY:
                    raise TypeError(
                        f"{function_name}(): cannot pass the positional-only parameter {param.name!r} after a "
                        "missing one"
                    )
                kwargs[param.name] = values.pop(param.name)
        elif param.kind == inspect.Parameter.VAR_POSITIONAL:
            if param.name in values:
                extra = values.pop(param.name)
                if extra and not positional:
                    raise TypeError(f"{function_name}(): cannot pass *{param.name} after a missing positional argument")
                args.extend(extra or ())
        elif param.kind == inspect.Parameter.KEYWORD_ONLY:
            if param.name in values:
                kwargs[param.name] = values.pop(param.name)
    kwargs.update(values)  # the keys of a **kwargs parameter
    return args, kwargs


def bind_callable_arguments(task, call_args, inputs, mapped, literal_mapped, context, dag) -> None:
    """Set `task.op_args` / `task.op_kwargs` to the run-time arguments of its callable (see the module docstring)."""
    from .operators.python import context_signature

    function = task.python_callable
    signature = context_signature(function)
    name = getattr(function, "__name__", "the task function")
    try:
        own = _values_by_name(signature, list(task.op_args or ()), dict(task.op_kwargs or {}))
    except TypeError as err:
        raise TypeError(f"the arguments of task '{task.task_id}' do not match {name}(): {err}") from None
    final = {}
    for key, value in own.items():
        if key not in mapped and key not in inputs and key not in call_args:
            final[key] = render_value(value, context, dag)
    for key, value in call_args.items():
        if key not in mapped and key not in inputs:
            final[key] = render_value(value, context, dag)
    for key, value in inputs.items():
        if key not in mapped:
            final[key] = value
    for key, value in mapped.items():
        final[key] = render_value(value, context, dag) if key in literal_mapped else value
    task.op_args, task.op_kwargs = _split(signature, final, name)


def module_callable_kwargs(function, call_args, inputs, mapped, context) -> dict:
    """Keyword arguments for a Go-era `module:callable` entrypoint: call_args < inputs < mapped, plus context keys.

    Names the function does not accept are dropped unless it takes **kwargs; parameters without a value keep their
    Python default.
    """
    from .operators.python import context_kwargs

    values = {**call_args, **inputs, **mapped}
    parameters = inspect.signature(function).parameters
    if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        values = {k: v for k, v in values.items() if k in parameters}
    return context_kwargs(function, [], context, values)
