"""Helper module imported by sibling_import.py (it defines no workflow, so compiling it yields nothing)."""

WAREHOUSE = "warehouse_a"


def make_command(n: int) -> str:
    return f"echo step {n}"
