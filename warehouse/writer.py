"""The data part of a write: check a frame against its dataset, then replace its keys in the table.

``conform`` is strict (decision 3): a frame with a missing, unknown or mistyped
column, a null key or a key twice is refused whole. ``put_rows`` runs inside the
caller's transaction:

1. delete the rows whose key the frame carries (bounded by the frame's time
   range and symbols, so DuckLake prunes files by their statistics),
2. insert the frame, in order of symbol and time so Parquet statistics prune reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import polars as pl

from warehouse.datasets import RUN_ID, Dataset
from warehouse.lake import WarehouseError
from warehouse.tables import ident

__all__ = ["conform", "insert_order", "put_many", "put_rows", "without_optimizer"]


def conform(ds: Dataset, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in the dataset's column order (all but ``run_id``, which the insert adds), or a
    ``WarehouseError``."""
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
    out = frame.select(*want)
    nulls = [c for c in ds.key if out[c].null_count()]
    if nulls:
        raise WarehouseError(f"dataset {ds.name}: key columns {nulls} have nulls; nothing written")
    if _has_duplicate(out, list(ds.key)):
        dup = out.filter(out.select(ds.key).is_duplicated())
        sample = dup.select(ds.key).head(1).to_dicts()[0]
        raise WarehouseError(
            f"dataset {ds.name}: {dup.height} rows share a key within one write "
            f"(e.g. {sample}); nothing written"
        )
    return out


def _has_duplicate(rows: pl.DataFrame, key: list[str]) -> bool:
    """Whether two rows share ``key`` (no nulls there): the sorted keys compared with their neighbours.

    Sorting a copy of the key columns takes about their size; hashing them (``is_duplicated``,
    ``n_unique``) took three times the whole frame for 1M daily bars.
    """
    if rows.height < 2:
        return False
    same = pl.all_horizontal([pl.col(c) == pl.col(c).shift() for c in key])
    return bool(rows.select(key).sort(key).select(same.any()).item())


def insert_order(ds: Dataset, rows: pl.DataFrame) -> pl.Series | None:
    """The order rows are inserted in, as row indices: by symbol and time, so Parquet statistics prune
    reads; ``None`` keeps the rows' own order.

    Indices, not a sorted copy: ``_insert`` gathers one slice at a time, so a write holds the frame
    and a slice, not the frame twice. A stream's micro-batches go in as they come: they are small
    files of one day that the close rewrites sorted (``Warehouse.sort_day``), so sorting each of
    them first is work thrown away.
    """
    order = [c for c in (ds.symbol, ds.time) if c] if ds.style != "stream" else []
    if not order or rows.height < 2:
        return None
    return rows.select(pl.arg_sort_by(order)).to_series()


def put_rows(
    con: duckdb.DuckDBPyConnection,
    ds: Dataset,
    rows: pl.DataFrame,
    order: pl.Series | None,
    run_id: str,
    replace: bool = True,
) -> int:
    """Insert ``rows`` (in ``order``, marked ``run_id``), first deleting rows with their keys; the count
    deleted.

    ``replace=False`` only appends: for callers that know the keys are new (a stream
    committing records after its committed position).
    """
    if not rows.height:
        return 0
    replaced = _delete_keys(con, ds, rows) if replace else 0
    _insert(con, ds, rows, order, run_id)
    return replaced


# Rows per INSERT: DuckDB buffers what one INSERT writes to Parquet, ~3x the rows' size; slices of
# this many keep a write's peak memory near its frame's size (a million daily bars: 4.6x -> 0.8x).
INSERT_ROWS = 100_000


def _insert(
    con: duckdb.DuckDBPyConnection, ds: Dataset, rows: pl.DataFrame, order: pl.Series | None, run_id: str
) -> None:
    """Insert ``rows`` in ``order`` into the dataset's table ``INSERT_ROWS`` at a time (in the caller's
    transaction); each slice is gathered on its own, so no sorted copy of the whole frame is held,
    and ``run_id`` is a constant of the statement, not a column of a million copies."""
    newest = pl.CompatLevel.newest()  # Arrow's string views are Polars' own: text is not copied
    for start in range(0, rows.height, INSERT_ROWS):
        part = rows.slice(start, INSERT_ROWS) if order is None else rows[order.slice(start, INSERT_ROWS)]
        con.register("_slice", part.to_arrow(compat_level=newest))
        try:
            insert = f"INSERT INTO {ident(ds.name)} BY NAME SELECT *, ?::VARCHAR AS {RUN_ID} FROM _slice"
            con.execute(insert, [run_id])
        finally:
            con.unregister("_slice")


@contextlib.contextmanager
def _incoming(con: duckdb.DuckDBPyConnection, ds: Dataset, rows: pl.DataFrame) -> Iterator[None]:
    """``rows``' key columns registered as ``_incoming``, which ``_key_filter``'s semi-join reads."""
    con.register("_incoming", rows.select(ds.replace_by).to_arrow(compat_level=pl.CompatLevel.newest()))
    try:
        yield
    finally:
        con.unregister("_incoming")


def put_many(
    con: duckdb.DuckDBPyConnection,
    ds: Dataset,
    frames: Sequence[pl.DataFrame],
    run_id: str,
    replace: bool = True,
) -> list[int]:
    """``put_rows`` of several conformed frames of one dataset, in order, as one delete and one insert.

    The result is what the frames put one after the other would leave, and each
    frame's count is the rows it would have replaced: a later frame's keys replace
    an earlier frame's rows (and count as replaced), stored rows are counted against
    the frame whose keys they carry. One statement per dataset instead of one per
    frame: with a SQLite catalog each statement that reads a table lists the lake's
    files, and each insert is a file more.
    """
    if not replace:
        rows = pl.concat(frames, how="vertical")
        put_rows(con, ds, rows, insert_order(ds, rows), run_id, replace=False)
        return [0] * len(frames)
    cols = list(ds.replace_by)
    keys = [f.select(cols).unique() for f in frames]
    # a frame's rows whose keys a later frame carries never reach the table: the later one wins
    later = keys[-1].clear()
    kept: list[pl.DataFrame] = []
    for frame, k in zip(frames[::-1], keys[::-1], strict=True):
        kept.append(frame.join(later, on=cols, how="anti", nulls_equal=True))
        later = pl.concat([later, k], how="vertical")
    rows = pl.concat(kept[::-1], how="vertical")
    replaced = [0] * len(frames)
    if not rows.height:
        return replaced
    where, params = _key_filter(ds, rows)
    with _incoming(con, ds, rows), without_optimizer(con, "join_filter_pushdown"):
        stored = con.execute(f"SELECT {_cols(cols)} FROM {ident(ds.name)} WHERE {where}", params).pl()
        if stored.height:
            con.execute(f"DELETE FROM {ident(ds.name)} WHERE {where}", params)
    _insert(con, ds, rows, insert_order(ds, rows), run_id)
    # a stored row is replaced by the first frame with its keys; a frame's own row by the next one with them
    overlap = rows.height < sum(f.height for f in frames)
    for i, k in enumerate(keys):
        if stored.height:
            replaced[i] += stored.join(k, on=cols, how="semi", nulls_equal=True).height
            stored = stored.join(k, on=cols, how="anti", nulls_equal=True)
        if not overlap:
            continue
        rest = frames[i].select(cols)
        for j in range(i + 1, len(frames)):
            if not rest.height:
                break
            replaced[j] += rest.join(keys[j], on=cols, how="semi", nulls_equal=True).height
            rest = rest.join(keys[j], on=cols, how="anti", nulls_equal=True)
    return replaced


def _cols(cols: Sequence[str]) -> str:
    return ", ".join(ident(c) for c in cols)


# A frame of at most this many symbols deletes by a literal list of them; a larger one by their range.
_SYMBOL_LIST = 256


def _delete_keys(con: duckdb.DuckDBPyConnection, ds: Dataset, rows: pl.DataFrame) -> int:
    """Delete the stored rows whose ``replace_by`` columns match a row of ``_incoming``; the count.

    The exact match is a semi-join on ``_incoming``; before it come literal bounds
    (the frame's time range, its symbols) that DuckLake compares with each file's
    min/max statistics, so only the files that may hold those keys are read.

    DuckDB would also push the semi-join's own min/max of every key column into the
    scan ("join filter pushdown"). With a SQLite catalog each pushed column is a
    full read of the catalog's per-file statistics (the scanner pushes no filter
    into SQLite), so that cost grows with every file the lake holds: the literal
    bounds prune the same files with one column's statistics, and the pushdown is
    switched off for this statement.
    """
    where, params = _key_filter(ds, rows)
    with _incoming(con, ds, rows), without_optimizer(con, "join_filter_pushdown"):
        result = con.execute(f"DELETE FROM {ident(ds.name)} WHERE {where}", params).fetchone()
    return int(result[0]) if result else 0


def _key_filter(ds: Dataset, rows: pl.DataFrame) -> tuple[str, list[Any]]:
    """The WHERE clause matching stored rows with the ``replace_by`` values of ``_incoming`` (``rows``)."""
    where: list[str] = []
    params: list[Any] = []
    if ds.time in ds.replace_by:
        where.append(f"{ident(ds.time)} BETWEEN ? AND ?")
        params += [rows[ds.time].min(), rows[ds.time].max()]
    if ds.symbol and ds.symbol in ds.replace_by:
        symbols = rows[ds.symbol].unique().sort().to_list()
        if len(symbols) <= _SYMBOL_LIST:
            where.append(f"{ident(ds.symbol)} IN ({', '.join('?' * len(symbols))})")
            params += symbols
        else:
            where.append(f"{ident(ds.symbol)} BETWEEN ? AND ?")
            params += [symbols[0], symbols[-1]]
    cols = _cols(ds.replace_by)
    tuple_ = f"({cols})" if len(ds.replace_by) > 1 else cols
    where.append(f"{tuple_} IN (SELECT {cols} FROM _incoming)")
    return " AND ".join(where), params


@contextlib.contextmanager
def without_optimizer(con: duckdb.DuckDBPyConnection, name: str) -> Iterator[None]:
    """Run the block with one more of DuckDB's optimizers disabled on ``con``, then restore the setting."""
    row = con.execute("SELECT current_setting('disabled_optimizers')").fetchone()
    before = str(row[0]) if row and row[0] else ""
    names = [n.strip() for n in before.split(",") if n.strip()]
    if name in names:
        yield
        return
    con.execute("SET disabled_optimizers = ?", [", ".join([*names, name])])
    try:
        yield
    finally:
        con.execute("SET disabled_optimizers = ?", [before])
