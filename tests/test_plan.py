"""Dry runs tell the truth: ``kwh ... --dry-run`` estimates against the requests the real run makes.

The simulator (``kwh sim``, a child process) counts the TR requests it serves
(``/_sim/stats``); each workload is planned with ``--dry-run``, then run for real,
and the estimate must be within 10 % of what the simulator served. A dry run needs
no credentials and leaves no warehouse folder behind.
"""

from __future__ import annotations

import re
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from flows.ingest import Job
from schemas import calendar as cal
from simulator.universe import Universe
from warehouse.tr_datasets import current_day

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flow_procs import KWH, Proc, clean_env, get_json, start_sim, wait_http

SEED, STOCKS = 11, 12
STOCK_CODES = [s.code for s in Universe.default(STOCKS, SEED).stocks[:3]]
STARTUP = 60.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan-sim")
    proc, url = start_sim(tmp, clean_env(tmp), STOCKS, SEED)
    try:
        assert wait_http(f"{url}/_sim/stats", proc, STARTUP), proc.output()
        yield url
    finally:
        proc.kill()


def kwh(tmp: Path, name: str, *args: str, code: int = 0) -> str:
    proc = Proc(tmp, name, [*KWH, *args], clean_env(tmp))
    got = proc.wait(240)
    out = proc.output()
    assert got == code, f"kwh {' '.join(args)} exited {got}:\n{out[-3000:]}"
    return out


def served(url: str) -> int:
    return int(get_json(f"{url}/_sim/stats").get("requests", 0))


def estimated(out: str) -> int:
    if "nothing to fetch" in out:
        return 0
    found = re.search(r"about (\d+) requests", out)
    assert found, out[-2000:]
    return int(found.group(1))


def plan_then_run(tmp: Path, url: str, name: str, *args: str) -> tuple[int, int]:
    """(estimated, served) requests of ``kwh ARGS`` on the lake ``tmp/lake``."""
    common = ["--base-url", url, "--warehouse", str(tmp / "lake")]
    guess = estimated(kwh(tmp, f"{name}-plan", *args, *common, "--dry-run"))
    before = served(url)
    kwh(tmp, name, *args, *common)
    return guess, served(url) - before


def close_enough(guess: int, real: int) -> bool:
    return abs(guess - real) <= max(1, 0.1 * real)


def test_minute_bars_of_a_past_window_count_the_pages_newer_than_it(tmp_path, sim):
    """ka10080 pages back from the latest session: a week a month ago pays for the month after it."""
    today = datetime.now(cal.KST).date()
    days = cal.trading_days(date(today.year - 1, 1, 1), today)
    start, end = days[-30], days[-25]
    guess, real = plan_then_run(
        tmp_path, sim, "minute", "backfill", "-d", "stock_bars_minute",
        "--symbols", ",".join(STOCK_CODES[:2]), "--start", str(start), "--end", str(end),
    )  # fmt: skip
    assert real > 2 * 2 * 3, "the window's own pages are a fraction of what is fetched"
    assert close_enough(guess, real), (guess, real)


def test_demo_workloads_and_the_daily_rerun_are_estimated_within_ten_percent(tmp_path, sim):
    today = datetime.now(cal.KST).date()
    days = cal.trading_days(date(today.year - 1, 1, 1), today)
    symbols = ",".join(STOCK_CODES)
    # the backfills end some sessions ago, so the daily run has a week or two to fetch per symbol
    window = ["--start", str(today.replace(year=today.year - 3)), "--end", str(days[-8])]
    guess, real = plan_then_run(
        tmp_path, sim, "daily-bars", "backfill", "-d", "stock_bars_daily", "--symbols", symbols, *window
    )
    assert close_enough(guess, real), ("daily bars", guess, real)
    month = ["--start", str(days[-30]), "--end", str(days[-12])]
    datasets = "stock_investor_institution,stock_program_trading_daily,short_selling"
    guess, real = plan_then_run(
        tmp_path, sim, "series", "backfill", "-d", datasets, "--symbols", symbols, *month
    )
    assert close_enough(guess, real), ("investor, program, short", guess, real)
    # each symbol resumes where its coverage ends: the plan must not assume the 30-day lookback
    datasets = "stock_bars_daily,stock_investor_institution,stock_program_trading_daily,short_selling"
    guess, real = plan_then_run(tmp_path, sim, "daily", "daily", "-d", datasets, "--symbols", symbols)
    assert real > 0 and close_enough(guess, real), ("kwh daily", guess, real)


def test_a_dry_run_needs_no_credentials_and_creates_no_warehouse(tmp_path):
    lake = tmp_path / "no-lake-yet"
    out = kwh(
        tmp_path, "plan-prod", "backfill", "-d", "stock_bars_daily", "--symbols", "005930",
        "--host", "prod", "--warehouse", str(lake), "--dry-run",
    )  # fmt: skip
    assert estimated(out) >= 1
    assert not lake.exists()
    out = kwh(
        tmp_path, "daily-prod", "daily", "-d", "stock_bars_daily", "--symbols", "005930",
        "--host", "prod", "--warehouse", str(lake), "--dry-run",
    )  # fmt: skip
    assert "005930" not in out or estimated(out) >= 1
    assert not lake.exists()


def test_minute_estimate_pages_from_the_latest_session():
    from flows.estimate import estimate_pages

    now = datetime(2025, 12, 30, 20, 0, tzinfo=cal.KST)
    assert current_day(now) == date(2025, 12, 30)
    recent = Job(
        "stock_bars_minute", "ka10080", "005930", {"tic_scope": "1"}, date(2025, 12, 22), date(2025, 12, 30)
    )
    old = Job(
        "stock_bars_minute", "ka10080", "005930", {"tic_scope": "1"}, date(2025, 12, 1), date(2025, 12, 5)
    )
    # 7 trading days x 381 bars / 900 a page, plus the page that reaches past the start
    assert estimate_pages(recent, now) == 7 * 381 // 900 + 1
    # the week of Dec 1 pays for every session since: 21 trading days of bars (Dec 25 a holiday)
    assert estimate_pages(old, now) == 21 * 381 // 900 + 1
    daily = Job("stock_bars_daily", "ka10081", "005930", {}, date(2025, 12, 1), date(2025, 12, 5))
    assert estimate_pages(daily, now) == 1
