"""What the lake's tables look like and how they come to exist.

The ``meta`` schema holds the warehouse's own bookkeeping, written in the same
transactions as the data:

- ``meta.coverage``: the days fetched per dataset, symbol and option set;
- ``meta.writes`` and ``meta.runs``: the ledger (one row per write, one per run);
- ``meta.cursors``: where an unfinished paged fetch stopped;
- ``meta.stream_positions``: how far each stream's log is committed;
- ``meta.stream_gaps``: when a stream was not receiving, per symbol, and whether it was healed.

Dataset tables are created from the registry (``warehouse.datasets``), partitioned
and commented, and gain the columns the registry adds later.

The functions here run inside a transaction the caller opened (or open one
themselves where noted); retrying on conflicts is the caller's business.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import duckdb
import polars as pl

from warehouse.datasets import Dataset
from warehouse.lake import LAKE, WarehouseError

__all__ = [
    "META",
    "atomic",
    "create_meta",
    "dataset_tables",
    "ensure_table",
    "ident",
    "now",
    "sql_type",
    "text",
]

T = TypeVar("T")

META: dict[str, dict[str, str]] = {
    "coverage": {
        "dataset": "VARCHAR",
        "symbol": "VARCHAR",
        "options": "VARCHAR",
        "start_date": "DATE",
        "end_date": "DATE",
        "run_id": "VARCHAR",
        "updated_at": "TIMESTAMPTZ",
    },
    "writes": {
        "run_id": "VARCHAR",
        "dataset": "VARCHAR",
        "rows": "BIGINT",
        "replaced": "BIGINT",
        "symbols": "INTEGER",
        "start_date": "DATE",
        "end_date": "DATE",
        "committed_at": "TIMESTAMPTZ",
    },
    "cursors": {
        "dataset": "VARCHAR",
        "symbol": "VARCHAR",
        "options": "VARCHAR",
        "api_id": "VARCHAR",
        "next_key": "VARCHAR",
        "below": "DATE",
        "run_id": "VARCHAR",
        "updated_at": "TIMESTAMPTZ",
    },
    "runs": {
        "run_id": "VARCHAR",
        "flow": "VARCHAR",
        "status": "VARCHAR",
        "started_at": "TIMESTAMPTZ",
        "finished_at": "TIMESTAMPTZ",
        "params": "VARCHAR",
        "summary": "VARCHAR",
    },
    "stream_positions": {
        "stream": "VARCHAR",
        "log_segment": "BIGINT",
        "log_offset": "BIGINT",
        "run_id": "VARCHAR",
        "committed_at": "TIMESTAMPTZ",
    },
    "stream_gaps": {
        "stream": "VARCHAR",
        "symbol": "VARCHAR",
        "start_ts": "TIMESTAMPTZ",
        "end_ts": "TIMESTAMPTZ",
        "reason": "VARCHAR",
        "run_id": "VARCHAR",
        "healed_run": "VARCHAR",
        "recorded_at": "TIMESTAMPTZ",
    },
}
_META_COMMENTS = {
    "coverage": "수집 범위: dataset, symbol, options(JSON) 별로 받아 둔 날짜 구간 (달력일, 양끝 포함)",
    "writes": "적재 원장: write 한 번에 한 행, 데이터와 같은 트랜잭션에서 기록",
    "runs": "실행 원장: flow 실행마다 한 행 (시작, 끝, 상태, 요약 JSON)",
    "cursors": "이어받기 위치: 끝나지 않은 창의 next-key (below 이후 날짜는 이미 기록됨)",
    "stream_positions": (
        "스트림 커밋 위치: 스트림마다 한 행, 로그의 (log_segment, log_offset) 앞까지의 레코드가 "
        "데이터와 같은 트랜잭션에서 커밋됨"
    ),
    "stream_gaps": (
        "스트림 공백: 연결이 끊기거나 워커가 멈춰 받지 못한 구간, 종목마다 한 행; "
        "healed_run은 틱차트(ka10079)로 메운 실행"
    ),
}
# Tables that change by a few rows per commit keep their rows in the catalog
# (DuckLake data inlining, inserts of up to N rows) instead of a Parquet file per
# commit: a stream commits its position and ledger row every fraction of a second,
# and every batch write merges its symbols' coverage. Inlined inserts into a SQLite
# catalog cost about 0.35 ms per row, so only small inserts qualify (see
# warehouse/commit.py): a coverage merge of up to 100 (symbol, option set) ranges.
# A file per commit is worse than its own cost: with a SQLite catalog every
# statement that reads a lake table lists all the lake's files (the scanner pushes
# no filter into SQLite), so each file makes every later write slower.
# meta.stream_gaps: a row per symbol, so not inlined
_INLINED = {"stream_positions": 10, "writes": 10, "runs": 10, "cursors": 10, "coverage": 100}

_SQL_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Int8: "TINYINT",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Boolean: "BOOLEAN",
    pl.Date: "DATE",
    pl.Time: "TIME",
}


def sql_type(dtype: pl.DataType) -> str:
    """The lake's column type for a Polars type (time-zone-less datetimes are refused)."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            raise WarehouseError("naive datetimes are not stored; give them a time zone")
        return "TIMESTAMPTZ"
    try:
        return _SQL_TYPES[type(dtype)]
    except KeyError:
        raise WarehouseError(f"no SQL type for {dtype}") from None


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def text(value: str) -> str:
    """A quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def now() -> datetime:
    return datetime.now(UTC)


def atomic(con: duckdb.DuckDBPyConnection, body: Callable[[], T]) -> T:
    """Run ``body`` between ``BEGIN`` and ``COMMIT``; roll back on any exception, not only DuckDB's.

    A Python error inside (a refused frame, a bug, an interrupt) must not leave the
    connection inside the transaction: the next statement would see its half.
    """
    con.execute("BEGIN")
    try:
        out = body()
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # a failed COMMIT already ended it
            con.execute("ROLLBACK")
        raise
    return out


def create_meta(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``meta`` tables that are missing (one transaction) and set their inlining options.

    A lake attached read-only is left as it is (a reader never writes).
    """
    ro = con.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = ?", [LAKE]).fetchone()
    if ro and ro[0]:
        return
    have = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'meta'", [LAKE]
    ).fetchone()
    if not have or have[0] != len(META):
        atomic(con, lambda: _create_meta_tables(con))
    # an option cannot be set on a table created in the same transaction: set it after
    # (and again on the next open, if a crash came in between)
    options = dict(
        con.execute(
            "SELECT scope_entry, value FROM ducklake_options(?) "
            "WHERE option_name = 'data_inlining_row_limit' AND scope = 'TABLE'",
            [LAKE],
        ).fetchall()
    )
    for table, limit in _INLINED.items():
        if options.get(f"meta.{table}") != str(limit):
            con.execute(
                f"CALL {LAKE}.set_option('data_inlining_row_limit', {limit}, "
                f"table_name => {text(table)}, schema => 'meta')"
            )


def _create_meta_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    for table, cols in META.items():
        body = ", ".join(f"{c} {t}" for c, t in cols.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS meta.{table} ({body})")
    existing = {
        r[0]: r[1]
        for r in con.execute(
            "SELECT table_name, comment FROM duckdb_tables() "
            "WHERE database_name = ? AND schema_name = 'meta'",
            [LAKE],
        ).fetchall()
    }
    for table, comment in _META_COMMENTS.items():
        if existing.get(table) != comment:
            con.execute(f"COMMENT ON TABLE meta.{table} IS {text(comment)}")


def ensure_table(con: duckdb.DuckDBPyConnection, ds: Dataset) -> None:
    """Create the dataset's table (partitioned, commented), or add the columns the registry gained.

    One transaction of its own. It looks inside the transaction: a table another
    process creates meanwhile is either visible here or makes this commit
    conflict (the caller retries).
    """
    atomic(con, lambda: _ensure_table(con, ds))


def _ensure_table(con: duckdb.DuckDBPyConnection, ds: Dataset) -> None:
    have = dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = 'main' AND table_name = ?",
            [LAKE, ds.name],
        ).fetchall()
    )
    table = ident(ds.name)
    if not have:
        cols = ", ".join(f"{ident(c)} {sql_type(t)}" for c, t in ds.schema.items())
        con.execute(f"CREATE TABLE {table} ({cols})")
        if ds.partition:
            con.execute(f"ALTER TABLE {table} SET PARTITIONED BY ({', '.join(ds.partition)})")
        con.execute(f"COMMENT ON TABLE {table} IS {text(ds.description)}")
        for col, comment in ds.comments.items():
            con.execute(f"COMMENT ON COLUMN {table}.{ident(col)} IS {text(comment)}")
        return
    for col, dtype in ds.schema.items():
        want = sql_type(dtype)
        if col not in have:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {ident(col)} {want}")
        elif have[col].split("(")[0] != want.split("(")[0] and not (
            have[col].startswith("TIMESTAMP WITH TIME ZONE") and want == "TIMESTAMPTZ"
        ):
            raise WarehouseError(f"{ds.name}.{col} is {have[col]} in the lake but {want} in the registry")


def dataset_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The dataset tables in the lake (schema ``main``)."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'", [LAKE]
    ).fetchall()
    return {r[0] for r in rows}
