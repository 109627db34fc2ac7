"""``kwh sql``, ``kwh status``, ``kwh compact`` on a real lake."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.cli import app
from schemas.calendar import trading_days
from warehouse import Run, Span, Warehouse, dataset, options_key

runner = CliRunner()
DAYS = trading_days(date(2025, 12, 1), date(2025, 12, 30))


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "lake"
    schema = {c: t for c, t in dataset("stock_bars_daily").schema.items() if c != "run_id"}
    frame = pl.DataFrame(
        {
            "symbol": ["005930"] * len(DAYS),
            "date": DAYS,
            "adjusted": [True] * len(DAYS),
            **{c: list(range(100, 100 + len(DAYS))) for c in ("open", "high", "low", "close", "volume")},
            "turnover": [None] * len(DAYS),
        },
        schema=schema,
    )
    with Warehouse(warehouse=root) as wh:
        run = Run.new("test")
        wh.write("stock_bars_daily", frame.filter(pl.col("date") <= date(2025, 12, 10)), run)
        wh.write("stock_bars_daily", frame.filter(pl.col("date") >= date(2025, 12, 20)), run)
        wh.record_run(run, "ok", {"requests": 2})
        # a window fetched with nothing in it leaves no gap
        wh.write(
            "stock_bars_daily",
            frame.head(0),
            run,
            coverage=[Span("000660", options_key({"adjusted": True}), date(2025, 12, 1), date(2025, 12, 5))],
        )
    return root


def test_sql_csv(lake):
    result = runner.invoke(
        app,
        [
            "sql",
            "--warehouse",
            str(lake),
            "--format",
            "csv",
            "SELECT date, close FROM stock_bars_daily ORDER BY date LIMIT 2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["date,close", "2025-12-01,100", "2025-12-02,101"]


def test_sql_json_and_table(lake):
    result = runner.invoke(
        app, ["sql", "-w", str(lake), "-f", "json", "SELECT count(*) AS n FROM stock_bars_daily"]
    )
    assert result.exit_code == 0
    n = len([d for d in DAYS if d <= date(2025, 12, 10) or d >= date(2025, 12, 20)])
    assert json.loads(result.stdout) == [{"n": n}]
    table = runner.invoke(app, ["sql", "-w", str(lake), "SELECT symbol FROM stock_bars_daily LIMIT 1"])
    assert table.exit_code == 0 and "005930" in table.stdout


def test_sql_errors_exit_non_zero(lake, tmp_path):
    bad = runner.invoke(app, ["sql", "-w", str(lake), "SELECT * FROM no_such_table"])
    assert bad.exit_code == 1 and "no_such_table" in bad.output
    missing = runner.invoke(app, ["sql", "-w", str(tmp_path / "none"), "SELECT 1"])
    assert missing.exit_code == 2 and "no warehouse" in missing.output
    fmt = runner.invoke(app, ["sql", "-w", str(lake), "-f", "xml", "SELECT 1"])
    assert fmt.exit_code == 2


def test_sql_is_read_only(lake):
    result = runner.invoke(app, ["sql", "-w", str(lake), "DELETE FROM stock_bars_daily"])
    assert result.exit_code == 1 and "read-only" in result.output
    assert (
        runner.invoke(
            app, ["sql", "-w", str(lake), "-f", "csv", "SELECT count(*) FROM stock_bars_daily"]
        ).stdout
        != "0"
    )


def test_status_shows_datasets_runs_and_gaps(lake):
    result = runner.invoke(app, ["status", "--warehouse", str(lake)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "stock_bars_daily" in result.stdout
    assert "recent runs" in result.stdout and "ok" in result.stdout
    gap_days = len(trading_days(date(2025, 12, 11), date(2025, 12, 19)))
    assert f"1 gaps, {gap_days} trading days missing" in result.stdout
    assert "2025-12-11" in result.stdout and "2025-12-19" in result.stdout


def test_status_without_a_lake(tmp_path):
    result = runner.invoke(app, ["status", "--warehouse", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no warehouse" in result.output


def test_compact_dry_run_then_for_real(lake):
    dry = runner.invoke(
        app, ["compact", "-w", str(lake), "--older-than", "0s", "--dry-run"], env={"COLUMNS": "200"}
    )
    assert dry.exit_code == 0 and "dry run" in dry.stdout
    real = runner.invoke(app, ["compact", "-w", str(lake), "--older-than", "0s"], env={"COLUMNS": "200"})
    assert real.exit_code == 0, real.output
    after = runner.invoke(
        app, ["sql", "-w", str(lake), "-f", "csv", "SELECT count(*) AS n FROM stock_bars_daily"]
    )
    assert after.stdout.splitlines()[1] == str(
        len([d for d in DAYS if d <= date(2025, 12, 10) or d >= date(2025, 12, 20)])
    )
    bad = runner.invoke(app, ["compact", "-w", str(lake), "--older-than", "soon"])
    assert bad.exit_code == 2


@pytest.fixture
def small_lake(tmp_path, lake):
    """A copy of the module's lake (compaction below must not change the shared one)."""
    import shutil

    root = tmp_path / "small"
    shutil.copytree(lake, root)
    return root


def test_compact_keeps_files_the_catalog_does_not_list_unless_told(small_lake):
    (data,) = list((small_lake / "files" / "main" / "stock_bars_daily").rglob("*.parquet"))[:1]
    orphan = data.with_name("ducklake-not-in-the-catalog.parquet")
    orphan.write_bytes(data.read_bytes())
    kept = runner.invoke(
        app, ["compact", "-w", str(small_lake), "--older-than", "0s"], env={"COLUMNS": "200"}
    )
    assert kept.exit_code == 0, kept.output
    assert "1 files in" in kept.stdout and "were kept" in kept.stdout and orphan.exists()
    gone = runner.invoke(
        app,
        ["compact", "-w", str(small_lake), "--older-than", "0s", "--delete-orphans"],
        env={"COLUMNS": "200"},
    )
    assert gone.exit_code == 0, gone.output
    assert not orphan.exists()
    n = runner.invoke(
        app, ["sql", "-w", str(small_lake), "-f", "csv", "SELECT count(*) AS n FROM stock_bars_daily"]
    )
    assert n.stdout.splitlines()[1] == str(
        len([d for d in DAYS if d <= date(2025, 12, 10) or d >= date(2025, 12, 20)])
    )


def test_a_damaged_catalog_is_one_line_and_exit_1(small_lake):
    import os

    for side in small_lake.glob("catalog.sqlite-*"):
        side.unlink()
    catalog = small_lake / "catalog.sqlite"
    os.truncate(catalog, catalog.stat().st_size // 2)
    for args in (["status"], ["compact"], ["sql", "SELECT 1"]):
        result = runner.invoke(app, [args[0], "-w", str(small_lake), *args[1:]])
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert f"catalog {catalog} is cut short" in result.output
