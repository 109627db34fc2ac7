"""Coverage: which days were fetched, per dataset, symbol and option set (``meta.coverage``).

A write merges the spans it covers into the stored ones (in the write's
transaction); a backfill asks what is ``missing`` from a window, trimmed to
trading days, and fetches only that. ``gaps`` are the trading days inside a
covered stretch's hull that were never fetched.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import polars as pl

from schemas.calendar import TZ_NAME, trading_days
from warehouse.datasets import Dataset, dataset
from warehouse.lake import WarehouseError
from warehouse.tables import now
from warehouse.writer import without_optimizer

__all__ = [
    "Span",
    "coverage_frame",
    "covered",
    "gaps",
    "missing",
    "options_key",
    "record_coverage",
    "spans_by_key",
    "spans_of",
    "uncovered",
]


@dataclass(frozen=True)
class Span:
    """Days fetched for one symbol and option set (both ends included)."""

    symbol: str  # "" for datasets without a symbol
    options: str  # options_key(...)
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise WarehouseError(f"span for {self.symbol!r} starts {self.start} after it ends {self.end}")


def options_key(options: Mapping[str, Any]) -> str:
    """The canonical text of an option set, as coverage stores it."""
    return json.dumps({k: options[k] for k in sorted(options)}, separators=(",", ":"), ensure_ascii=False)


def spans_of(ds: Dataset, frame: pl.DataFrame) -> list[Span]:
    """Each symbol and option set in ``frame`` covers its rows' first to last day (KST)."""
    if frame.is_empty():
        return []
    day = pl.col(ds.time)
    if frame.schema[ds.time] != pl.Date:
        day = day.dt.convert_time_zone(TZ_NAME).dt.date()
    group = ([ds.symbol] if ds.symbol else []) + list(ds.options)
    spans = (
        frame.group_by(group or pl.lit(1).alias("_all"))
        .agg(day.min().alias("start"), day.max().alias("end"))
        .to_dicts()
    )
    return [
        Span(
            str(s[ds.symbol]) if ds.symbol else "",
            options_key({o: s[o] for o in ds.options}),
            s["start"],
            s["end"],
        )
        for s in spans
    ]


def merge(spans: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    """Overlapping and adjacent day ranges joined, in order."""
    out: list[tuple[date, date]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract(window: tuple[date, date], covered: Sequence[tuple[date, date]]) -> list[tuple[date, date]]:
    """The parts of ``window`` outside the (merged, sorted) ``covered`` ranges."""
    start, end = window
    out: list[tuple[date, date]] = []
    cursor = start
    for lo, hi in covered:
        if hi < cursor or lo > end:
            continue
        if lo > cursor:
            out.append((cursor, min(end, lo - timedelta(days=1))))
        cursor = max(cursor, hi + timedelta(days=1))
        if cursor > end:
            break
    if cursor <= end:
        out.append((cursor, end))
    return out


def trading_trim(ranges: Iterable[tuple[date, date]]) -> list[tuple[date, date, int]]:
    """Each range shrunk to its first and last trading day, with its trading-day count; empty ones dropped."""
    out = []
    for lo, hi in ranges:
        days = trading_days(lo, hi)
        if days:
            out.append((days[0], days[-1], len(days)))
    return out


_SYMBOL_LIST = 256  # a merge of at most this many symbols selects them by a literal list

_COVERAGE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "dataset": pl.String,
    "symbol": pl.String,
    "options": pl.String,
    "start_date": pl.Date,
    "end_date": pl.Date,
    "run_id": pl.String,
    "updated_at": pl.Datetime("us", "UTC"),
}


def record_coverage(con: duckdb.DuckDBPyConnection, ds: Dataset, spans: Sequence[Span], run_id: str) -> None:
    """Merge ``spans`` into ``meta.coverage`` (inside the caller's transaction).

    Each (dataset, symbol, option set) keeps its fetched days as disjoint, non-adjacent
    ranges: the stored ranges of the pairs ``spans`` touch are read, merged with
    ``spans`` and written back, so coverage stays as small as the days it describes.
    The read and the delete select those pairs by a literal list of symbols (DuckLake
    prunes by statistics) and an exact semi-join; nothing is deleted when nothing was
    stored (a first backfill of a symbol), which saves a statement that, with a SQLite
    catalog, lists every file of the lake.
    """
    if not spans:
        return
    pairs = sorted({(s.symbol, s.options) for s in spans})
    symbols = sorted({p[0] for p in pairs})
    pair_frame = pl.DataFrame(
        [(ds.name, *p) for p in pairs],
        schema={"dataset": pl.String, "symbol": pl.String, "options": pl.String},
        orient="row",
    )
    where, params = "(dataset, symbol, options) IN (SELECT dataset, symbol, options FROM _pairs)", []
    if len(symbols) <= _SYMBOL_LIST:
        where = f"symbol IN ({', '.join('?' * len(symbols))}) AND {where}"
        params = list(symbols)
    con.register("_pairs", pair_frame.to_arrow())
    try:
        with without_optimizer(con, "join_filter_pushdown"):
            existing = con.execute(
                f"SELECT symbol, options, start_date, end_date FROM meta.coverage WHERE {where}", params
            ).fetchall()
            if existing:
                con.execute(f"DELETE FROM meta.coverage WHERE {where}", params)
    finally:
        con.unregister("_pairs")
    ranges: dict[tuple[str, str], list[tuple[date, date]]] = defaultdict(list)
    for symbol, options, start, end in existing:
        ranges[(symbol, options)].append((start, end))
    for s in spans:
        ranges[(s.symbol, s.options)].append((s.start, s.end))
    at = now()
    merged = [
        (ds.name, symbol, options, lo, hi, run_id, at)
        for (symbol, options), spans_ in ranges.items()
        for lo, hi in merge(spans_)
    ]
    con.register("_coverage", pl.DataFrame(merged, schema=_COVERAGE_SCHEMA, orient="row").to_arrow())
    try:
        con.execute("INSERT INTO meta.coverage BY NAME SELECT * FROM _coverage")
    finally:
        con.unregister("_coverage")


def coverage_frame(con: duckdb.DuckDBPyConnection, name: str | None = None) -> pl.DataFrame:
    """The stored spans, for one dataset or all."""
    sql = "SELECT dataset, symbol, options, start_date, end_date FROM meta.coverage"
    params: list[Any] = []
    if name is not None:
        sql += " WHERE dataset = ?"
        params.append(dataset(name).name)
    return con.execute(sql + " ORDER BY ALL", params).pl()


def covered(
    con: duckdb.DuckDBPyConnection, name: str, symbol: str, options: Mapping[str, Any]
) -> list[tuple[date, date]]:
    rows = con.execute(
        "SELECT start_date, end_date FROM meta.coverage WHERE dataset = ? AND symbol = ? AND options = ? "
        "ORDER BY start_date",
        [dataset(name).name, symbol, options_key(options)],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def spans_by_key(con: duckdb.DuckDBPyConnection, name: str) -> dict[tuple[str, str], list[tuple[date, date]]]:
    """Every stored span of one dataset by (symbol, options key), in one query: a plan over many
    symbols reads them once, not once per symbol (30 ms a symbol, 9 s for 300)."""
    rows = con.execute(
        "SELECT symbol, options, start_date, end_date FROM meta.coverage WHERE dataset = ? ORDER BY ALL",
        [dataset(name).name],
    ).fetchall()
    out: dict[tuple[str, str], list[tuple[date, date]]] = defaultdict(list)
    for symbol, options, lo, hi in rows:
        out[(symbol, options)].append((lo, hi))
    return dict(out)


def uncovered(spans: Iterable[tuple[date, date]], start: date, end: date) -> list[tuple[date, date]]:
    """The parts of [start, end] that ``spans`` leave, trimmed to trading days (what must be fetched)."""
    if start > end:
        raise WarehouseError(f"window starts {start} after it ends {end}")
    holes = subtract((start, end), merge(list(spans)))
    return [(lo, hi) for lo, hi, _ in trading_trim(holes)]


def missing(
    con: duckdb.DuckDBPyConnection,
    name: str,
    symbol: str,
    options: Mapping[str, Any],
    start: date,
    end: date,
) -> list[tuple[date, date]]:
    """The parts of [start, end] not yet fetched, trimmed to trading days (what a backfill must fetch)."""
    return uncovered(covered(con, name, symbol, options), start, end)


def gaps(con: duckdb.DuckDBPyConnection, name: str | None = None) -> pl.DataFrame:
    """Trading days inside each covered stretch's hull that were never fetched."""
    cov = coverage_frame(con, name)
    out = []
    for (ds_name, symbol, options), group in cov.group_by(
        ["dataset", "symbol", "options"], maintain_order=True
    ):
        if dataset(str(ds_name)).style in ("snapshot", "reference"):
            continue
        merged = merge(zip(group["start_date"], group["end_date"], strict=True))
        hull = (merged[0][0], merged[-1][1])
        for lo, hi, n in trading_trim(subtract(hull, merged)):
            out.append((ds_name, symbol, options, lo, hi, n))
    return pl.DataFrame(
        out,
        schema={
            "dataset": pl.String,
            "symbol": pl.String,
            "options": pl.String,
            "gap_start": pl.Date,
            "gap_end": pl.Date,
            "trading_days": pl.Int64,
        },
        orient="row",
    )
