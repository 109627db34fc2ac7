"""The warehouse's errors, and what the command line does with them.

::

    WarehouseError          asked for something it cannot do (bad dataset, frame, option, path): exit 2
     └── LakeError          the lake's files or folder cannot be used as they are (damaged or
                            missing catalog, read-only folder, moved lake, a missing extension): exit 1

Both read as one line naming the path and what to do; ``kwh`` prints them without a traceback.
"""

from __future__ import annotations

__all__ = ["LakeError", "WarehouseError"]


class WarehouseError(Exception):
    """The warehouse was asked for something it cannot do (bad dataset, frame, config)."""

    exit_code = 2  # bad input


class LakeError(WarehouseError):
    """The lake cannot be used as it is on disk: nothing was read or written."""

    exit_code = 1  # the environment
