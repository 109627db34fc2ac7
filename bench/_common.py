"""What the bench scripts share; imported before anything of the project's.

Run as a script, a bench script's folder (``bench/``) is first on ``sys.path``, where
``bench/warehouse.py`` would hide the ``warehouse`` package: importing this module takes
the folder off the path again.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["command", "emit", "machine"]

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def command(script: str) -> str:
    """The command line that ran ``script``, as a reader would type it."""
    return " ".join([".venv/bin/python", f"bench/{Path(script).name}", *sys.argv[1:]])


def machine() -> str:
    """Python, cores and the load average now (at the end of a run)."""
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {load} at the end"


def emit(lines: Sequence[str], out: Path | None) -> None:
    """Print a results table, and write it to ``out`` if given (merged into bench/results by hand)."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        out.write_text(text)
        print(f"written: {out}")
