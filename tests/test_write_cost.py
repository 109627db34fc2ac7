"""Writes whose catalog work does not grow with the lake's history, grouped commits, the compact deployment.

No timing here (bench/writes.py measures): these pin what the cost depends on.
With a SQLite catalog every statement that reads a lake table lists the lake's
files, and each column DuckLake prunes by is one more full read of its per-file
statistics, so a write must send the catalog the same statements on a lake with a
long history as on a new one, and a batch of symbols must cost one delete and one
insert per dataset.
"""

from __future__ import annotations

import importlib
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from schemas.calendar import trading_days
from warehouse import Commit, Rows, Run, Span, Warehouse, dataset, options_key
from warehouse import commit as commit_mod
from warehouse.lake import WarehouseError

ROOT = Path(__file__).resolve().parent.parent
DAILY = "stock_bars_daily"
SCHEMA = {c: t for c, t in dataset(DAILY).schema.items() if c != "run_id"}
DAYS = trading_days(date(2024, 11, 1), date(2025, 2, 28))  # two years: two partitions per symbol


def _daily(symbols: list[str], days: list[date], close: int = 100) -> pl.DataFrame:
    grid = pl.DataFrame({"symbol": symbols}).join(
        pl.DataFrame({"date": days}, schema={"date": pl.Date}), how="cross"
    )
    return grid.select(
        "symbol",
        "date",
        adjusted=pl.lit(True),
        open=pl.lit(close, pl.Int64),
        high=pl.lit(close + 1, pl.Int64),
        low=pl.lit(close - 1, pl.Int64),
        close=pl.lit(close, pl.Int64),
        volume=pl.lit(1000, pl.Int64),
        turnover=pl.lit(None, pl.Int64),
    )


@pytest.fixture
def wh(tmp_path: Path):
    with Warehouse(warehouse=tmp_path / "lake") as w:
        yield w


def _catalog_reads(wh: Warehouse, action) -> dict[str, int]:
    """Run ``action`` with DuckDB's query log on; count the catalog's file listings and statistics reads."""
    con = wh.con
    con.execute("CALL truncate_duckdb_logs()")
    con.execute("CALL enable_logging(level='info', storage='memory')")
    try:
        action()
    finally:
        con.execute("CALL disable_logging()")
    messages = [
        m for (m,) in con.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog'").fetchall()
    ]
    con.execute("CALL truncate_duckdb_logs()")
    return {
        "listings": sum(
            "ducklake_data_file data" in m and m.lstrip().startswith(("SELECT", "WITH")) for m in messages
        ),
        "stats_reads": sum(
            m.count('"ducklake_file_column_stats"') + m.count(".ducklake_file_column_stats") for m in messages
        ),
    }


def test_a_write_reads_the_catalog_as_often_on_a_long_history_as_on_a_new_lake(wh):
    run = Run.new("backfill")
    symbols = [f"{i:06d}" for i in range(40)]
    wh.write(DAILY, _daily(symbols[:1], DAYS), run)
    early = _catalog_reads(wh, lambda: wh.write(DAILY, _daily(symbols[1:2], DAYS), run))
    for s in symbols[2:-1]:
        wh.write(DAILY, _daily([s], DAYS), run)
    late = _catalog_reads(wh, lambda: wh.write(DAILY, _daily(symbols[-1:], DAYS), run))
    assert early == late
    # a new symbol: one listing to find nothing to delete, one for its coverage; a statistics read each
    assert late["listings"] <= 2, late
    assert late["stats_reads"] <= 2, late
    # the same symbol again: its rows and coverage are there to replace: a few more, still bounded
    again = _catalog_reads(wh, lambda: wh.write(DAILY, _daily(symbols[5:6], DAYS, close=7), run))
    assert again["stats_reads"] <= 4, again
    assert wh.read(DAILY).height == len(symbols) * len(DAYS)
    assert wh.read(DAILY, symbols[5])["close"].unique().to_list() == [7]


def test_coverage_stays_one_row_per_symbol_and_lives_in_the_catalog(wh):
    run = Run.new("backfill")
    months = [(date(2025, 2, 1), date(2025, 2, 28)), (date(2024, 12, 1), date(2025, 1, 31))]
    months += [(date(2024, 11, 1), date(2024, 11, 30))]  # a history written newest first, window by window
    opts = options_key({"adjusted": True})
    for lo, hi in months:
        spans = [Span(s, opts, lo, hi) for s in ("005930", "000660")]
        wh.write(DAILY, _daily(["005930", "000660"], trading_days(lo, hi)), run, coverage=spans)
    cov = wh.coverage(DAILY)
    assert cov.select("symbol", "start_date", "end_date").rows() == [
        ("000660", date(2024, 11, 1), date(2025, 2, 28)),
        ("005930", date(2024, 11, 1), date(2025, 2, 28)),
    ]
    coverage_files = wh.sql(
        "SELECT coalesce(sum(file_count), 0) AS n FROM ducklake_table_info('lake') "
        "WHERE table_name = 'coverage'"
    )
    assert coverage_files["n"][0] == 0, "small coverage merges are inlined in the catalog, not files"


def test_the_delete_leaves_the_connections_optimizer_settings_as_they_were(wh):
    con = wh.con
    con.execute("SET disabled_optimizers = 'late_materialization'")
    wh.write(DAILY, _daily(["005930"], DAYS), Run.new())
    wh.write(DAILY, _daily(["005930"], DAYS[:5], close=3), Run.new())
    assert con.execute("SELECT current_setting('disabled_optimizers')").fetchone() == (
        "late_materialization",
    )


def test_a_batch_of_symbols_is_one_insert_per_dataset(wh):
    run = Run.new("backfill")
    parts = [Rows(DAILY, _daily([f"{i:06d}"], DAYS)) for i in range(12)]
    before = wh.sql("SELECT count(*) AS n FROM ducklake_table_info('lake') WHERE table_name = ?", [DAILY])
    wh.commit(Commit(run, parts))
    files = wh.sql("SELECT file_count FROM ducklake_table_info('lake') WHERE table_name = ?", [DAILY])
    assert before["n"][0] == 0 and files["file_count"][0] == 2  # one file per year partition, not 24
    writes = wh.sql("SELECT rows, replaced, symbols FROM meta.writes ORDER BY committed_at")
    assert writes.rows() == [(len(DAYS), 0, 1)] * 12  # the ledger still has a row per part


SYMS = ["A", "B", "C"]


@st.composite
def commits(draw: st.DrawFn) -> list[list[pl.DataFrame]]:
    """A few commits, each of a few parts of stock_bars_daily with overlapping keys."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        parts = []
        for _ in range(draw(st.integers(1, 4))):
            keys = draw(
                st.lists(st.tuples(st.sampled_from(SYMS), st.sampled_from(DAYS[:6])), max_size=8, unique=True)
            )
            close = draw(st.integers(1, 10**6))
            frame = pl.DataFrame(
                {"symbol": [k[0] for k in keys], "date": [k[1] for k in keys]},
                schema={"symbol": pl.String, "date": pl.Date},
            )
            parts.append(
                frame.select(
                    "symbol",
                    "date",
                    adjusted=pl.lit(True),
                    open=pl.lit(close, pl.Int64),
                    high=pl.lit(close, pl.Int64),
                    low=pl.lit(close, pl.Int64),
                    close=pl.lit(close, pl.Int64),
                    volume=pl.lit(close, pl.Int64),
                    turnover=pl.lit(None, pl.Int64),
                )
            )
        out.append(parts)
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commits())
def test_a_grouped_commit_leaves_and_counts_what_its_parts_one_by_one_would(tmp_path_factory, batches):
    """Rows, replaced counts, coverage and ledger of one commit of N parts equal N commits of one part."""
    folder = tmp_path_factory.mktemp("lakes")
    with Warehouse(warehouse=folder / "grouped") as grouped, Warehouse(warehouse=folder / "single") as single:
        for n, parts in enumerate(batches):
            run = Run(f"run-{n}")
            together = grouped.commit(Commit(run, [Rows(DAILY, p) for p in parts]))
            alone = [single.commit(Commit(run, [Rows(DAILY, p)])).writes[0] for p in parts]
            assert [(w.rows, w.replaced) for w in together.writes] == [(w.rows, w.replaced) for w in alone]
        assert_frame_equal(grouped.read(DAILY), single.read(DAILY))
        cov = "SELECT dataset, symbol, options, start_date, end_date FROM meta.coverage ORDER BY ALL"
        assert_frame_equal(grouped.sql(cov), single.sql(cov))
        ledger = "SELECT run_id, dataset, rows, replaced, symbols, start_date, end_date FROM meta.writes"
        ledger += " ORDER BY ALL"
        assert_frame_equal(grouped.sql(ledger), single.sql(ledger))


def test_a_run_whose_first_commit_failed_is_still_opened_by_the_next(wh, monkeypatch):
    run = Run.new("backfill")
    real = commit_mod.record_writes

    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(commit_mod, "record_writes", boom)
    with pytest.raises(RuntimeError, match="injected"):
        wh.write(DAILY, _daily(["005930"], DAYS), run)
    assert wh.runs().is_empty()
    monkeypatch.setattr(commit_mod, "record_writes", real)
    wh.write(DAILY, _daily(["005930"], DAYS), run)
    wh.write(DAILY, _daily(["000660"], DAYS), run)
    assert wh.runs().select("run_id", "status", "rows_written").rows() == [(run.id, "running", 2 * len(DAYS))]


# ----------------------------------------------------------------------------- the compact deployment


def test_every_deployment_in_prefect_yaml_names_an_importable_flow():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in spec["deployments"]}
    for name, d in deployments.items():
        path, _, attr = d["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        fn = getattr(module, attr)
        assert hasattr(fn, "fn") and hasattr(fn, "name"), f"{name}: {d['entrypoint']} is not a Prefect flow"
        params = set(d.get("parameters") or {})
        assert params <= set(fn.parameters.properties), f"{name}: unknown parameters {params}"
    compact = deployments["compact"]
    assert compact["entrypoint"] == "flows/compact_flow.py:compact"
    (schedule,) = compact["schedules"]
    assert schedule["timezone"] == "Asia/Seoul" and schedule["active"] is True
    minute, hour, *rest = schedule["cron"].split()
    assert rest == ["*", "*", "*"], "every day"
    assert int(hour) > 18 or (int(hour) == 18 and int(minute) > 30), "after the daily load (18:30 KST)"


def test_the_compact_flow_refuses_a_missing_lake_and_a_negative_age(tmp_path):
    from flows.compact_flow import compact_lake

    with pytest.raises(WarehouseError, match="no warehouse"):
        compact_lake(str(tmp_path / "nothing"))
    with pytest.raises(WarehouseError, match="negative"):
        compact_lake(str(tmp_path / "nothing"), older_than_days=-1)
    assert not (tmp_path / "nothing").exists()


def test_a_large_write_goes_in_slices_in_one_transaction(wh, monkeypatch):
    """Rows go in ``INSERT_ROWS`` at a time (memory), still in one commit: all or nothing, keys replaced."""
    import warehouse.writer as writer

    monkeypatch.setattr(writer, "INSERT_ROWS", 7)
    run = Run.new("backfill")
    symbols = ["005930", "000660", "035720"]
    first = _daily(symbols, DAYS)
    wh.write(DAILY, first, run)
    assert wh.read(DAILY).height == first.height
    snapshots = wh.sql("SELECT count(*) AS n FROM ducklake_snapshots('lake')")["n"][0]
    again = _daily(symbols, DAYS, close=200)  # every key again: replaced, not doubled
    result = wh.write(DAILY, again, run)
    assert result.replaced == first.height and result.rows == again.height
    got = wh.read(DAILY)
    assert got.height == first.height and got["close"].unique().to_list() == [200]
    assert wh.sql("SELECT count(*) AS n FROM ducklake_snapshots('lake')")["n"][0] == snapshots + 1
    grouped = [Rows(DAILY, _daily([s], DAYS, close=300)) for s in symbols]  # put_many, sliced too
    wh.commit(Commit(run, rows=grouped))
    assert wh.read(DAILY)["close"].unique().to_list() == [300] and wh.read(DAILY).height == first.height

    real_insert = writer._insert

    def failing_insert(con, ds, rows, order, run_id):  # two slices in, then a failure: nothing stays
        real_insert(con, ds, rows, None if order is None else order.head(2 * writer.INSERT_ROWS), run_id)
        raise RuntimeError("injected")

    monkeypatch.setattr(writer, "_insert", failing_insert)
    with pytest.raises(RuntimeError, match="injected"):
        wh.write(DAILY, _daily(symbols, DAYS, close=400), run)
    assert wh.read(DAILY)["close"].unique().to_list() == [300] and wh.read(DAILY).height == first.height
