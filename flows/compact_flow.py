"""The Prefect flow ``compact``: ``kwh compact`` as a scheduled deployment (daily, after the close).

A thin wrapper over ``Warehouse.compact`` (``warehouse.maintenance``): merge small
files, expire snapshots older than ``older_than_days`` and delete the files only
they held. Compaction is what keeps the lake's file and snapshot counts bounded:
with a SQLite catalog every statement that reads a table lists all the lake's
files, so a lake nobody compacts gets slower to write and to read day by day.

What it did is reported as it is: the flow returns the counts, logs them, leaves
them as a Prefect table artifact and records the run in ``meta.runs`` (flow
``compact``, the counts as its summary). Orphan files (in the data folder, not in
the catalog) are only counted: deleting them stays a decision for a person
(``kwh compact --delete-orphans``).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from warehouse import Run, Warehouse
from warehouse.lake import LakeConfig, WarehouseError

__all__ = ["compact", "compact_lake"]


def compact_lake(warehouse: str | None = None, older_than_days: float = 7) -> dict[str, Any]:
    """Compact the lake (``KWH_WAREHOUSE`` unless ``warehouse``), recorded as a run; counts and seconds."""
    if older_than_days < 0:
        raise WarehouseError(f"older_than_days must not be negative, got {older_than_days}")
    config = LakeConfig.load(warehouse)
    if not config.exists():
        raise WarehouseError(f"no warehouse at {config.root}: nothing to compact")
    run = Run.new("compact", {"warehouse": str(config.root), "older_than_days": older_than_days})
    with Warehouse(config) as wh:
        wh.record_run(run, "running")
        started = time.monotonic()
        try:
            result: dict[str, Any] = dict(wh.compact(timedelta(days=older_than_days)))
        except BaseException as exc:
            wh.record_run(run, "failed", {"error": str(exc)})
            raise
        result["seconds"] = round(time.monotonic() - started, 3)
        wh.record_run(run, "ok", result)
    return result


@flow(name="compact")
def compact(warehouse: str | None = None, older_than_days: float = 7) -> dict[str, Any]:
    """Merge small files, expire snapshots older than ``older_than_days``, delete the files they held."""
    logger = get_run_logger()
    result = compact_lake(warehouse, older_than_days)
    logger.info(
        "compacted: data files %s -> %s (%s rewritten, %s merged), %s snapshots expired, %s files deleted, "
        "%s orphan files kept, %.1f s",
        result["files_before"],
        result["files_after"],
        result["rewritten"],
        result["merged"],
        result["snapshots_expired"],
        result["files_deleted"],
        result.get("orphans", 0) - result.get("orphans_deleted", 0),
        result["seconds"],
    )
    create_table_artifact(
        key="compaction",
        table=[{"measure": k, "value": v} for k, v in result.items()],
        description="What the compaction did (warehouse.maintenance.compact)",
    )
    return result
