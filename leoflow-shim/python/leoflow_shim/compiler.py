"""DAG objects -> dag.json dicts (docs/dag-json.md, without dag_version, image and source, which Rust adds)."""

from __future__ import annotations

import re

from .errors import DagDefinitionError, describe
from .graph import ancestors, find_cycle
from .timevalues import rfc3339, to_seconds
from .trigger_rule import TriggerRule, coerce_trigger_rule

SCHEMA_VERSION = "1.0"
MAX_RETRIES = 100

_PULL = re.compile(r"xcom_pull\s*\(([^)]*)\)")
_TASK_IDS = re.compile(r"task_ids\s*=\s*(\[[^\]]*\]|'[^']*'|\"[^\"]*\")")
_FIRST_ARG = re.compile(r"^\s*('[^']*'|\"[^\"]*\"|\[[^\]]*\])")
_DAG_ID = re.compile(r"dag_id\s*=\s*('([^']*)'|\"([^\"]*)\")")
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def compile_dag(dag, fileloc: str):
    """(dag.json dict, []) or (None, [DagDefinitionError, ...]) for one DAG."""
    errors: list = []
    tasks = dag.task_dict
    if not tasks:
        return None, [
            DagDefinitionError(f"DAG '{dag.dag_id}' has no tasks; Leoflow needs at least one", dag._leoflow_line)
        ]
    # Airflow adds an upstream whenever an XComArg is assigned to a template field, even after __init__.
    for task in list(tasks.values()):
        try:
            task._leoflow_link_xcom_args()
        except Exception as exc:  # noqa: BLE001 - reported with the task's line
            errors.append(DagDefinitionError(describe(exc), task._leoflow_line))
    if errors:
        return None, errors
    cycle = find_cycle(tasks)
    if cycle is not None:
        line = dag._leoflow_edge_lines.get((cycle[-2], cycle[-1]))
        return None, [
            DagDefinitionError(
                f"cycle detected in DAG '{dag.dag_id}': {' >> '.join(cycle)}; remove one of these dependencies",
                line,
            )
        ]
    task_json = []
    for task_id in sorted(tasks):
        task = tasks[task_id]
        try:
            task_json.append(compile_task(task, fileloc))
        except Exception as exc:  # noqa: BLE001 - reported with the task's line
            errors.append(DagDefinitionError(describe(exc), task._leoflow_line))
    if errors:
        return None, errors
    errors.extend(_check_setups(dag))
    errors.extend(_check_template_pulls(dag))
    errors.extend(_check_references(dag, task_json))
    if errors:
        return None, errors
    try:
        return _dag_json(dag, fileloc, task_json), []
    except Exception as exc:  # noqa: BLE001 - reported with the DAG's line
        return None, [DagDefinitionError(describe(exc), getattr(exc, "line", None) or dag._leoflow_line)]


def _dag_json(dag, fileloc: str, task_json: list) -> dict:
    out: dict = {"schema_version": SCHEMA_VERSION, "dag_id": dag.dag_id}
    if dag.description:
        out["description"] = dag.description
    owner = dag.default_args.get("owner")
    if owner:
        out["owner"] = str(owner)
    out["tags"] = sorted(dag.tags)
    out["schedule"] = dag._leoflow_schedule
    if dag.timezone and dag.timezone != "UTC":
        out["schedule_timezone"] = dag.timezone
    if dag.start_date is not None:
        out["start_date"] = rfc3339(dag.start_date)
    if dag.end_date is not None:
        out["end_date"] = rfc3339(dag.end_date)
    out["catchup"] = dag.catchup
    if dag.max_active_runs is not None:
        out["max_active_runs"] = dag.max_active_runs
    if dag.max_active_tasks is not None:
        out["max_active_tasks"] = dag.max_active_tasks
    if dag.dagrun_timeout is not None:
        seconds = to_seconds(dag.dagrun_timeout, "dagrun_timeout")
        if seconds <= 0:
            raise DagDefinitionError("dagrun_timeout must be positive", dag._leoflow_line)
        out["dagrun_timeout_seconds"] = seconds
    if dag.params:
        out["params"] = {name: dag.params.get_param(name).dump() for name in dag.params}
    if isinstance(dag.doc_md, str) and dag.doc_md:
        out["doc_md"] = dag.doc_md
    out["fileloc"] = fileloc
    out["tasks"] = task_json
    return out


def _retries(value) -> int:
    if isinstance(value, bool):
        raise TypeError("'retries' type must be int, not bool")
    try:
        retries = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"'retries' type must be int, not {type(value).__name__}") from None
    if retries < 0 or retries > MAX_RETRIES:
        raise ValueError(f"retries={retries} is outside Leoflow's range 0..{MAX_RETRIES}")
    return retries


def compile_task(task, fileloc: str) -> dict:
    spec = task._leoflow_spec(fileloc)
    out: dict = {"task_id": task.task_id, "type": spec.pop("type"), "operator": task.operator_name}
    group = task.task_group
    if group is not None and group.group_id:
        out["task_group"] = group.group_id
    if task.is_setup:
        out["is_setup"] = True
    if task.is_teardown:
        out["is_teardown"] = True
    if task._leoflow_upstream:
        out["depends_on"] = sorted(task._leoflow_upstream)
    rule = coerce_trigger_rule(task.trigger_rule, task.task_id, task.dag_id)
    if rule is not TriggerRule.ALL_SUCCESS:
        out["trigger_rule"] = rule.value
    knobs = task._leoflow_knobs
    if "retries" in knobs:
        out["retries"] = _retries(knobs["retries"])
    if "retry_delay" in knobs:
        seconds = to_seconds(knobs["retry_delay"], "retry_delay")
        if seconds < 0:
            raise ValueError("retry_delay must not be negative")
        out["retry_delay_seconds"] = seconds
    if "retry_exponential_backoff" in knobs:
        out["retry_exponential_backoff"] = bool(knobs["retry_exponential_backoff"])
    if "max_retry_delay" in knobs:
        seconds = to_seconds(knobs["max_retry_delay"], "max_retry_delay")
        if seconds < 0:
            raise ValueError("max_retry_delay must not be negative")
        out["max_retry_delay_seconds"] = seconds
    if "execution_timeout" in knobs:
        seconds = to_seconds(knobs["execution_timeout"], "execution_timeout")
        if seconds <= 0:
            raise ValueError("execution_timeout must be positive")
        out["execution_timeout_seconds"] = seconds
    for key in ("entrypoint", "http_request", "env"):
        if key in spec:
            out[key] = spec.pop(key)
    xcom_input, call_args = task._leoflow_inputs()
    if xcom_input:
        out["xcom_input"] = xcom_input
    if call_args:
        out["call_args"] = call_args
    if task.multiple_outputs:
        out["multiple_outputs"] = True
    out.update(spec)  # branch, ignore_downstream_trigger_rules, sensor
    mapping = getattr(task, "_leoflow_map", None)
    if mapping is not None:
        out["map"] = mapping
    if isinstance(task.doc_md, str) and task.doc_md:
        out["doc_md"] = task.doc_md
    return out


def _check_setups(dag) -> list:
    """Airflow's validate_setup_teardown: tasks right after a setup keep the default trigger rule."""
    errors = []
    for task in dag.task_dict.values():
        if not task.is_setup:
            continue
        for down in task._leoflow_downstream.values():
            if (
                not down.is_teardown
                and coerce_trigger_rule(down.trigger_rule, down.task_id, dag.dag_id) is not TriggerRule.ALL_SUCCESS
            ):
                errors.append(
                    DagDefinitionError(
                        f"Setup tasks must be followed with trigger rule ALL_SUCCESS: task '{down.task_id}' follows "
                        f"setup task '{task.task_id}' with trigger rule '{TriggerRule(down.trigger_rule).value}'",
                        down._leoflow_line,
                    )
                )
    return errors


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _template_values(task):
    kwargs = getattr(task, "partial_kwargs", None)
    for field in task.template_fields:
        yield kwargs.get(field) if kwargs is not None else getattr(task, field, None)


def _pulled_task_ids(text: str, dag_id: str):
    for match in _PULL.finditer(text):
        args = match.group(1)
        other_dag = _DAG_ID.search(args)
        if other_dag and (other_dag.group(2) or other_dag.group(3)) != dag_id:
            continue
        found = _TASK_IDS.search(args) or _FIRST_ARG.search(args)
        if not found:
            continue
        for quoted in _QUOTED.finditer(found.group(1)):
            yield quoted.group(1) if quoted.group(1) is not None else quoted.group(2)


def _check_template_pulls(dag) -> list:
    """Templated `xcom_pull(task_ids=...)` must name a task upstream of the one pulling, or the value may not exist."""
    errors = []
    for task in dag.task_dict.values():
        upstream = None
        for value in _template_values(task):
            for text in _strings(value):
                if "xcom_pull" not in text:
                    continue
                for pulled in _pulled_task_ids(text, dag.dag_id):
                    if pulled not in dag.task_dict:
                        errors.append(
                            DagDefinitionError(
                                f"task '{task.task_id}' pulls the XCom of task '{pulled}' in a template, but DAG "
                                f"'{dag.dag_id}' has no task '{pulled}'",
                                task._leoflow_line,
                            )
                        )
                        continue
                    if upstream is None:
                        upstream = ancestors(task)
                    if pulled not in upstream:
                        errors.append(
                            DagDefinitionError(
                                f"task '{task.task_id}' pulls the XCom of task '{pulled}' in a template, but "
                                f"'{pulled}' is not upstream of '{task.task_id}', so its value may not exist yet; "
                                f"add `{pulled} >> {task.task_id}`",
                                task._leoflow_line,
                            )
                        )
    return errors


def _check_references(dag, task_json: list) -> list:
    """Every task referenced by xcom_input or a map source must be in depends_on (dag.json's rule)."""
    from .xcom import refs_in

    errors = []
    for entry in task_json:
        upstream = set(entry.get("depends_on", ()))
        referenced = []
        for value in entry.get("xcom_input", {}).values():
            referenced.extend(refs_in(value))
        mapping = entry.get("map")
        if mapping:
            sources = mapping["expand"].values() if "expand" in mapping else [mapping["expand_kwargs"]]
            for source in sources:
                if not (isinstance(source, dict) and "literal" in source):
                    referenced.extend(refs_in(source))
        for ref in referenced:
            if ref not in upstream:
                task = dag.task_dict[entry["task_id"]]
                errors.append(
                    DagDefinitionError(
                        f"task '{entry['task_id']}' reads the output of task '{ref}', which is not upstream of it",
                        task._leoflow_line,
                    )
                )
    return errors
