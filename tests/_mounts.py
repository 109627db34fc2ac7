"""A read-only bind mount of a lake folder, for the tests that read a lake nobody can write.

Used by tests/test_read_api.py and tests/test_lake_safety.py; needs root and ``mount``
(skipped otherwise, or where the sandbox refuses bind mounts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

needs_mount = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="needs root to mount"
)


@contextmanager
def read_only_bind(source: Path, mnt: Path) -> Iterator[Path]:
    """``source`` mounted read-only at ``mnt`` (created), unmounted on exit; the mount is
    checked to refuse writes before it is handed out."""
    mnt.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(mnt)], capture_output=True).returncode:
        pytest.skip("bind mounts are not allowed here")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mnt)], check=True, capture_output=True)
        with pytest.raises(OSError):
            (mnt / "probe").touch()
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
