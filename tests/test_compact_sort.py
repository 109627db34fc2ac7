"""``compact`` rewrites closed months of minute bars sorted by symbol, losing and duplicating nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from flows.cli import app
from schemas.calendar import KST
from warehouse import Run, Warehouse
from warehouse.datasets import dataset
from warehouse.lake import LAKE, WarehouseError
from warehouse.maintenance import closed_partitions, sort_rows

NAME = "stock_bars_minute"
SYMBOLS = ["000660", "005930", "035420", "051910"]


def _this_month() -> date:
    return datetime.now(KST).date().replace(day=1)


def _days() -> tuple[list[date], list[date]]:
    """Three weekdays of last month (closed) and the first weekday of this month (open)."""
    this = _this_month()
    last = (this - timedelta(days=1)).replace(day=1)
    closed = [d for d in (last + timedelta(days=i) for i in range(10)) if d.weekday() < 5][:3]
    open_ = [d for d in (this + timedelta(days=i) for i in range(7)) if d.weekday() < 5][:1]
    return closed, open_


def _day(d: date, seed: int) -> pl.DataFrame:
    ds = dataset(NAME)
    stamps = [datetime.combine(d, datetime.min.time(), KST) + timedelta(hours=9, minutes=m) for m in range(5)]
    rows = [(s, t) for s in SYMBOLS for t in stamps]
    n = len(rows)
    return pl.DataFrame(
        {
            "symbol": [s for s, _ in rows],
            "ts": [t for _, t in rows],
            "date": [t.date() for _, t in rows],
            "tic_scope": [1] * n,
            "adjusted": [True] * n,
            **{c: [seed * 1000 + i for i in range(n)] for c in ("open", "high", "low", "close", "volume")},
            "turnover": [None] * n,
        },
        schema={c: t for c, t in ds.schema.items() if c != "run_id"},
    )


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    closed, open_ = _days()
    with Warehouse(warehouse=tmp_path / "lake") as w:
        for i, d in enumerate(closed + open_):  # one write per day: one file per day
            w.write(NAME, _day(d, i), Run.new())
        yield w


def _rows(wh: Warehouse) -> pl.DataFrame:
    return wh.con.execute(f"SELECT * FROM {LAKE}.{NAME}").pl().sort("symbol", "ts")


def _files(wh: Warehouse) -> pl.DataFrame:
    """Live data files of the table, with their month and the symbols in each, in file order."""
    paths = [
        r[0]
        for r in wh.con.execute(f"SELECT data_file FROM ducklake_list_files('{LAKE}', '{NAME}')").fetchall()
    ]
    return pl.DataFrame(
        [
            {"path": p, "month": m, "symbols": syms}
            for p in paths
            for m, syms in wh.con.execute(
                "SELECT min(date_trunc('month', ts))::DATE, list(symbol) FROM read_parquet(?)", [p]
            ).fetchall()
        ]
    )


def test_compact_sorts_closed_month_by_symbol_and_keeps_every_row(wh: Warehouse):
    before, files_before = _rows(wh), _files(wh)
    this = _this_month()
    assert (files_before["month"] < this).sum() == 3, "one file per closed day to begin with"
    open_files = files_before.filter(pl.col("month") == this)["path"].to_list()

    result = wh.compact(older_than=timedelta(days=7))

    assert_frame_equal(_rows(wh), before)  # the same rows, none lost or doubled
    after = _files(wh)
    closed = after.filter(pl.col("month") < this)
    assert closed.height == 1, closed
    symbols = closed["symbols"][0].to_list()
    assert symbols == sorted(symbols) and len(symbols) == 3 * 5 * len(SYMBOLS), "the file is in symbol order"
    assert after.filter(pl.col("month") == this)["path"].to_list() == open_files, "current month untouched"
    assert result["partitions_sorted"] == 1
    assert (result["partition_files_before"], result["partition_files_after"]) == (3, 1)
    assert result["partition_rows"] == 3 * 5 * len(SYMBOLS)
    assert result["files_before"] > result["files_after"]

    again = wh.compact(older_than=timedelta(days=7))
    assert again["partitions_sorted"] == 0 and again["partition_rows"] == 0
    assert _files(wh)["path"].sort().to_list() == after["path"].sort().to_list(), (
        "a second compact does nothing"
    )
    assert_frame_equal(_rows(wh), before)


def test_dry_run_counts_the_partitions_and_changes_nothing(wh: Warehouse):
    files = _files(wh)["path"].sort().to_list()
    result = wh.compact(dry_run=True)
    assert (result["partitions_sorted"], result["partition_files_before"]) == (1, 3)
    assert result["partition_rows"] == 0
    assert _files(wh)["path"].sort().to_list() == files
    parts = closed_partitions(wh.con, NAME, ("year(ts)", "month(ts)"))
    assert [(p.files, p.sorted) for p in parts] == [(3, False)]


class _Faulty:
    """A connection whose sorted INSERT is followed by ``extra`` (a writer bug that changes the rows)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, extra: str) -> None:
        self.con, self.extra = con, extra

    def execute(self, sql: str, params: object = None) -> duckdb.DuckDBPyConnection:
        out = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        if sql.startswith(f"INSERT INTO {LAKE}.{NAME}"):
            self.con.execute(self.extra)
        return out


@pytest.mark.parametrize(
    "extra",
    [
        f"INSERT INTO {LAKE}.{NAME} SELECT * FROM _sorting LIMIT 1",  # a duplicated row: the count differs
        f"UPDATE {LAKE}.{NAME} SET close = close + 1 WHERE symbol = '{SYMBOLS[0]}'",  # same count, other rows
    ],
)
def test_a_rewrite_that_would_change_the_rows_is_rolled_back(wh: Warehouse, extra: str):
    before, files = _rows(wh), _files(wh)["path"].sort().to_list()
    closed, _ = _days()
    with pytest.raises(WarehouseError, match="would change its rows"):
        sort_rows(_Faulty(wh.con, extra), NAME, "date = ?", [closed[0]], ("symbol", "ts"))  # type: ignore[arg-type]
    assert_frame_equal(_rows(wh), before)
    assert _files(wh)["path"].sort().to_list() == files
    assert wh.compact()["partitions_sorted"] == 1  # the connection is usable and the lake unchanged
    assert_frame_equal(_rows(wh), before)


def test_kwh_compact_reports_the_partitions_it_sorted(tmp_path: Path):
    closed, open_ = _days()
    lake = tmp_path / "lake"
    with Warehouse(warehouse=lake) as w:
        for i, d in enumerate(closed + open_):
            w.write(NAME, _day(d, i), Run.new())
    args = ["compact", "-w", str(lake), "--older-than", "0s"]
    dry = CliRunner().invoke(app, [*args, "--dry-run"], env={"COLUMNS": "200"})
    assert dry.exit_code == 0, dry.output
    assert "would sort 1 closed partitions of intraday bars by symbol (3 files)" in dry.output
    done = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert (
        f"sorted {3 * 5 * len(SYMBOLS)} rows in 1 closed partitions of intraday bars by symbol (3 files -> 1)"
        in (done.output)
    )
    again = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert "all already sorted by symbol" in again.output, again.output
