"""What analysts ask most, as SQL on every user connection: the ``kst_date`` macro and a few views.

``install(con)`` creates them as TEMP objects, so they need nothing written in the
lake and work on a read-only one too; ``warehouse.connect()`` and ``kwh sql`` call it:

- ``kst_date(ts)``: the Korean trading day of a TIMESTAMPTZ. Korea has kept +09:00
  all year since 1989, so it is arithmetic on the epoch (``KST_DATE``), about four
  times faster than the ICU cast ``ts::DATE`` at Asia/Seoul, with the same days
  (``tests/test_views.py`` checks 1989-2040). Not for naive TIMESTAMPs.
- ``daily``: adjusted daily stock bars (``stock_bars_daily WHERE adjusted``): a day of a
  symbol is one row, never its raw and its adjusted bar both; raw bars are
  ``stock_bars_daily WHERE NOT adjusted``.
- ``<snapshot>_latest``: for each snapshot dataset (rankings and other answers of
  "now"), the rows of its latest fetch (``fetched_at``) per symbol and request options.
- ``symbols``: the symbol dimension from ``stock_list`` and ``sector_list``: ``symbol``,
  ``name`` (the latest listed), ``kind`` (``stock`` or ``sector``), ``markets``.

A view is created only over tables the lake has when the connection opens (DuckDB
binds a view when it is created); ``installed(con)`` lists what a connection has.
``symbols_sql(con)`` is the dimension's query for connections without the views
(the name lookup in ``warehouse.names`` uses it).
"""

from __future__ import annotations

import duckdb

from warehouse.datasets import Dataset, dataset, datasets, renames
from warehouse.lake import LAKE
from warehouse.tables import ident, text

__all__ = ["KST_DATE", "install", "installed", "lake_column", "lake_columns", "symbols_sql"]

KST_DATE = "make_timestamp(epoch_us(ts) + 32400000000)::DATE"  # +9 h in microseconds, then the UTC day
LISTS = {"stock": "stock_list", "sector": "sector_list"}
DAILY = "daily"
LATEST = "_latest"


def lake_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Each dataset table of the lake with its columns, in the lake's order."""
    out: dict[str, list[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'main' ORDER BY table_name, column_index",
        [LAKE],
    ).fetchall():
        out.setdefault(table, []).append(column)
    return out


def lake_column(have: list[str], ds: Dataset, name: str) -> str | None:
    """The lake's name of ``ds``'s column ``name``: itself, or its old name in a lake not migrated yet."""
    if name in have:
        return name
    old = next((o for o, n in renames().get(ds.name, {}).items() if n == name), None)
    return old if old in have else None


def install(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create the macro and the views (TEMP, on this connection only); the names created."""
    con.execute(f"CREATE OR REPLACE TEMP MACRO kst_date(ts) AS {KST_DATE}")
    made = ["kst_date"]
    tables = lake_columns(con)
    views: dict[str, str] = {}
    if "adjusted" in tables.get("stock_bars_daily", []):
        views[DAILY] = "SELECT * FROM stock_bars_daily WHERE adjusted"
    for ds in datasets().values():
        if ds.style == "snapshot" and ds.name in tables:
            views[ds.name + LATEST] = _latest_sql(ds, tables[ds.name])
    dim = _symbols_sql(tables)
    if dim:
        views["symbols"] = dim
    for name, sql in views.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(name)} AS {sql}")
        made.append(name)
    return made


def installed(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The macros and views ``install`` made on this connection."""
    rows = con.execute(
        "SELECT function_name FROM duckdb_functions() "
        "WHERE database_name = 'temp' AND function_name = 'kst_date' "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name = 'temp' AND NOT internal"
    ).fetchall()
    return sorted({r[0] for r in rows})


def _latest_sql(ds: Dataset, have: list[str]) -> str:
    group = [c for c in ((ds.symbol,) if ds.symbol else ()) + ds.options if c]
    cols = [lake_column(have, ds, c) for c in group]
    by = ", ".join(ident(c) for c in cols if c)
    window = f"PARTITION BY {by}" if by else ""
    return f"SELECT * FROM {ident(ds.name)} QUALIFY fetched_at = max(fetched_at) OVER ({window})"


def _symbols_sql(tables: dict[str, list[str]]) -> str | None:
    parts = []
    for kind, table in LISTS.items():
        if table not in tables:
            continue
        ds = dataset(table)
        have = tables[table]
        symbol, name = lake_column(have, ds, "symbol"), lake_column(have, ds, "name")
        market = lake_column(have, ds, ds.options[0]) if ds.options else None
        if symbol is None or name is None:
            continue
        parts.append(
            f"SELECT {ident(symbol)} AS symbol, {ident(name)} AS name, {text(kind)} AS kind, "
            f"{ident(market) if market else 'NULL'}::VARCHAR AS market, fetched_at FROM {ident(table)}"
        )
    if not parts:
        return None
    return (
        "SELECT symbol, arg_max(name, fetched_at) AS name, kind, "
        "list(DISTINCT market ORDER BY market) AS markets "
        f"FROM ({' UNION ALL '.join(parts)}) GROUP BY symbol, kind"
    )


def symbols_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """The ``symbols`` dimension's SELECT for this lake (``None``: neither list fetched yet)."""
    return _symbols_sql(lake_columns(con))
