"""Reading the lake: a dataset's rows by symbol and day, and the per-dataset status.

Reads take a connection (``Warehouse.con`` or ``warehouse.connect()``): DuckLake
gives every query a whole snapshot, so a reader never sees half a commit and
never blocks a writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
import polars as pl

from schemas.calendar import KST
from warehouse.coverage import gaps
from warehouse.datasets import dataset, datasets
from warehouse.lake import WarehouseError
from warehouse.ledger import last_writes
from warehouse.tables import dataset_tables, ident

__all__ = ["read_dataset", "status_frame"]


def read_dataset(
    con: duckdb.DuckDBPyConnection,
    name: str,
    symbols: str | Sequence[str] | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """A dataset's rows, optionally for some symbols and days (KST, both ends included), in key order.

    ``symbols``: codes, as a list or one comma-separated string. ``start``/``end``: dates
    or ``YYYY-MM-DD``. ``columns``: the columns to return (only those are read from the
    files). The bounds go into the SQL on the partition's time column and the symbol,
    so DuckLake skips the files and row groups outside them.
    """
    ds = dataset(name)
    wanted = list(ds.schema) if columns is None else _columns(ds.name, list(ds.schema), columns)
    if ds.name not in dataset_tables(con):
        return pl.DataFrame(schema=ds.schema).select(wanted)
    where: list[str] = []
    params: list[Any] = []
    if symbols is not None and ds.symbol:
        if isinstance(symbols, str):
            symbols = [s.strip() for s in symbols.split(",") if s.strip()]
        where.append(f"{ident(ds.symbol)} IN (SELECT unnest(?))")
        params.append(list(symbols))
    col = ident(ds.time)
    dated = ds.schema[ds.time] == pl.Date
    # timestamps are bounded by KST midnights, so file statistics prune (no cast per row)
    if start is not None:
        first = _day(start, "start")
        where.append(f"{col} >= ?")
        params.append(first if dated else datetime.combine(first, time(), KST))
    if end is not None:
        last = _day(end, "end")
        where.append(f"{col} {'<=' if dated else '<'} ?")
        params.append(last if dated else datetime.combine(last + timedelta(days=1), time(), KST))
    sql = f"SELECT {', '.join(ident(c) for c in wanted)} FROM {ident(ds.name)}"
    sql += f" WHERE {' AND '.join(where)}" if where else ""
    sql += " ORDER BY " + ", ".join(ident(c) for c in ds.key)
    return con.execute(sql, params).pl().select(wanted)


def _columns(name: str, have: list[str], columns: Sequence[str]) -> list[str]:
    if isinstance(columns, str):
        columns = [columns]
    unknown = [c for c in columns if c not in have]
    if unknown:
        raise WarehouseError(f"{name} has no column {', '.join(unknown)}; its columns: {', '.join(have)}")
    return list(dict.fromkeys(columns))


def _day(value: date | str, what: str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(KST).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise WarehouseError(f"{what} must be a date or YYYY-MM-DD, not {value!r}") from None


def status_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per dataset in the lake: rows, symbols, first and last time, last write and run, gap days."""
    have = dataset_tables(con)
    gap_days = dict(gaps(con).group_by("dataset").agg(pl.col("trading_days").sum()).iter_rows())
    last = last_writes(con)
    out = []
    for name, ds in datasets().items():
        if name not in have:
            continue
        sym = f"count(DISTINCT {ident(ds.symbol)})" if ds.symbol else "NULL"
        n, n_sym, first, latest = con.execute(
            f"SELECT count(*), {sym}, min({ident(ds.time)}), max({ident(ds.time)}) FROM {ident(name)}"
        ).fetchone() or (0, None, None, None)
        written, run_id = last.get(name, (None, None))
        out.append((name, n, n_sym, _when(first), _when(latest), written, run_id, int(gap_days.get(name, 0))))
    return pl.DataFrame(
        out,
        schema={
            "dataset": pl.String,
            "rows": pl.Int64,
            "symbols": pl.Int64,
            "first": pl.String,
            "last": pl.String,
            "last_write": pl.Datetime("us", "UTC"),
            "last_run": pl.String,
            "gap_days": pl.Int64,
        },
        orient="row",
    )


def _when(value: date | datetime | None) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")
    return None if value is None else str(value)
