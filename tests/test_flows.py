"""The batch pipeline from the command line: backfill, daily, universe; planning rules."""

from __future__ import annotations

from datetime import date, datetime

import httpx
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.estimate import estimate_pages
from flows.ingest import Job, complete_through
from schemas.calendar import KST, trading_days
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from warehouse import connect

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def sim():
    with SimServer(Simulator(SimConfig(n_stocks=40, rate_limit=None))) as server:
        yield server


def requests_served(sim) -> int:
    return httpx.get(f"{sim.base_url}/_sim/stats").json().get("requests", 0)


@pytest.fixture(scope="module")
def lake(tmp_path_factory, sim):
    root = tmp_path_factory.mktemp("flows") / "lake"
    result = runner.invoke(app, ["universe", "--base-url", sim.base_url, "--warehouse", str(root)], env=WIDE)
    assert result.exit_code == 0, result.output
    return root


def test_backfill_in_the_documented_form_lands_every_day_and_reruns_for_free(sim, lake):
    args = [
        "backfill", "--dataset", "stock_bars_daily", "--symbols", "005930,000660",
        "--start", "2023-01-02", "--end", "2025-12-30", "--base-url", sim.base_url, "--warehouse", str(lake),
    ]  # fmt: skip
    first = runner.invoke(app, args, env=WIDE)
    assert first.exit_code == 0, first.output
    assert "stock_bars_daily" in first.output and "requests 4, pages 4" in first.output
    days = len(trading_days(date(2023, 1, 2), date(2025, 12, 30)))
    con = connect(warehouse=lake)
    try:
        counts = dict(con.sql("SELECT symbol, count(*) FROM stock_bars_daily GROUP BY 1").fetchall())
    finally:
        con.close()
    assert counts == {"005930": days, "000660": days}
    before = requests_served(sim)
    again = runner.invoke(app, args, env=WIDE)
    assert again.exit_code == 0, again.output
    assert "requests 0, pages 0" in again.output
    assert requests_served(sim) == before


def test_dry_run_estimates_and_fetches_nothing(sim, lake):
    before = requests_served(sim)
    result = runner.invoke(
        app,
        ["backfill", "-d", "stock_bars_daily,short_selling", "--symbols", "kospi", "--start", "2024-01-02",
         "--end", "2024-12-30", "--base-url", sim.base_url, "--warehouse", str(lake), "--dry-run"],
        env=WIDE,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "ka10081" in result.output and "ka10014" in result.output
    assert "requests/s" in result.output
    assert requests_served(sim) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-d", "stock_bars_hourly"], "unknown dataset 'stock_bars_hourly'"),
        (["-d", "stock_bars_daily", "--start", "2025-02-30"], "is not a date"),
        (["-d", "stock_bars_daily", "--start", "2025-03-01", "--end", "2025-02-01"], "is after --end"),
        (["-d", "stock_bars_daily", "--start", "2999-01-01", "--end", "2999-01-02"], "is after --end"),
        (["-d", "stock_bars_daily", "--symbols", "005930,123456"], "unknown symbols"),
        (
            ["-d", "stock_bars_minute", "--symbols", "005930", "-o", "tic_scope=7"],
            "tic_scope='7' is not one of",
        ),
        (["-d", "stock_bars_daily", "--symbols", "005930", "-o", "bogus=1"], "request option(s) bogus"),
        (["-d", "stock_bars_daily", "--symbols", "005930", "-o", "novalue"], "use FIELD=VALUE"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(sim, lake, args, message):
    result = runner.invoke(
        app, ["backfill", *args, "--base-url", sim.base_url, "--warehouse", str(lake)], env=WIDE
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_a_real_host_without_keys_is_refused(lake):
    env = {**WIDE, "KIWOOM_APP_KEY": "", "KIWOOM_SECRET_KEY": ""}
    result = runner.invoke(
        app,
        [
            "backfill",
            "-d",
            "stock_bars_daily",
            "--symbols",
            "005930",
            "--host",
            "prod",
            "--warehouse",
            str(lake),
        ],
        env=env,
    )
    assert result.exit_code == 2
    assert "KIWOOM_APP_KEY" in result.output


def test_daily_twice_does_no_extra_work(sim, lake):
    args = ["daily", "-d", "stock_bars_daily", "--symbols", "005380", "--base-url", sim.base_url,
            "--warehouse", str(lake)]  # fmt: skip
    first = runner.invoke(app, args, env=WIDE)
    assert first.exit_code == 0, first.output
    assert "requests 0," not in first.output
    before = requests_served(sim)
    second = runner.invoke(app, args, env=WIDE)
    assert second.exit_code == 0, second.output
    assert "requests 0, pages 0" in second.output
    assert requests_served(sim) == before


def test_runs_are_in_the_ledger(lake):
    con = connect(warehouse=lake)
    try:
        flows = {r[0] for r in con.sql("SELECT flow FROM meta.runs WHERE status = 'ok'").fetchall()}
    finally:
        con.close()
    assert {"refresh_universe", "backfill"} <= flows


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2025, 12, 30, 18, 30, tzinfo=KST), date(2025, 12, 30)),  # after the day is final
        (datetime(2025, 12, 30, 15, 0, tzinfo=KST), date(2025, 12, 29)),  # during the session
        (datetime(2025, 12, 28, 12, 0, tzinfo=KST), date(2025, 12, 26)),  # a Sunday
    ],
)
def test_complete_through(now, expected):
    assert complete_through(now) == expected


def test_estimate_pages_follows_rows_per_page():
    DEC30 = datetime(2025, 12, 30, 20, 0, tzinfo=KST)  # pages run back from the latest session
    daily = Job("stock_bars_daily", "ka10081", "005930", {}, date(2023, 1, 2), date(2025, 12, 30))
    assert estimate_pages(daily, DEC30) == 2  # 730 trading days, 600 rows a page
    minute = Job(
        "stock_bars_minute", "ka10080", "005930", {"tic_scope": "1"}, date(2025, 12, 22), date(2025, 12, 30)
    )
    assert estimate_pages(minute, DEC30) == 3  # 6 days x 381 bars, 900 a page
    week = Job(
        "stock_bars_minute", "ka10080", "005930", {"tic_scope": "1"}, date(2025, 12, 19), date(2025, 12, 30)
    )
    assert estimate_pages(week, DEC30) == 3  # 7 days x 381 bars = 2667 (at 390 a day it would be 4 pages)
    ranking = Job("program_net_buying_top50", "ka90003", None, {}, date(2025, 12, 30), date(2025, 12, 30))
    assert estimate_pages(ranking, DEC30) == 1


def test_universe_holds_every_listed_stock_across_pages(tmp_path):
    simulated = Simulator(SimConfig(n_stocks=250, rate_limit=None))
    with SimServer(simulated) as big:
        result = runner.invoke(
            app, ["universe", "--base-url", big.base_url, "--warehouse", str(tmp_path)], env=WIDE
        )
    assert result.exit_code == 0, result.output
    con = connect(warehouse=tmp_path)
    try:
        listed = {
            r[0] for r in con.sql("SELECT symbol FROM stock_list WHERE mrkt_tp IN ('0', '10')").fetchall()
        }
    finally:
        con.close()
    assert listed == {s.code for s in simulated.market.universe.stocks}  # more than one page (100 a page)
