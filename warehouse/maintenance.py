"""Maintenance: sort closed bar partitions, merge small files, expire old snapshots, delete their files."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import polars as pl

from warehouse.datasets import BAR_DATASETS, dataset
from warehouse.lake import LAKE, WarehouseError, retry_transaction
from warehouse.progress import prune_positions
from warehouse.snapshots import META
from warehouse.tables import atomic, now

__all__ = ["Partition", "closed_partitions", "compact", "file_count", "sort_closed", "sort_day", "sort_rows"]


def compact(
    con: duckdb.DuckDBPyConnection,
    older_than: timedelta = timedelta(days=7),
    dry_run: bool = False,
    delete_orphans: bool = False,
) -> dict[str, int]:
    """Sort closed bar partitions, merge small files, expire old snapshots and delete the files they held.

    Intraday bars arrive a day (or a few symbols) per file, so one symbol's month
    touches every file of the month. Each closed partition (a month of minute bars,
    a day of ticks, before the current one in KST) is rewritten sorted by symbol and
    time into few files whose statistics prune by symbol (``sort_closed``); a
    partition already laid out so is skipped. DuckLake 0.3 has no table sort order
    (``SET SORTED BY`` came in 0.4), so the sort is done here.

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
    sorting = sort_closed(con, bar_targets(), dry_run)
    rewritten = merged = 0
    if not dry_run:
        prune_positions(con)  # a stream appends its position with each commit: keep the newest
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
        **sorting,
        "rewritten": rewritten,
        "merged": merged,
        "snapshots_expired": expired,
        "files_deleted": cleaned + orphans_deleted,
        "orphans": orphans,
        "orphans_deleted": orphans_deleted,
    }


Target = tuple[str, tuple[str, ...], tuple[str, ...]]  # table, partition expressions, sort order


def bar_targets() -> list[Target]:
    """The intraday bar datasets (partitioned by their timestamp): table, partition, sort order."""
    out: list[Target] = []
    for name in BAR_DATASETS:
        ds = dataset(name)
        intraday = ds.time is not None and isinstance(ds.schema.get(ds.time), pl.Datetime)
        if intraday and ds.symbol and ds.partition:
            out.append((ds.name, tuple(ds.partition), (ds.symbol, ds.time)))
    return out


SMALL_FILE = 2 << 20  # bytes: a stream's micro-batch files are under it, the files merging them over it


def merge_small_files(con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> int:
    """Merge the small files of ``tables`` only (a stream's micro-batches during the session), and keep
    only the newest stream positions; the files merged. Unlike ``compact`` it sorts nothing, expires
    nothing and leaves the other tables alone, so a running stream's commits wait a fraction of a
    second, not minutes.

    Only files under ``SMALL_FILE`` take part: the micro-batches (one a commit, 70-200 KB at 10,000
    entries/s), not what earlier merges made of them. Without a bound DuckLake merges those again,
    so every merge rewrote the day so far (at 10,000 entries/s, merges 10 minutes apart: 14 s and
    over 1 GB); with an 8 MB bound, merges a few seconds apart still rewrote their own last output
    each time (p99 receive -> queryable 1.4 s). The day is rewritten into big sorted files at the
    close (``sort_day``, ``compact``)."""
    prune_positions(con)
    before = file_count(con)  # the call's own result does not say what it merged
    for table in tables:
        con.execute(
            f"CALL ducklake_merge_adjacent_files('{LAKE}', '{table}', max_file_size => {SMALL_FILE})"
        ).fetchall()
    return before - file_count(con)


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
    return sort_rows(con, table, "date = ?", [day], order)


def sort_rows(
    con: duckdb.DuckDBPyConnection, table: str, where: str, params: list[Any], order: tuple[str, ...]
) -> int:
    """Rewrite the rows of ``table`` matching ``where`` sorted by ``order``, in one transaction; the count.

    The row count and an order-free checksum of the rewritten rows are compared with
    the copy before the commit: on a mismatch nothing is committed. Rows arriving
    between the copy and the rewrite raise a transaction conflict (retried by the caller).
    """
    keys = ", ".join(order)
    source = f"{LAKE}.{table}"
    # one transaction writes one database: the sorted copy is made first, outside it
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _sorting AS SELECT * FROM {source} WHERE {where} ORDER BY {keys}",
        params,
    )

    def fingerprint(sql_from: str, args: list[Any]) -> tuple[int, int]:
        row = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {sql_from}", args).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def rewrite() -> int:
        copied = fingerprint("_sorting t", [])
        if fingerprint(f"{source} t WHERE {where}", params) != copied:
            # rows came in since the copy: never delete what was not copied
            # "Transaction conflict": retry_transaction runs the whole sort again, copy included
            raise duckdb.TransactionException(f"Transaction conflict: {table} {params} changed while sorting")
        con.execute(f"DELETE FROM {source} WHERE {where}", params)
        con.execute(f"INSERT INTO {source} SELECT * FROM _sorting ORDER BY {keys}")
        written = fingerprint(f"{source} t WHERE {where}", params)
        if written != copied:  # not a conflict: abort, the rollback keeps the rows as they were
            raise WarehouseError(
                f"sorting {table} {params} would change its rows ({copied[0]} rows before, "
                f"{written[0]} after, checksums differ: {copied[1] != written[1]}); nothing was changed"
            )
        return copied[0]

    try:
        return atomic(con, rewrite)
    finally:
        con.execute("DROP TABLE IF EXISTS _sorting")


def closed_partitions(
    con: duckdb.DuckDBPyConnection, table: str, partition: tuple[str, ...]
) -> list[Partition]:
    """The partitions of ``table`` before the current one (KST), with their live files.

    ``sorted`` says whether the partition is already laid out by symbol: no delete
    files, and its files (each written sorted by symbol and time) hold disjoint,
    ascending symbol ranges. A partition written by one sorted insert is sorted.
    """
    current = con.execute(
        f"SELECT {', '.join(partition)} FROM (SELECT now() AS ts, current_date AS date)"
    ).fetchone()
    rows = con.execute(
        f"""
        WITH tab AS (
            SELECT table_id FROM {META}.ducklake_table t JOIN {META}.ducklake_schema s USING (schema_id)
            WHERE t.table_name = ? AND s.schema_name = 'main'
              AND t.end_snapshot IS NULL AND s.end_snapshot IS NULL
        ), sym AS (
            SELECT column_id FROM {META}.ducklake_column
            WHERE table_id = (SELECT table_id FROM tab) AND column_name = 'symbol' AND end_snapshot IS NULL
        ), files AS (
            SELECT f.data_file_id, f.file_order,
                   list(CAST(v.partition_value AS BIGINT) ORDER BY v.partition_key_index) AS part
            FROM {META}.ducklake_data_file f
            JOIN {META}.ducklake_file_partition_value v USING (data_file_id)
            WHERE f.table_id = (SELECT table_id FROM tab) AND f.end_snapshot IS NULL
            GROUP BY ALL
        ), described AS (
            SELECT files.*, c.min_value AS lo, c.max_value AS hi,
                   EXISTS (SELECT 1 FROM {META}.ducklake_delete_file d
                           WHERE d.data_file_id = files.data_file_id AND d.end_snapshot IS NULL) AS deletes,
                   lag(c.max_value) OVER (PARTITION BY part ORDER BY c.min_value, files.data_file_id)
                       AS prev_hi
            FROM files LEFT JOIN {META}.ducklake_file_column_stats c
              ON c.data_file_id = files.data_file_id AND c.column_id = (SELECT column_id FROM sym)
        )
        SELECT part, count(*) AS files,
               bool_and(NOT deletes AND lo IS NOT NULL AND (prev_hi IS NULL OR prev_hi < lo)) AS is_sorted
        FROM described GROUP BY part ORDER BY part
        """,
        [table],
    ).fetchall()
    now_part = list(current) if current else []
    return [Partition(table, tuple(part), int(n), bool(ok)) for part, n, ok in rows if list(part) < now_part]


@dataclass(frozen=True)
class Partition:
    """One partition of a table: its key values (e.g. year and month), live data files, and layout."""

    table: str
    key: tuple[int, ...]
    files: int
    sorted: bool


def sort_closed(con: duckdb.DuckDBPyConnection, targets: list[Target], dry_run: bool) -> dict[str, int]:
    """Rewrite each closed, unsorted partition of ``targets`` (table, partition, order) sorted, one by one.

    Each partition is one transaction (``sort_rows``): a reader sees it before or after.
    Sorted partitions are skipped, so a second run does nothing.
    """
    keys = ("partitions_sorted", "partition_files_before", "partition_files_after", "partition_rows")
    out = dict.fromkeys(keys, 0)
    for table, partition, order in targets:
        if not partition:
            continue
        for part in closed_partitions(con, table, partition):
            if part.sorted:
                continue
            out["partitions_sorted"] += 1
            out["partition_files_before"] += part.files
            if dry_run:
                continue
            where = " AND ".join(f"{expr} = ?" for expr in partition)
            job = functools.partial(sort_rows, con, table, where, list(part.key), order)
            out["partition_rows"] += int(retry_transaction(job, con))
            after = [p for p in closed_partitions(con, table, partition) if p.key == part.key]
            out["partition_files_after"] += after[0].files if after else 0
    return out
