"""The data part of a write: check a frame against its dataset, then replace its keys in the table.

``conform`` is strict (decision 3): a frame with a missing, unknown or mistyped
column, a null key or a key twice is refused whole. ``put_rows`` runs inside the
caller's transaction:

1. delete the rows whose key the frame carries (bounded by the frame's time
   range and symbols, so DuckLake prunes files by their statistics),
2. insert the frame, sorted by symbol and time so Parquet statistics prune reads.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from warehouse.datasets import RUN_ID, Dataset
from warehouse.lake import WarehouseError
from warehouse.tables import ident

__all__ = ["conform", "put_rows", "sorted_arrow"]


def conform(ds: Dataset, frame: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """``frame`` in the dataset's column order with ``run_id`` attached, or a ``WarehouseError``."""
    want = {c: t for c, t in ds.schema.items() if c != RUN_ID}
    extra = [c for c in frame.columns if c not in ds.schema]
    missing = [c for c in want if c not in frame.columns]
    if extra or missing:
        raise WarehouseError(
            f"frame does not fit dataset {ds.name}: "
            + "; ".join(
                p for p in (f"missing {missing}" if missing else "", f"unknown {extra}" if extra else "") if p
            )
        )
    wrong = [f"{c} is {frame.schema[c]}, expected {t}" for c, t in want.items() if frame.schema[c] != t]
    if wrong:
        raise WarehouseError(f"frame does not fit dataset {ds.name}: {'; '.join(wrong)}")
    out = frame.select(*want).with_columns(pl.lit(run_id, pl.String).alias(RUN_ID))
    nulls = [c for c in ds.key if out[c].null_count()]
    if nulls:
        raise WarehouseError(f"dataset {ds.name}: key columns {nulls} have nulls; nothing written")
    dup = out.filter(out.select(ds.key).is_duplicated())
    if dup.height:
        sample = dup.select(ds.key).head(1).to_dicts()[0]
        raise WarehouseError(
            f"dataset {ds.name}: {dup.height} rows share a key within one write "
            f"(e.g. {sample}); nothing written"
        )
    return out


def sorted_arrow(ds: Dataset, rows: pl.DataFrame) -> pa.Table:
    """The rows as Arrow, sorted by symbol and time (the order files are written in)."""
    order = [c for c in (ds.symbol, ds.time) if c]
    return rows.sort(order).to_arrow() if order else rows.to_arrow()


def put_rows(
    con: duckdb.DuckDBPyConnection, ds: Dataset, rows: pl.DataFrame, arrow: pa.Table, replace: bool = True
) -> int:
    """Insert ``rows`` (``arrow``: the same, sorted), first deleting rows with their keys; the count deleted.

    ``replace=False`` only appends: for callers that know the keys are new (a stream
    committing records after its committed position).
    """
    if not rows.height:
        return 0
    con.register("_incoming", arrow)
    try:
        replaced = _delete_keys(con, ds, rows) if replace else 0
        con.execute(f"INSERT INTO {ident(ds.name)} BY NAME SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")
    return replaced


def _delete_keys(con: duckdb.DuckDBPyConnection, ds: Dataset, rows: pl.DataFrame) -> int:
    where: list[str] = []
    params: list[Any] = []
    if ds.time in ds.replace_by:
        where.append(f"{ident(ds.time)} BETWEEN ? AND ?")
        params += [rows[ds.time].min(), rows[ds.time].max()]
    if ds.symbol and ds.symbol in ds.replace_by:
        where.append(f"{ident(ds.symbol)} IN (SELECT DISTINCT {ident(ds.symbol)} FROM _incoming)")
    cols = ", ".join(ident(c) for c in ds.replace_by)
    tuple_ = f"({cols})" if len(ds.replace_by) > 1 else cols
    where.append(f"{tuple_} IN (SELECT {cols} FROM _incoming)")
    result = con.execute(f"DELETE FROM {ident(ds.name)} WHERE {' AND '.join(where)}", params).fetchone()
    return int(result[0]) if result else 0
