"""Maintenance: merge small files, expire old snapshots, delete the files they held (orphans on request)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb

from warehouse.lake import LAKE
from warehouse.tables import atomic, now

__all__ = ["compact", "file_count", "sort_day"]


def compact(
    con: duckdb.DuckDBPyConnection,
    older_than: timedelta = timedelta(days=7),
    dry_run: bool = False,
    delete_orphans: bool = False,
) -> dict[str, int]:
    """Merge small files, expire snapshots older than ``older_than`` and delete the files they held.

    Files of expired snapshots are deleted only once they are ``older_than`` too, so a
    long-running reader is not cut off. Orphans (files in the data folder the catalog
    does not know: a crashed writer's, or every file of a lake whose catalog was
    replaced) are counted, and deleted only with ``delete_orphans``: a catalog that
    lost its history must not take the data with it. ``dry_run`` counts what would
    be expired and deleted and changes nothing.
    """
    cutoff = now() - older_than
    flag = ", dry_run => true" if dry_run else ""

    def count(sql: str, *params: Any) -> int:
        return len(con.execute(sql, list(params)).fetchall())

    before = file_count(con)
    rewritten = merged = 0
    if not dry_run:
        rewritten = count(f"CALL ducklake_rewrite_data_files('{LAKE}')")
        merged = count(f"CALL ducklake_merge_adjacent_files('{LAKE}')")
    expired = count(f"CALL ducklake_expire_snapshots('{LAKE}', older_than => ?{flag})", cutoff)
    cleaned = count(f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => ?{flag})", cutoff)
    orphans = orphans_deleted = count(
        f"CALL ducklake_delete_orphaned_files('{LAKE}', older_than => ?, dry_run => true)", cutoff
    )
    if delete_orphans and orphans and not dry_run:
        orphans_deleted = count(f"CALL ducklake_delete_orphaned_files('{LAKE}', older_than => ?)", cutoff)
    elif not delete_orphans:
        orphans_deleted = 0
    return {
        "files_before": before,
        "files_after": file_count(con),
        "rewritten": rewritten,
        "merged": merged,
        "snapshots_expired": expired,
        "files_deleted": cleaned + orphans_deleted,
        "orphans": orphans,
        "orphans_deleted": orphans_deleted,
    }


def file_count(con: duckdb.DuckDBPyConnection) -> int:
    """Data files in the lake (all tables)."""
    row = con.execute(f"SELECT coalesce(sum(file_count), 0) FROM ducklake_table_info('{LAKE}')").fetchone()
    return int(row[0]) if row else 0


def sort_day(con: duckdb.DuckDBPyConnection, table: str, day: date, order: tuple[str, ...]) -> int:
    """Rewrite one day of ``table`` (a ``date`` column) as rows sorted by ``order``, in one transaction.

    The day's many small micro-batch files become files in ``order`` whose statistics
    prune symbol and time ranges; readers see the day before or after, never half.
    The old files are only marked deleted: ``compact`` removes them once expired.
    """
    keys = ", ".join(order)
    source = f"{LAKE}.{table}"
    # one transaction writes one database: the sorted copy is made first, outside it
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _day AS SELECT * FROM {source} WHERE date = ? ORDER BY {keys}", [day]
    )

    def rewrite() -> int:
        copied = con.execute("SELECT count(*) FROM _day").fetchone()
        now_there = con.execute(f"SELECT count(*) FROM {source} WHERE date = ?", [day]).fetchone()
        if copied != now_there:  # rows came in since the copy: never delete what was not copied
            # "Transaction conflict": retry_transaction runs the whole sort again, copy included
            raise duckdb.TransactionException(f"Transaction conflict: {table} {day} changed while sorting")
        con.execute(f"DELETE FROM {source} WHERE date = ?", [day])
        con.execute(f"INSERT INTO {source} SELECT * FROM _day ORDER BY {keys}")
        return int(copied[0]) if copied else 0

    try:
        return atomic(con, rewrite)
    finally:
        con.execute("DROP TABLE IF EXISTS _day")
