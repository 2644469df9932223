"""Validates recorded Leoflow responses against Airflow 3.2.1's OpenAPI document.

usage: validate_airflow_schema.py <v2-rest-api-generated.yaml> <samples.json>

samples.json is a list of {method, path (Airflow's route template), status, body}; every
2xx sample's body must match the schema Airflow documents for that route, method and
status, or the component named by the sample's optional `schema` (for one line of an NDJSON
stream, which the document types only as a string) (JSON Schema 2020-12, `$ref`s resolved inside the document). A status Airflow does
not document for the route is an error too. Exits 1 listing every mismatch.
"""
import json
import sys

import jsonschema
import yaml


def main() -> int:
    spec = yaml.safe_load(open(sys.argv[1]))
    samples = json.load(open(sys.argv[2]))
    components = spec["components"]
    failures, checked = [], 0
    for s in samples:
        if not 200 <= s["status"] < 300:
            continue
        where = f'{s["method"].upper()} {s["path"]} -> {s["status"]}'
        op = spec["paths"].get(s["path"], {}).get(s["method"])
        if op is None:
            failures.append(f"{where}: not a route of Airflow's API")
            continue
        resp = op["responses"].get(str(s["status"]))
        if resp is None:
            failures.append(f"{where}: Airflow documents {sorted(op['responses'])} only")
            continue
        content = resp.get("content", {}).get("application/json")
        if "schema" in s:
            content = {"schema": {"$ref": f'#/components/schemas/{s["schema"]}'}}
        if content is None:
            if s["body"] is not None:
                failures.append(f"{where}: Airflow documents no body, got one")
            checked += 1
            continue
        schema = dict(content["schema"])
        schema["components"] = components
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        errors = sorted(validator.iter_errors(s["body"]), key=lambda e: list(e.path))
        for e in errors[:5]:
            path = "/".join(str(p) for p in e.absolute_path)
            failures.append(f"{where}: at /{path}: {e.message[:300]}")
        checked += 1
    for f in failures:
        print(f)
    print(f"{checked} responses checked against Airflow 3.2.1's schema, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
