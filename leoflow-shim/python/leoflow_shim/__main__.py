"""Entry point of `python3 -m leoflow_shim` (see cli.py for the commands)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
