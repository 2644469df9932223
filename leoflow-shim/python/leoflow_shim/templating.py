"""Rendering of templated fields at run time: Airflow's Jinja with jinja2 when it is importable, else a built-in subset.

Which engine renders is decided once per process:

- **jinja2** (when `import jinja2` works and `LEOFLOW_TEMPLATE_ENGINE` is not `builtin`): Airflow's environment, for
  full fidelity. It is sandboxed, loads `jinja2.ext.do`, and adds the `ds`, `ds_nodash`, `ts`, `ts_nodash` and
  `ts_nodash_with_tz` filters. It also honours the DAG's `user_defined_macros`, `user_defined_filters`,
  `template_undefined`, `template_searchpath`, `jinja_environment_kwargs` and `render_template_as_native_obj`.
- **built-in** (no jinja2, or `LEOFLOW_TEMPLATE_ENGINE=builtin`): `{{ expression }}`, `{# comments #}` and the
  `{{-`/`-}}` whitespace control. An expression is made of names, literals (`true`/`false`/`none` too), `.attr`,
  `[key]`, calls, arithmetic, comparisons, `and`/`or`/`not`, `x if c else y`, and filters (`x | f` or `x | f(a)`).
  The filters are Airflow's five plus default, upper, lower, title, capitalize, trim, string, int, float, length,
  join, replace, tojson, first, last, abs, round and list, and the DAG's own. A filter applies to the whole
  expression on its left. Statements (`{% ... %}`), `~` and tests (`is defined`) are errors saying to install jinja2.
  Undefined names and attributes are errors too, unless `| default(...)` replaces them, because a silent empty
  string would hide a gap in the subset.

As in Airflow, only strings written in the DAG file are rendered. Values that come from task outputs (XComArgs) or
DAG params are resolved and inserted as they are, never rendered.
"""

from __future__ import annotations

import ast
import json
import operator
import os
import re

from .notset import NOTSET

ENGINE_VARIABLE = "LEOFLOW_TEMPLATE_ENGINE"
_MARKERS = ("{{", "{%", "{#")
_JINJA2 = NOTSET  # the jinja2 module, or None when it cannot be imported; looked up once


class TemplateError(Exception):
    """A template could not be rendered (undefined name, bad expression, missing template file)."""


class UnsupportedTemplate(TemplateError):
    """The built-in engine cannot render this template; jinja2 can."""


def has_template(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


def _jinja2():
    global _JINJA2
    if _JINJA2 is NOTSET:
        try:
            import jinja2
            import jinja2.ext
            import jinja2.nativetypes
            import jinja2.sandbox  # noqa: F401 - imported once, here
        except ImportError:
            _JINJA2 = None
        else:
            _JINJA2 = jinja2
    return _JINJA2


def engine() -> str:
    """ "jinja2" or "builtin": the engine that renders templates in this process."""
    choice = os.environ.get(ENGINE_VARIABLE, "").strip().lower()
    if choice == "builtin":
        return "builtin"
    if _jinja2() is not None:
        return "jinja2"
    if choice == "jinja2":
        raise TemplateError(f"{ENGINE_VARIABLE}=jinja2 but jinja2 is not installed in the task image")
    return "builtin"


# -- Airflow's filters --------------------------------------------------------------------------------------------


def _ds(value):
    return value.strftime("%Y-%m-%d")


def _ds_nodash(value):
    return value.strftime("%Y%m%d")


def _ts(value):
    return value.isoformat()


def _ts_nodash(value):
    return value.strftime("%Y%m%dT%H%M%S")


def _ts_nodash_with_tz(value):
    return value.isoformat().replace("-", "").replace(":", "")


AIRFLOW_FILTERS = {
    "ds": _ds,
    "ds_nodash": _ds_nodash,
    "ts": _ts,
    "ts_nodash": _ts_nodash,
    "ts_nodash_with_tz": _ts_nodash_with_tz,
}


def _user_macros(dag) -> dict:
    return dict(getattr(dag, "user_defined_macros", None) or {})


def _user_filters(dag) -> dict:
    return dict(getattr(dag, "user_defined_filters", None) or {})


def _is_native(dag) -> bool:
    return bool(getattr(dag, "render_template_as_native_obj", False))


def search_path(dag) -> list:
    """Where template files are looked up: the DAG file's folder, then the DAG's template_searchpath."""
    paths = []
    fileloc = getattr(dag, "fileloc", None)
    if fileloc:
        paths.append(os.path.dirname(fileloc))
    extra = getattr(dag, "template_searchpath", None)
    if isinstance(extra, str):
        extra = [extra]
    paths.extend(extra or [])
    return paths or [os.getcwd()]


# -- jinja2 ---------------------------------------------------------------------------------------------------------

_ENVIRONMENTS: dict = {}


def _jinja_environment(dag):
    key = id(dag)
    cached = _ENVIRONMENTS.get(key)
    if cached is not None and cached[0] is dag:
        return cached[1]
    jinja2 = _jinja2()
    options = {"extensions": ["jinja2.ext.do"], "cache_size": 0, "loader": jinja2.FileSystemLoader(search_path(dag))}
    undefined = getattr(dag, "template_undefined", None)
    if undefined is not None:
        options["undefined"] = undefined
    options.update(getattr(dag, "jinja_environment_kwargs", None) or {})
    if _is_native(dag):
        environment = jinja2.nativetypes.NativeEnvironment(**options)
    else:

        class SandboxedEnvironment(jinja2.sandbox.SandboxedEnvironment):
            """Airflow's sandbox: `_name` attributes are allowed, dunders are not."""

            def is_safe_attribute(self, obj, attr, value):
                if attr.startswith("__"):
                    return False
                return not jinja2.sandbox.is_internal_attribute(obj, attr)

        environment = SandboxedEnvironment(**options)
    environment.filters.update(AIRFLOW_FILTERS)
    environment.filters.update(_user_filters(dag))
    environment.globals.update(_user_macros(dag))
    _ENVIRONMENTS[key] = (dag, environment)
    return environment


def _jinja_render(template, context):
    jinja2 = _jinja2()
    try:
        return template.render(context)
    except jinja2.TemplateError as err:
        raise TemplateError(f"{type(err).__name__}: {err}") from err


# -- the built-in subset --------------------------------------------------------------------------------------------

_TAG = re.compile(r"\{\{|\{%|\{#")
_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}
_CONSTANTS = {"true": True, "false": False, "none": None, "True": True, "False": False, "None": None}
_INSTALL = "install jinja2 in the task image for full Jinja"


class _Undefined:
    """A missing name, attribute or key: an error as soon as it is used, unless `| default(...)` replaces it."""

    def __init__(self, what: str):
        self.what = what


def _default(value, default_value="", boolean=False):
    if isinstance(value, _Undefined) or (boolean and not value):
        return default_value
    return value


def _join(value, separator="", attribute=None):
    items = value if attribute is None else [_lookup(item, attribute) for item in value]
    return separator.join(str(item) for item in items)


def _round(value, precision=0, method="common"):
    if method == "ceil":
        import math

        return math.ceil(value * 10**precision) / 10**precision
    if method == "floor":
        import math

        return math.floor(value * 10**precision) / 10**precision
    return round(value, precision)


_BUILTIN_FILTERS = {
    **AIRFLOW_FILTERS,
    "default": _default,
    "d": _default,
    "upper": lambda v: str(v).upper(),
    "lower": lambda v: str(v).lower(),
    "title": lambda v: str(v).title(),
    "capitalize": lambda v: str(v).capitalize(),
    "trim": lambda v, chars=None: str(v).strip(chars),
    "string": str,
    "int": lambda v, default=0: _to_number(int, v, default),
    "float": lambda v, default=0.0: _to_number(float, v, default),
    "length": len,
    "count": len,
    "join": _join,
    "replace": lambda v, old, new, count=-1: str(v).replace(old, new, count),
    "tojson": lambda v, indent=None: json.dumps(v, indent=indent, sort_keys=True),
    "first": lambda v: next(iter(v)),
    "last": lambda v: list(v)[-1],
    "abs": abs,
    "round": _round,
    "list": list,
}


def _to_number(kind, value, default):
    try:
        return kind(value)
    except (TypeError, ValueError):
        return default


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _lookup(obj, name):
    """Jinja's `obj.name`: the attribute, else the item."""
    if isinstance(name, str) and name.startswith("_"):
        raise TemplateError(f"access to {name!r} is not allowed in templates")
    if isinstance(name, str):
        try:
            return getattr(obj, name)
        except AttributeError:
            pass
    try:
        return obj[name]
    except (TypeError, LookupError, AttributeError):
        return _Undefined(f"{type(obj).__name__} object has no attribute or key {name!r}")


def _subscript(obj, key):
    """Jinja's `obj[key]`: the item, else the attribute."""
    try:
        return obj[key]
    except (TypeError, LookupError, AttributeError):
        pass
    if isinstance(key, str) and not key.startswith("_"):
        try:
            return getattr(obj, key)
        except AttributeError:
            pass
    return _Undefined(f"{type(obj).__name__} object has no key or attribute {key!r}")


class _Evaluator:
    """Evaluates one `{{ expression }}` of the built-in subset (parsed with Python's ast, which shares the syntax)."""

    def __init__(self, expression: str, names, filters):
        self.expression = expression
        self.names = names
        self.filters = filters

    def unsupported(self, what: str) -> UnsupportedTemplate:
        return UnsupportedTemplate(
            f"template expression `{{{{ {self.expression} }}}}` uses {what}, which Leoflow's built-in template engine "
            f"does not support; {_INSTALL}"
        )

    def value(self, node):
        """Evaluate `node`; an undefined result is an error."""
        result = self.eval(node)
        if isinstance(result, _Undefined):
            raise TemplateError(f"template expression `{{{{ {self.expression} }}}}`: {result.what}")
        return result

    def eval(self, node):
        method = getattr(self, "eval_" + type(node).__name__, None)
        if method is None:
            raise self.unsupported(f"a {type(node).__name__} expression")
        return method(node)

    def eval_Constant(self, node):
        return node.value

    def eval_Name(self, node):
        if node.id in self.names:
            return self.names[node.id]
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        return _Undefined(f"{node.id!r} is undefined")

    def eval_Attribute(self, node):
        return _lookup(self.value(node.value), node.attr)

    def eval_Subscript(self, node):
        index = node.slice
        if type(index).__name__ == "Index":  # Python 3.8's wrapper; harmless on 3.9+
            index = index.value
        if isinstance(index, ast.Slice):
            raise self.unsupported("a slice")
        return _subscript(self.value(node.value), self.value(index))

    def _arguments(self, node):
        args = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.unsupported("*arguments")
            args.append(self.value(arg))
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.unsupported("**arguments")
            kwargs[keyword.arg] = self.value(keyword.value)
        return args, kwargs

    def eval_Call(self, node):
        function = self.value(node.func)
        if not callable(function):
            raise TemplateError(f"template expression `{{{{ {self.expression} }}}}` calls a non-callable value")
        args, kwargs = self._arguments(node)
        return function(*args, **kwargs)

    def eval_BinOp(self, node):
        if isinstance(node.op, ast.BitOr):
            return self.filter(node.left, node.right)
        operation = _BINARY.get(type(node.op))
        if operation is None:
            raise self.unsupported(f"the operator {type(node.op).__name__}")
        return operation(self.value(node.left), self.value(node.right))

    def filter(self, left, right):
        if isinstance(right, ast.Name):
            name, args, kwargs = right.id, [], {}
        elif isinstance(right, ast.Call) and isinstance(right.func, ast.Name):
            name = right.func.id
            args, kwargs = self._arguments(right)
        else:
            raise self.unsupported("a filter that is not a name")
        function = self.filters.get(name)
        if function is None:
            raise self.unsupported(f"the filter {name!r}")
        subject = self.eval(left)
        if isinstance(subject, _Undefined) and function is not _default:
            raise TemplateError(f"template expression `{{{{ {self.expression} }}}}`: {subject.what}")
        return function(subject, *args, **kwargs)

    def eval_UnaryOp(self, node):
        operand = self.value(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return +operand
        raise self.unsupported(f"the operator {type(node.op).__name__}")

    def eval_BoolOp(self, node):
        result = None
        for item in node.values:
            result = self.value(item)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result

    def eval_Compare(self, node):
        left = self.value(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            operation = _COMPARE.get(type(op))
            if operation is None:
                raise self.unsupported("a test (`is ...`)")
            right = self.value(comparator)
            if not operation(left, right):
                return False
            left = right
        return True

    def eval_IfExp(self, node):
        return self.value(node.body) if self.value(node.test) else self.value(node.orelse)

    def eval_List(self, node):
        return [self.value(item) for item in node.elts]

    def eval_Tuple(self, node):
        return tuple(self.value(item) for item in node.elts)

    def eval_Dict(self, node):
        if any(key is None for key in node.keys):
            raise self.unsupported("**mapping")
        return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values)}


def _evaluate(expression: str, names, filters):
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise UnsupportedTemplate(
            f"template expression `{{{{ {expression.strip()} }}}}` is not in Leoflow's built-in template subset; "
            f"{_INSTALL}"
        ) from None
    return _Evaluator(expression.strip(), names, filters).value(tree.body)


def render_builtin(text: str, context, dag=None) -> str:
    """Render `text` with the built-in subset (see the module docstring)."""
    names = {**_user_macros(dag), **context}
    filters = {**_BUILTIN_FILTERS, **_user_filters(dag)}
    out = []
    pos = 0
    strip_next = False
    while True:
        match = _TAG.search(text, pos)
        chunk = text[pos : match.start() if match else len(text)]
        if strip_next:
            chunk = chunk.lstrip()
            strip_next = False
        if match is None:
            out.append(chunk)
            break
        opener = match.group()
        closer = _CLOSERS[opener]
        end = text.find(closer, match.end())
        if end < 0:
            raise TemplateError(f"unterminated `{opener}` in template {text!r}")
        inner = text[match.end() : end]
        if inner.startswith("-"):
            chunk = chunk.rstrip()
            inner = inner[1:]
        if inner.endswith("-"):
            strip_next = True
            inner = inner[:-1]
        out.append(chunk)
        if opener == "{%":
            raise UnsupportedTemplate(
                f"template statement `{{% {inner.strip()} %}}` is not supported by Leoflow's built-in template "
                f"engine (it renders {{{{ expressions }}}} only); {_INSTALL}"
            )
        if opener == "{{":
            out.append(str(_evaluate(inner, names, filters)))
        pos = end + len(closer)
    rendered = "".join(out)
    # Jinja drops one trailing newline by default (keep_trailing_newline=False).
    return rendered[:-1] if rendered.endswith("\n") else rendered


# -- public API -----------------------------------------------------------------------------------------------------


def render_string(text: str, context, dag=None):
    """Render one template string (a str, or a native value when the DAG asks for native rendering with jinja2)."""
    if not has_template(text):
        return text
    if engine() == "jinja2":
        return _jinja_render(_jinja_environment(dag).from_string(text), context)
    return render_builtin(text, context, dag)


def render_file(name: str, context, dag=None):
    """Render a template file (a template field ending in one of the operator's template_ext)."""
    if engine() == "jinja2":
        jinja2 = _jinja2()
        try:
            template = _jinja_environment(dag).get_template(name)
        except jinja2.TemplateNotFound:
            raise TemplateError(f"template file {name!r} not found in {search_path(dag)}") from None
        return _jinja_render(template, context)
    for base in search_path(dag):
        path = os.path.join(base, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return render_builtin(fh.read(), context, dag)
    raise TemplateError(f"template file {name!r} not found in {search_path(dag)}")


def render_value(value, context, dag=None, template_ext=(), _seen=None):
    """Airflow's render_template: strings rendered, containers walked, XComArgs and DagParams resolved, not rendered."""
    from .params import DagParam
    from .xcom import XComArg

    if isinstance(value, str):
        if template_ext and value.endswith(tuple(template_ext)):
            return render_file(value, context, dag)
        return render_string(value, context, dag)
    if isinstance(value, (XComArg, DagParam)):
        return value.resolve(context)
    if isinstance(value, tuple):
        return tuple(render_value(v, context, dag, template_ext, _seen) for v in value)
    if isinstance(value, list):
        return [render_value(v, context, dag, template_ext, _seen) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, context, dag, template_ext, _seen) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return type(value)(render_value(v, context, dag, template_ext, _seen) for v in value)
    fields = getattr(value, "template_fields", None)
    if fields and not isinstance(value, type):
        # A nested object with its own template fields (Airflow renders those too), each object once.
        _seen = set() if _seen is None else _seen
        if id(value) not in _seen:
            _seen.add(id(value))
            for name in fields:
                if hasattr(value, name):
                    setattr(value, name, render_value(getattr(value, name), context, dag, (), _seen))
    return value


def render_fields(task, context, dag=None, skip=()) -> None:
    """Render `task`'s template fields in place, except the names in `skip`."""
    dag = dag if dag is not None else getattr(task, "dag", None)
    template_ext = tuple(getattr(task, "template_ext", ()) or ())
    for name in task.template_fields:
        if name in skip or not hasattr(task, name):
            continue
        setattr(task, name, render_value(getattr(task, name), context, dag, template_ext))
