"""Reading the lake: a dataset's rows by symbol and day, symbols by name, and the per-dataset status.

Reads take a connection (``Warehouse.con`` or ``warehouse.connect()``): DuckLake
gives every query a whole snapshot, so a reader never sees half a commit and
never blocks a writer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
import polars as pl

from schemas.calendar import KST
from warehouse.coverage import gaps
from warehouse.datasets import Dataset, dataset, datasets
from warehouse.lake import WarehouseError
from warehouse.ledger import last_writes
from warehouse.tables import dataset_tables, ident
from warehouse.views import LISTS, symbols_sql

__all__ = ["is_code", "name_kind", "read_dataset", "resolve_names", "status_frame"]

# a code has a digit and only capitals and digits (005930, 0000J0, 001, M04020000), maybe a
# venue suffix (005930_NX); anything else (삼성전자, NAVER, 3S) is looked up as a name
_CODE = re.compile(r"(?=[A-Z_]*[0-9])[0-9A-Z]{3,12}(_[A-Z]{2})?")
_SHOWN = 8  # candidates listed in an error
_NAME_KIND = {"sector_bars": "sector", "stock_bars": "stock", "gold_bars": "stock", "realtime": "stock"}


def read_dataset(
    con: duckdb.DuckDBPyConnection,
    name: str,
    symbols: str | Sequence[str] | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """A dataset's rows, optionally for some symbols and days (KST, both ends included), in key order.

    ``symbols``: codes or names (``resolve_names``), as a list or one comma-separated
    string. ``start``/``end``: dates or ``YYYY-MM-DD``. ``columns``: the columns to return
    (only those are read from the files). The bounds go into the SQL on the partition's
    time column and the symbol, so DuckLake skips the files and row groups outside them.
    """
    ds = dataset(name)
    wanted = list(ds.schema) if columns is None else _columns(ds.name, list(ds.schema), columns)
    if isinstance(symbols, str):
        symbols = [s.strip() for s in symbols.split(",") if s.strip()]
    if symbols is not None and ds.symbol:
        symbols = resolve_names(con, symbols, name_kind(ds))  # a wrong name is an error, rows or not
    empty = pl.DataFrame(schema=ds.schema).select(wanted)
    where: list[str] = []
    params: list[Any] = []
    if symbols is not None and ds.symbol:
        if not symbols:
            return empty
        # a list of constants is pushed into the scan (row groups skipped by their min/max);
        # IN (SELECT unnest(?)) is a join that reads every row group (+15% on a symbol-month)
        where.append(f"{ident(ds.symbol)} IN ({', '.join('?' * len(symbols))})")
        params += symbols
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
    try:
        return con.execute(sql, params).pl().select(wanted)
    except duckdb.CatalogException:
        if ds.name in dataset_tables(con):  # asked only now: listing the tables costs a catalog query
            raise
        return empty


def name_kind(ds: Dataset) -> str | None:
    """Which list names ``ds``'s symbols: ``sector`` (sector bars), ``stock``, or ``None`` (either)."""
    return _NAME_KIND.get(ds.family)


def is_code(token: str) -> bool:
    """Whether ``token`` is a code (passed through as it is) rather than a name to look up."""
    return _CODE.fullmatch(token) is not None


def resolve_names(
    con: duckdb.DuckDBPyConnection, tokens: Sequence[str], kind: str | None = None
) -> list[str]:
    """Codes as they are, names (``삼성전자``, ``naver``) as their code from ``stock_list``/``sector_list``.

    A name matches a listed name exactly, ignoring case and spaces; ``kind`` (``stock`` or
    ``sector``) limits the lists searched. Codes need no lake. A name matching nothing, or
    several symbols, is a ``WarehouseError`` of one line listing the candidates.
    """
    names = [t for t in tokens if not is_code(t)]
    if not names:
        return list(tokens)
    sql = symbols_sql(con)
    lists = [LISTS[kind]] if kind else list(LISTS.values())
    if sql is None:
        raise WarehouseError(
            f"{names[0]!r} is not a code, and the lake has no {' or '.join(lists)} to look names up in: "
            "run `kwh universe` first, or give codes"
        )
    dim = con.execute(
        f"SELECT symbol, name, kind FROM ({sql}) WHERE kind IN (SELECT unnest(?))",
        [[k for k, t in LISTS.items() if t in lists]],
    ).pl()
    folded = dim.with_columns(key=_fold(pl.col("name")))
    out: dict[str, str] = {}
    for token in tokens:
        if is_code(token):
            out[token] = token
            continue
        key = _fold(pl.lit(token))
        hits = folded.filter(pl.col("key") == key).unique("symbol", maintain_order=True)
        if hits.height == 1:
            out[token] = hits["symbol"][0]
            continue
        if hits.height > 1:
            raise WarehouseError(f"{token!r} is ambiguous: {_listing(hits)}; give the code")
        near = folded.filter(pl.col("key").str.contains(key, literal=True)).sort("name")
        hint = f"; did you mean {_listing(near)}" if near.height else ""
        raise WarehouseError(f"no symbol named {token!r} in {' or '.join(lists)}{hint}")
    return [out[t] for t in tokens]


def _fold(name: pl.Expr) -> pl.Expr:
    return name.str.to_lowercase().str.replace_all(r"\s+", "")


def _listing(hits: pl.DataFrame) -> str:
    shown = [f"{n} ({s})" for s, n in hits.select("symbol", "name").head(_SHOWN).iter_rows()]
    more = f" and {hits.height - _SHOWN} more" if hits.height > _SHOWN else ""
    return ", ".join(shown) + more


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
