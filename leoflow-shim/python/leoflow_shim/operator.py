"""BaseOperator: the task object every operator and TaskFlow task builds on.

It applies `default_args` the way Airflow's BaseOperatorMeta does (DAG, then TaskGroup, then the operator's own
default_args fill any __init__ argument not given explicitly), registers the task in its DAG and TaskGroup,
records the DAG-file line that created it, and keeps upstream/downstream links for the compiler.
"""

from __future__ import annotations

import functools
import inspect
from datetime import timedelta

from . import scope
from .dependencies import DependencyMixin, connect
from .keys import plain, validate_key
from .notset import NOTSET
from .trigger_rule import TriggerRule, coerce_trigger_rule

DEFAULT_OWNER = "airflow"
DEFAULT_RETRIES = 0
DEFAULT_RETRY_DELAY = timedelta(seconds=300)


def merged_default_args(dag, task_group, task_default_args) -> dict:
    """DAG default_args, overridden by the TaskGroup's, overridden by the operator's own."""
    merged = dict(dag.default_args) if dag is not None else {}
    if task_group is not None and task_group.default_args:
        merged.update(task_group.default_args)
    if task_default_args:
        if not isinstance(task_default_args, dict):
            raise TypeError(f"default_args must be a mapping, got {type(task_default_args).__name__}")
        merged.update(task_default_args)
    return merged


def _apply_defaults(func):
    """Wrap an operator __init__ so unspecified arguments are filled from default_args, as Airflow does."""
    signature = inspect.signature(func)
    params = [p for p in signature.parameters.values() if p.name != "self"]
    names = frozenset(
        p.name for p in params if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    )
    takes_var_kwargs = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params)
    required = frozenset(
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.default is inspect.Parameter.empty
        and p.name != "task_id"
    )

    @functools.wraps(func)
    def apply_defaults(self, *args, **kwargs):
        if args:
            raise TypeError("Use keyword arguments when initializing operators")
        state = self.__dict__
        depth = state.get("_leoflow_init_depth", 0)
        state["_leoflow_init_depth"] = depth + 1
        try:
            if "_leoflow_detached" in kwargs:
                state["_leoflow_detached"] = kwargs.pop("_leoflow_detached")
            dag = kwargs.get("dag")
            if dag is None:
                group = kwargs.get("task_group")
                dag = group.dag if group is not None else scope.current_dag()
            if dag is not None and (takes_var_kwargs or "dag" in names):
                kwargs["dag"] = dag
            task_group = kwargs.get("task_group")
            if task_group is None and dag is not None:
                task_group = scope.current_group(dag)
                if takes_var_kwargs or "task_group" in names:
                    kwargs["task_group"] = task_group
            defaults = merged_default_args(dag, task_group, kwargs.pop("default_args", None))
            for name in names:
                if name not in kwargs and name in defaults:
                    kwargs[name] = defaults[name]
            missing = required.difference(kwargs)
            if len(missing) == 1:
                raise TypeError(f"missing keyword argument {next(iter(missing))!r}")
            if missing:
                raise TypeError(f"missing keyword arguments {', '.join(repr(a) for a in sorted(missing))}")
            if takes_var_kwargs or "default_args" in names:
                kwargs["default_args"] = defaults
            func(self, **kwargs)
        finally:
            state["_leoflow_init_depth"] = depth
        if depth == 0:
            self._leoflow_after_init()

    return apply_defaults


def _did_you_mean(cls, kwargs) -> str:
    import difflib

    known = init_param_names(cls)
    hints = []
    for name in kwargs:
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            hints.append(f"{name!r} -> {close[0]!r}")
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


@functools.cache
def init_param_names(cls) -> frozenset:
    """Every keyword an operator class's __init__ chain accepts (Airflow's validate_mapping_kwargs)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.name != "self" and param.kind not in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                names.add(param.name)
    return frozenset(names)


class BaseOperator(DependencyMixin):
    """Abstract base class for all operators (Airflow's BaseOperator, structurally)."""

    template_fields: tuple = ()
    template_ext: tuple = ()
    template_fields_renderers: dict = {}
    ui_color = "#fff"
    ui_fgcolor = "#000"
    operator_extra_links: tuple = ()
    shallow_copy_attrs: tuple = ()

    # dag.json `branch` kind of branching operators ("branch", "short_circuit"); None for the others.
    _leoflow_branch = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _apply_defaults(cls.__dict__["__init__"])

    def __init__(
        self,
        *,
        task_id: str,
        owner: str = DEFAULT_OWNER,
        email=None,
        email_on_retry: bool = True,
        email_on_failure: bool = True,
        retries=NOTSET,
        retry_delay=NOTSET,
        retry_exponential_backoff=NOTSET,
        max_retry_delay=NOTSET,
        retry_policy=None,
        start_date=None,
        end_date=None,
        depends_on_past: bool = False,
        depends_on_previous_tasks=None,
        ignore_first_depends_on_past: bool = True,
        wait_for_past_depends_before_skipping: bool = False,
        wait_for_downstream: bool = False,
        dag=None,
        params=None,
        default_args=None,
        priority_weight: int = 1,
        weight_rule: str = "downstream",
        queue: str = "default",
        pool=None,
        pool_slots: int = 1,
        sla=None,
        execution_timeout=NOTSET,
        on_execute_callback=None,
        on_failure_callback=None,
        on_success_callback=None,
        on_retry_callback=None,
        on_skipped_callback=None,
        pre_execute=None,
        post_execute=None,
        trigger_rule=TriggerRule.ALL_SUCCESS,
        resources=None,
        run_as_user=None,
        map_index_template=None,
        max_active_tis_per_dag=None,
        max_active_tis_per_dagrun=None,
        executor=None,
        executor_config=None,
        do_xcom_push: bool = True,
        multiple_outputs: bool = False,
        inlets=None,
        outlets=None,
        task_group=None,
        doc=None,
        doc_md=None,
        doc_json=None,
        doc_yaml=None,
        doc_rst=None,
        task_display_name=None,
        logger_name=None,
        allow_nested_operators: bool = True,
        render_template_as_native_obj=None,
        **kwargs,
    ):
        state = self.__dict__
        kwargs.pop("_airflow_mapped_validation_only", None)
        if kwargs:
            raise TypeError(
                f"Invalid arguments were passed to {type(self).__name__} (task_id: {task_id}). "
                f"Invalid arguments were:\n**kwargs: {kwargs}{_did_you_mean(type(self), kwargs)}"
            )
        if not isinstance(task_id, str):
            raise TypeError(f"task_id must be a string, got {type(task_id).__name__}")
        detached = state.get("_leoflow_detached", False)
        if dag is None and task_group is not None:
            dag = task_group.dag
        if dag is None and not detached:
            dag = scope.current_dag()
        if task_group is None and dag is not None:
            task_group = scope.current_group(dag)
        task_id = plain(task_id)
        full_id = task_group.child_id(task_id) if task_group is not None else task_id
        validate_key(full_id, "task_id")

        state["_leoflow_upstream"] = {}
        state["_leoflow_downstream"] = {}
        state["_leoflow_knobs"] = {}
        state["_leoflow_line"] = scope.user_line()
        self.task_id = full_id
        self.dag = None
        self.task_group = None
        self.owner = owner
        self.email = email
        self.email_on_retry = email_on_retry
        self.email_on_failure = email_on_failure
        self.retries = retries
        self.retry_delay = retry_delay
        self.retry_exponential_backoff = retry_exponential_backoff
        self.max_retry_delay = max_retry_delay
        self.retry_policy = retry_policy
        if (
            execution_timeout is not NOTSET
            and execution_timeout is not None
            and not isinstance(execution_timeout, timedelta)
        ):
            raise ValueError(
                f"execution_timeout must be timedelta object but passed as type: {type(execution_timeout)}"
            )
        self.execution_timeout = execution_timeout
        self.start_date = start_date
        self.end_date = end_date
        self.depends_on_past = depends_on_past or wait_for_downstream
        self.depends_on_previous_tasks = depends_on_previous_tasks
        self.ignore_first_depends_on_past = ignore_first_depends_on_past
        self.wait_for_past_depends_before_skipping = wait_for_past_depends_before_skipping
        self.wait_for_downstream = wait_for_downstream
        self.params = dict(params or {})
        self.priority_weight = priority_weight
        self.weight_rule = weight_rule
        self.queue = queue
        self.pool = "default_pool" if pool is None else pool
        self.pool_slots = pool_slots
        if pool_slots < 1:
            raise ValueError(f"pool slots for {full_id} cannot be less than 1")
        self.on_execute_callback = on_execute_callback
        self.on_failure_callback = on_failure_callback
        self.on_success_callback = on_success_callback
        self.on_retry_callback = on_retry_callback
        self.on_skipped_callback = on_skipped_callback
        self.trigger_rule = coerce_trigger_rule(trigger_rule, full_id, dag.dag_id if dag is not None else None)
        self.resources = resources
        self.run_as_user = run_as_user
        self.map_index_template = map_index_template
        self.max_active_tis_per_dag = max_active_tis_per_dag
        self.max_active_tis_per_dagrun = max_active_tis_per_dagrun
        self.executor = executor
        self.executor_config = executor_config or {}
        self.do_xcom_push = do_xcom_push
        self.multiple_outputs = multiple_outputs
        self.inlets = list(inlets) if isinstance(inlets, (list, tuple)) else ([inlets] if inlets else [])
        self.outlets = list(outlets) if isinstance(outlets, (list, tuple)) else ([outlets] if outlets else [])
        self.doc = doc
        self.doc_md = doc_md
        self.doc_json = doc_json
        self.doc_yaml = doc_yaml
        self.doc_rst = doc_rst
        self.task_display_name = task_display_name
        self.is_setup = False
        self.is_teardown = False
        self.on_failure_fail_dagrun = False

        if not detached:
            if dag is not None:
                dag.add_task(self, task_group)
            elif task_group is not None:
                task_group.add(self)
            setup_teardown = scope.current().setup_teardown_stack
            if setup_teardown:
                setup_teardown[-1].tasks.append(self)

    # -- the knobs dag.json carries only when set ------------------------------------------------------

    def _knob(name, default, seconds=False):  # noqa: N805 - property factory used in the class body
        def getter(self):
            return self._leoflow_knobs.get(name, default)

        def setter(self, value):
            if value is NOTSET or value is None:
                self._leoflow_knobs.pop(name, None)
                return
            if seconds and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = timedelta(seconds=value)  # Airflow accepts float seconds for delays
            self._leoflow_knobs[name] = value

        return property(getter, setter)

    retries = _knob("retries", DEFAULT_RETRIES)
    retry_delay = _knob("retry_delay", DEFAULT_RETRY_DELAY, seconds=True)
    retry_exponential_backoff = _knob("retry_exponential_backoff", False)
    max_retry_delay = _knob("max_retry_delay", None, seconds=True)
    execution_timeout = _knob("execution_timeout", None)
    del _knob

    def _leoflow_after_init(self) -> None:
        """Runs once after the outermost __init__: XComArgs in template fields become upstream tasks."""
        if not self.__dict__.get("_leoflow_detached") and "_leoflow_upstream" not in self.__dict__:
            raise TypeError(
                f"{type(self).__name__}.__init__ did not call super().__init__(**kwargs); "
                "custom operators must pass task_id and the other BaseOperator arguments on"
            )
        if not self.__dict__.get("_leoflow_detached"):
            self._leoflow_link_xcom_args()

    def _leoflow_link_xcom_args(self) -> None:
        from .xcom import iter_xcom_args

        upstream = self._leoflow_upstream
        for field in self.template_fields:
            value = getattr(self, field, None)
            for arg in iter_xcom_args(value):
                producer = arg.operator
                if producer is not self and upstream.get(producer.task_id) is not producer:
                    connect(producer, self)

    # -- Airflow's read API ---------------------------------------------------------------------------

    @property
    def dag_id(self):
        return self.dag.dag_id if self.dag is not None else None

    @property
    def label(self) -> str:
        group = self.task_group
        if group is not None and group.group_id and group.prefix_group_id:
            return self.task_id[len(group.group_id) + 1 :]
        return self.task_id

    @property
    def node_id(self) -> str:
        return self.task_id

    @property
    def operator_name(self) -> str:
        return getattr(type(self), "custom_operator_name", None) or type(self).__name__

    @property
    def task_type(self) -> str:
        return type(self).__name__

    @property
    def upstream_task_ids(self) -> set:
        return set(self._leoflow_upstream)

    @property
    def downstream_task_ids(self) -> set:
        return set(self._leoflow_downstream)

    @property
    def upstream_list(self) -> list:
        return list(self._leoflow_upstream.values())

    @property
    def downstream_list(self) -> list:
        return list(self._leoflow_downstream.values())

    @property
    def roots(self) -> list:
        return [self]

    @property
    def leaves(self) -> list:
        return [self]

    @property
    def output(self):
        from .xcom import XComArg

        return XComArg(self)

    def has_dag(self) -> bool:
        return self.dag is not None

    def get_direct_relative_ids(self, upstream: bool = False) -> set:
        return self.upstream_task_ids if upstream else self.downstream_task_ids

    def get_direct_relatives(self, upstream: bool = False) -> list:
        return self.upstream_list if upstream else self.downstream_list

    # -- setup / teardown ----------------------------------------------------------------------------

    def as_setup(self):
        self.is_setup = True
        return self

    def as_teardown(self, *, setups=NOTSET, on_failure_fail_dagrun=NOTSET):
        self.is_teardown = True
        self.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
        if on_failure_fail_dagrun is not NOTSET:
            self.on_failure_fail_dagrun = on_failure_fail_dagrun
        if setups is not NOTSET and setups is not None:
            setups = [setups] if isinstance(setups, DependencyMixin) else setups
            for setup in setups:
                setup.is_setup = True
                setup >> self
        return self

    def __enter__(self):
        from .setup_teardown import enter_setup_teardown

        return enter_setup_teardown(self)

    def __exit__(self, exc_type, exc, tb):
        from .setup_teardown import exit_setup_teardown

        exit_setup_teardown()

    # -- mapping -------------------------------------------------------------------------------------

    @classmethod
    def partial(cls, **kwargs):
        from .mapping import OperatorPartial

        return OperatorPartial(cls, kwargs)

    # -- execution (used by the task runtime, never at compile time) -----------------------------------

    def execute(self, context):
        raise NotImplementedError(f"{type(self).__name__} does not implement execute()")

    def pre_execute(self, context):
        """Hook run before execute()."""

    def post_execute(self, context, result=None):
        """Hook run after execute()."""

    def render_template_fields(self, context, jinja_env=None) -> None:
        """Replace task outputs (XComArgs) and DAG params in template fields by their run-time values.

        Jinja rendering of template strings is the runtime's job; the shim keeps them as written.
        """
        from .task_context import resolve

        for field in self.template_fields:
            if hasattr(self, field):
                setattr(self, field, resolve(getattr(self, field), context))

    # -- compilation -------------------------------------------------------------------------------

    def _leoflow_spec(self, fileloc: str) -> dict:
        """The dag.json fields saying how to run this task (`type`, `entrypoint`, `branch`, `sensor`...)."""
        spec = {"type": "python", "entrypoint": f"{fileloc}:{self.task_id}"}
        if self._leoflow_branch:
            spec["branch"] = self._leoflow_branch
        return spec

    def _leoflow_inputs(self):
        """(xcom_input, call_args) for dag.json; classic operators bind XComArgs by template-field name."""
        from .xcom import encode_input, iter_xcom_args

        xcom_input = {}
        for field in self.template_fields:
            value = getattr(self, field, None)
            if any(True for _ in iter_xcom_args(value)):
                xcom_input[field] = encode_input(value, f"argument '{field}' of task '{self.task_id}'")[1]
        return xcom_input, {}

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __lt__(self, other):
        return self.task_id < other.task_id


BaseOperator.__init__ = _apply_defaults(BaseOperator.__init__)
BASE_OPERATOR_PARAMS = init_param_names(BaseOperator)


def overrides(operator, base_class, method: str) -> bool:
    """True when `operator`'s class replaces `base_class.method` (then the shim runs it as Python)."""
    return getattr(type(operator), method) is not getattr(base_class, method)
