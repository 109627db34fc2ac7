"""A backfill killed mid-run and run again fetches only the rest: counted at the server.

Real OS processes, nothing mocked: the simulator (``kwh sim``) and ``kwh backfill``
(in-process, as the command runs by default; tests/test_prefect_deploy.py runs the same
functions as Prefect deployments), which the test SIGKILLs once the warehouse's coverage
(polled through a read-only connection) shows part of the work committed. Then the same
command runs again to completion, and a third time. The simulator's ``/_sim/stats`` counts
every TR request it receives.

Two scenarios, each killed once:

- daily, on the ``kwh sim`` process: 30 stocks of ``stock_bars_daily`` over 2010-2025 (up
  to 7 pages of 600 rows a symbol, one commit per symbol since that is under
  ``commit_pages``=40). The kill comes when at least 5 symbols are covered. The rerun's
  ka10081 requests must equal exactly the pages of the symbols not covered at the kill
  (the symbols in flight at the kill are among them and are fetched again in full).
- minute, on an in-process simulator whose market clock is fixed (2025-04-03 20:00 KST,
  so the pages are the same whenever the test runs): one stock of ``stock_bars_minute``
  over ~245 trading days (~106 pages of 900 rows, committed every 40 pages). The kill
  comes after the first chunk commit. The rerun must fetch only the rest: the pages from
  the oldest (partial) committed day back to the window's start, fewer than the whole.
  ka10080 takes no date (the catalog's request is stk_cd, tic_scope, upd_stkpc_tp), so
  paging always starts at the newest minute.

Expected page counts come from the synthetic market itself (rows per window and page
size: pages newest first, the paging stops after the first page that reaches a row
older than the window's start, or at the last page), and are checked against an
uninterrupted in-process run on simulators with the same seed and clocks, whose
warehouse is also the reference for the rows.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import flows.ingest
from connectors import KiwoomClient, Settings
from flows.ingest import plan, run_job
from flows.writes import GROUP_SECONDS
from schemas import calendar as cal
from simulator.app import PAGE_SIZES, SimConfig, Simulator
from simulator.market import Market
from simulator.server import SimServer
from simulator.universe import Universe
from warehouse import Run, Warehouse, WarehouseError, connect, dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flow_procs import KWH, Proc, clean_env, get_json, start_sim, wait_http

pytestmark = pytest.mark.slow

SEED, STOCKS = 7, 300
TIMEOUT = 240.0  # per command: generous, for a loaded 2-core machine
KILL_RATE = 15  # requests/s of the run that gets killed (KIWOOM_RATE); the others are unthrottled
COMMIT_PAGES = 40  # flows.ingest.run_job's default, which the flows use

DAILY, DAILY_TR = "stock_bars_daily", "ka10081"
DAILY_START, DAILY_END = date(2010, 1, 4), date(2025, 12, 30)
DAILY_SYMBOLS = [i.code for i in Universe.default(STOCKS, SEED).stocks[:30]]
DAILY_KILL_AT = 5  # covered symbols

MINUTE, MINUTE_TR = "stock_bars_minute", "ka10080"
MINUTE_START, MINUTE_END = date(2024, 4, 1), date(2025, 3, 31)
MINUTE_SYMBOL = "005930"
MINUTE_CLOCK = datetime(2025, 4, 3, 20, 0, tzinfo=cal.KST)  # the minute simulators' market time

BATCH_SYMBOLS = 10  # flows.runner.BATCH_SYMBOLS: symbols per batch, batches run concurrently


# --------------------------------------------------------------------------- expectations


def trading_runs(start: date, end: date, spans: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """The maximal runs of trading days in [start, end] that no span covers (what is left to fetch)."""
    out: list[tuple[date, date]] = []
    run: list[date] = []
    for day in cal.trading_days(start, end):
        if any(lo <= day <= hi for lo, hi in spans):
            if run:
                out.append((run[0], run[-1]))
            run = []
        else:
            run.append(day)
    if run:
        out.append((run[0], run[-1]))
    return out


def minutes_in(market: Market, symbol: str, lo: date, hi: date, now: datetime | None = None) -> int:
    return sum(len(market.minutes(symbol, day, now)) for day in cal.trading_days(lo, hi))


def expected_pages(market: Market, name: str, symbol: str, lo: date, hi: date, newer: int = 0) -> int:
    """Requests to fetch [lo, hi]: pages from ``hi`` back (with ``newer`` rows after ``hi`` before
    them), stopping after the first page with a row before ``lo`` (``(newer + rows_in) // page + 1``)
    or at the series' last page (``ceil(rows_through / page)``)."""
    if name == DAILY:
        rows_in = len(market.daily(symbol, lo, hi))
        rows_through = len(market.daily(symbol, market.epoch, hi))
        page = PAGE_SIZES["daily"]
        if rows_through == 0:
            return 1  # one empty page
        return min(rows_in // page + 1, -(-rows_through // page))
    rows_in = minutes_in(market, symbol, lo, hi)
    # the minute series goes on before lo (checked), so the last page is never the limit
    assert market.daily(symbol, market.epoch, cal.previous_trading_day(lo))
    return (newer + rows_in) // PAGE_SIZES["minute"] + 1


def minutes_after(market: Market, symbol: str, day: date) -> int:
    """Minutes after ``day`` up to MINUTE_CLOCK: ka10080 pages through them before reaching ``day``."""
    return minutes_in(market, symbol, day + timedelta(days=1), MINUTE_CLOCK.date(), MINUTE_CLOCK)


# --------------------------------------------------------------------------- lake state


@dataclass
class State:
    coverage: pl.DataFrame
    rows: pl.DataFrame  # without run_id, in key order
    runs: pl.DataFrame
    writes: pl.DataFrame

    def spans(self, symbol: str) -> list[tuple[date, date]]:
        cov = self.coverage.filter(pl.col("symbol") == symbol)
        return list(zip(cov["start_date"], cov["end_date"], strict=True))

    def covered_symbols(self) -> set[str]:
        return set(self.coverage["symbol"])


def read_state(wh: Path, name: str) -> State:
    ds = dataset(name)
    con = connect(read_only=True, warehouse=wh)
    try:
        coverage = con.execute(
            "SELECT symbol, options, start_date, end_date FROM meta.coverage WHERE dataset = ? ORDER BY ALL",
            [name],
        ).pl()
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = 'main'"
            ).fetchall()
        }
        empty = pl.DataFrame(schema=ds.schema)
        rows = con.execute(f"SELECT * FROM {name}").pl() if name in tables else empty
        runs = con.execute("SELECT run_id, flow, status FROM meta.runs ORDER BY started_at").pl()
        writes = con.execute(
            "SELECT run_id, dataset, rows, start_date, end_date FROM meta.writes ORDER BY committed_at"
        ).pl()
    finally:
        con.close()
    rows = rows.select([c for c in ds.schema if c != "run_id"]).sort(list(ds.key))
    return State(coverage, rows, runs, writes)


def day_of(name: str) -> pl.Expr:
    ds = dataset(name)
    col = pl.col(ds.time)
    return col if ds.schema[ds.time] == pl.Date else col.dt.convert_time_zone("Asia/Seoul").dt.date()


def poll_coverage(proc: Proc, wh: Path, name: str, done: Callable[[pl.DataFrame], bool]) -> pl.DataFrame:
    """Poll ``meta.coverage`` through one read-only connection until ``done(coverage)``.

    The process must still be running: finishing before that is a failure."""
    con: duckdb.DuckDBPyConnection | None = None
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise AssertionError(
                    f"{proc.name} finished (exit {proc.proc.returncode}) before the kill point: "
                    f"lower KILL_RATE\n{proc.output()[-3000:]}"
                )
            try:
                if con is None:
                    if not (wh / "catalog.sqlite").exists():
                        time.sleep(0.1)
                        continue
                    con = connect(read_only=True, warehouse=wh)
                cov = con.execute(
                    "SELECT symbol, start_date, end_date FROM meta.coverage WHERE dataset = ?", [name]
                ).pl()
            except (duckdb.Error, WarehouseError):  # the lake is still being created: open it again
                if con is not None:
                    con.close()
                con = None
                time.sleep(0.1)
                continue
            if done(cov):
                return cov
            time.sleep(0.05)
    finally:
        if con is not None:
            con.close()
    raise AssertionError(f"{proc.name}: kill point not reached in {TIMEOUT:.0f} s\n{proc.output()[-3000:]}")


# --------------------------------------------------------------------------- the processes


def sim_config(clock: datetime | None) -> SimConfig:
    return SimConfig(seed=SEED, n_stocks=STOCKS, rate_limit=None, clock=(lambda: clock) if clock else None)


def client_settings(base_url: str) -> Settings:
    return Settings.load(base_url=base_url, rate=0, env={}, env_file=None, token_cache=None)


@dataclass
class Reference:
    """Uninterrupted runs, in process, on their own simulators (same seed and clocks)."""

    wh: Path
    pages: dict[tuple[str, str], int]  # (dataset, symbol) -> TR requests the simulator counted
    rejections: int


async def _fetch_all(
    sim: Simulator,
    base_url: str,
    wh: Warehouse,
    name: str,
    tr: str,
    symbols: list[str],
    start: date,
    end: date,
    pages: dict[tuple[str, str], int],
) -> None:
    run = Run.new("reference")
    async with KiwoomClient(client_settings(base_url)) as client:
        for symbol in symbols:
            before = sim.stats[tr]
            for job in plan(wh, name, [symbol], start, end):
                await run_job(client, wh, job, run)
            pages[(name, symbol)] = sim.stats[tr] - before


def run_reference(tmp: Path) -> Reference:
    wh_path = tmp / "reference"
    pages: dict[tuple[str, str], int] = {}
    rejections = 0
    work = [
        (None, DAILY, DAILY_TR, DAILY_SYMBOLS, DAILY_START, DAILY_END),
        (MINUTE_CLOCK, MINUTE, MINUTE_TR, [MINUTE_SYMBOL], MINUTE_START, MINUTE_END),
    ]
    with Warehouse(warehouse=wh_path) as wh:
        for clock, name, tr, symbols, start, end in work:
            sim = Simulator(sim_config(clock))
            with SimServer(sim) as server:
                asyncio.run(_fetch_all(sim, server.base_url, wh, name, tr, symbols, start, end, pages))
            rejections += sim.stats["rejections"]
    return Reference(wh_path, pages, rejections)


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    daily_url: str  # the `kwh sim` process (real clock)
    minute_url: str  # an in-process simulator, clock fixed at MINUTE_CLOCK
    market: Market
    reference: Reference

    def kwh(self, name: str, args: list[str], rate: float) -> Proc:
        return Proc(self.tmp, name, [*KWH, *args], {**self.env, "KIWOOM_RATE": str(rate)})


def settled_stats(base_url: str) -> dict[str, int]:
    """The simulator's counters once no request is still arriving (a killed client's last one may lag)."""
    last = get_json(base_url + "/_sim/stats")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = get_json(base_url + "/_sim/stats")
        if now == last:
            return now
        last = now
    raise AssertionError(f"the simulator's counters kept changing: {last}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("resume")
    env = clean_env(tmp)
    procs: list[Proc] = []
    minute_server = SimServer(Simulator(sim_config(MINUTE_CLOCK)))
    try:
        sim, daily_url = start_sim(tmp, env, STOCKS, SEED)
        procs.append(sim)
        started = time.monotonic()
        reference = run_reference(tmp)  # while the simulator starts
        print(f"reference runs: {time.monotonic() - started:.1f} s, pages {reference.pages}")
        assert wait_http(daily_url + "/_sim/stats", sim, 60), f"simulator did not start:\n{sim.output()}"
        minute_server.start()
        yield Stack(
            tmp,
            env,
            daily_url,
            minute_server.base_url,
            Market(Universe.default(STOCKS, SEED), SEED),
            reference,
        )
    finally:
        minute_server.stop()
        for proc in reversed(procs):
            if proc.alive():
                proc.kill()


@dataclass
class Scenario:
    name: str
    wh: Path
    before: dict[str, int]
    at_kill: dict[str, int]
    after_rerun: dict[str, int]
    after_third: dict[str, int]
    state_at_kill: State
    final: State
    killed_run: str
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def delta(self, a: dict[str, int], b: dict[str, int], key: str) -> int:
        return b.get(key, 0) - a.get(key, 0)


def interrupt_and_resume(
    stack: Stack,
    name: str,
    base_url: str,
    ds_name: str,
    args: list[str],
    kill_when: Callable[[pl.DataFrame], bool],
) -> Scenario:
    """Run ``kwh <args>`` until ``kill_when(coverage)``, SIGKILL it, then run it to the end twice."""
    wh = stack.tmp / name
    args = [*args, "--base-url", base_url, "--warehouse", str(wh)]
    outputs: dict[str, str] = {}
    seconds: dict[str, float] = {}
    before = settled_stats(base_url)

    killed = stack.kwh(f"{name}-killed", args, rate=KILL_RATE)
    try:
        poll_coverage(killed, wh, ds_name, kill_when)
    finally:
        killed.kill()
    seconds["killed"] = killed.seconds()
    outputs["killed"] = killed.output()
    at_kill = settled_stats(base_url)
    state_at_kill = read_state(wh, ds_name)
    started = state_at_kill.runs.filter(pl.col("flow") == "backfill")
    assert started.height == 1, started
    killed_run = started["run_id"][0]

    stats: dict[str, dict[str, int]] = {}
    for label in ("rerun", "third"):
        proc = stack.kwh(f"{name}-{label}", args, rate=0)
        code = proc.wait(TIMEOUT)
        seconds[label] = proc.seconds()
        outputs[label] = proc.output()
        assert code == 0, f"{name} {label} exited {code}:\n{outputs[label][-3000:]}"
        stats[label] = settled_stats(base_url)
    print(
        f"{name}: stats before {before}, at the kill {at_kill}, after the rerun {stats['rerun']}, "
        f"after the third run {stats['third']}; seconds {seconds}"
    )
    return Scenario(
        name,
        wh,
        before,
        at_kill,
        stats["rerun"],
        stats["third"],
        state_at_kill,
        read_state(wh, ds_name),
        killed_run,
        outputs,
        seconds,
    )


# --------------------------------------------------------------------------- the page formula


def test_uninterrupted_run_takes_the_expected_pages(stack: Stack) -> None:
    """The page formula the resume assertions use agrees with what an uninterrupted run requests."""
    ref = stack.reference
    want = {(DAILY, s): expected_pages(stack.market, DAILY, s, DAILY_START, DAILY_END) for s in DAILY_SYMBOLS}
    newer = minutes_after(stack.market, MINUTE_SYMBOL, MINUTE_END)
    want[(MINUTE, MINUTE_SYMBOL)] = expected_pages(
        stack.market, MINUTE, MINUTE_SYMBOL, MINUTE_START, MINUTE_END, newer
    )
    assert ref.pages == want
    assert ref.rejections == 0
    # the windows are long enough for the scenarios to make sense
    assert max(want[(DAILY, s)] for s in DAILY_SYMBOLS) == 7
    assert want[(MINUTE, MINUTE_SYMBOL)] > 2 * COMMIT_PAGES


# --------------------------------------------------------------------------- daily: symbols resume


@pytest.fixture(scope="module")
def daily(stack: Stack) -> Scenario:
    args = ["backfill", "--dataset", DAILY, "--symbols", ",".join(DAILY_SYMBOLS)]
    args += ["--start", str(DAILY_START), "--end", str(DAILY_END)]
    return interrupt_and_resume(
        stack, "daily", stack.daily_url, DAILY, args, lambda cov: cov["symbol"].n_unique() >= DAILY_KILL_AT
    )


def test_daily_kill_leaves_whole_symbols(stack: Stack, daily: Scenario) -> None:
    """At the kill: some but not all symbols covered, each over its whole window and with all its rows."""
    state = daily.state_at_kill
    covered = state.covered_symbols()
    assert DAILY_KILL_AT <= len(covered) < len(DAILY_SYMBOLS), f"covered at the kill: {sorted(covered)}"
    days = cal.trading_days(DAILY_START, DAILY_END)
    for symbol in covered:
        assert state.spans(symbol) == [(days[0], days[-1])], symbol
    # rows and coverage commit together: covered symbols have all their rows, the others none
    ref = read_state(stack.reference.wh, DAILY).rows
    assert_frame_equal(state.rows, ref.filter(pl.col("symbol").is_in(sorted(covered))))


def test_daily_run_ledger(daily: Scenario) -> None:
    """The rerun and the third run close their ledger rows "ok"; the killed run's row is never "ok"
    (it stays "running": nothing closes the row of a run that died)."""
    status = dict(zip(daily.final.runs["run_id"], daily.final.runs["status"], strict=True))
    print(
        f"daily: killed run {daily.killed_run} is {status[daily.killed_run]!r} in meta.runs after the rerun"
    )
    assert status[daily.killed_run] != "ok"
    assert sorted(s for r, s in status.items() if r != daily.killed_run) == ["ok", "ok"]


def test_daily_rerun_fetches_only_uncovered_symbols(stack: Stack, daily: Scenario) -> None:
    """The rerun's ka10081 requests are exactly the pages of what coverage lacked at the kill."""
    state = daily.state_at_kill
    per_symbol: dict[str, int] = {}
    for symbol in DAILY_SYMBOLS:
        for lo, hi in trading_runs(DAILY_START, DAILY_END, state.spans(symbol)):
            per_symbol[symbol] = per_symbol.get(symbol, 0) + expected_pages(
                stack.market, DAILY, symbol, lo, hi
            )
    uncovered = set(DAILY_SYMBOLS) - state.covered_symbols()
    assert set(per_symbol) == uncovered
    want = sum(per_symbol.values())
    assert want == sum(stack.reference.pages[(DAILY, s)] for s in uncovered)
    got = daily.delta(daily.at_kill, daily.after_rerun, DAILY_TR)
    assert got == want, (
        f"the rerun made {got} {DAILY_TR} requests; the {len(uncovered)} symbols not covered at the kill "
        f"need {want} ({per_symbol})"
    )
    # nothing else was asked, and nothing refused
    assert daily.delta(daily.at_kill, daily.after_rerun, "requests") == got
    assert daily.delta(daily.before, daily.after_third, "rejections") == 0


def test_daily_killed_run_lost_at_most_the_symbols_in_flight(stack: Stack, daily: Scenario) -> None:
    """The killed run's requests beyond what it committed are pages of symbols in flight at the kill
    (at most one symbol per concurrent task, a batch of BATCH_SYMBOLS, each at most its whole window)
    and the pages of chunks the grouped writer held: fetched within GROUP_SECONDS, plus a second for
    the commit in progress, at KILL_RATE."""
    covered = daily.state_at_kill.covered_symbols()
    committed = sum(stack.reference.pages[(DAILY, s)] for s in covered)
    made = daily.delta(daily.before, daily.at_kill, DAILY_TR)
    tasks = -(-len(DAILY_SYMBOLS) // BATCH_SYMBOLS)
    most = max(stack.reference.pages[(DAILY, s)] for s in DAILY_SYMBOLS)
    held = math.ceil(KILL_RATE * (GROUP_SECONDS + 1))
    assert committed <= made <= committed + tasks * most + held, (made, committed)


def test_daily_result_equals_an_uninterrupted_backfill(stack: Stack, daily: Scenario) -> None:
    ref = read_state(stack.reference.wh, DAILY)
    final = daily.final
    key = list(dataset(DAILY).key)
    assert final.rows.filter(final.rows.select(key).is_duplicated()).height == 0
    assert_frame_equal(final.rows, ref.rows)
    assert_frame_equal(final.coverage, ref.coverage)
    # and what the market has: every trading day of every symbol once
    for symbol in DAILY_SYMBOLS:
        days = final.rows.filter(pl.col("symbol") == symbol)["date"].to_list()
        assert days == [b.day for b in stack.market.daily(symbol, DAILY_START, DAILY_END)], symbol


def test_daily_third_run_fetches_nothing(daily: Scenario) -> None:
    assert daily.delta(daily.after_rerun, daily.after_third, "requests") == 0
    assert daily.delta(daily.after_rerun, daily.after_third, DAILY_TR) == 0


# --------------------------------------------------------------------------- minute: chunks resume


@pytest.fixture(scope="module")
def minute(stack: Stack, daily: Scenario) -> Scenario:  # after the daily scenario: one at a time
    args = ["backfill", "--dataset", MINUTE, "--symbols", MINUTE_SYMBOL]
    args += ["--start", str(MINUTE_START), "--end", str(MINUTE_END)]
    return interrupt_and_resume(stack, "minute", stack.minute_url, MINUTE, args, lambda cov: cov.height > 0)


def test_minute_kill_mid_window_keeps_whole_committed_days(stack: Stack, minute: Scenario) -> None:
    """At the kill: chunks committed, the window's newest part covered, every covered day complete."""
    state = minute.state_at_kill
    spans = state.spans(MINUTE_SYMBOL)
    assert len(spans) == 1, spans
    lo, hi = spans[0]
    days = cal.trading_days(MINUTE_START, MINUTE_END)
    assert hi == days[-1]
    assert days[0] < lo <= hi, f"the kill came too late: the whole window was covered ({spans})"
    assert minute.final.writes.filter(pl.col("run_id") == minute.killed_run).height >= 1
    ref = read_state(stack.reference.wh, MINUTE).rows.with_columns(day_of(MINUTE).alias("_day"))
    rows = state.rows.with_columns(day_of(MINUTE).alias("_day"))
    # every covered day has all its minutes, identical to the uninterrupted run
    assert_frame_equal(rows.filter(pl.col("_day") >= lo), ref.filter(pl.col("_day") >= lo))
    # older rows: only the oldest day of the committed pages, partly (the next page would continue it)
    older = rows.filter(pl.col("_day") < lo)
    assert set(older["_day"]) <= {lo - timedelta(days=1)}, sorted(set(older["_day"]))
    assert older.height <= len(stack.market.minutes(MINUTE_SYMBOL, lo - timedelta(days=1)))
    key = list(dataset(MINUTE).key)
    assert_frame_equal(older, ref.join(older.select(key), on=key, how="semi"))


def test_minute_rerun_fetches_only_the_rest_of_the_window(stack: Stack, minute: Scenario) -> None:
    """The rerun fetches the rest: from the oldest committed (partial) day back to the window's start.

    Paging from that day (a date in the request) takes ``want`` pages. The run resumes from the
    next-key saved with the last commit, which re-reads the page where the partial oldest day
    begins (its rows were not committed: a day is written whole); that page may start with the
    newer day's last minutes, so ``want`` or ``want + 1``. Never the pages already committed.
    """
    state = minute.state_at_kill
    holes = trading_runs(MINUTE_START, MINUTE_END, state.spans(MINUTE_SYMBOL))
    assert len(holes) == 1, holes
    want = expected_pages(stack.market, MINUTE, MINUTE_SYMBOL, *holes[0])
    whole = stack.reference.pages[(MINUTE, MINUTE_SYMBOL)]
    got = minute.delta(minute.at_kill, minute.after_rerun, MINUTE_TR)
    assert minute.delta(minute.at_kill, minute.after_rerun, "requests") == got
    assert minute.delta(minute.before, minute.after_third, "rejections") == 0
    refetched = expected_pages(
        stack.market,
        MINUTE,
        MINUTE_SYMBOL,
        holes[0][0],
        MINUTE_END,
        minutes_after(stack.market, MINUTE_SYMBOL, MINUTE_END),
    )
    assert want <= got <= want + 1, (
        f"the rerun made {got} {MINUTE_TR} requests for the rest {holes[0][0]}..{holes[0][1]}, which "
        f"takes {want} pages; the whole window took {whole}"
        + (
            f" (the rerun paged again from the newest minute through the {MINUTE_END + timedelta(days=1)}"
            f"..{MINUTE_CLOCK.date()} minutes and the committed days {holes[0][1] + timedelta(days=1)}"
            f"..{MINUTE_END}: {refetched} pages)"
            if got == refetched
            else ""
        )
    )


def test_minute_result_equals_an_uninterrupted_backfill(stack: Stack, minute: Scenario) -> None:
    ref = read_state(stack.reference.wh, MINUTE)
    final = minute.final
    key = list(dataset(MINUTE).key)
    assert final.rows.filter(final.rows.select(key).is_duplicated()).height == 0
    assert_frame_equal(final.rows, ref.rows)
    assert_frame_equal(final.coverage, ref.coverage)
    assert final.rows.height == minutes_in(stack.market, MINUTE_SYMBOL, MINUTE_START, MINUTE_END)


def test_minute_third_run_fetches_nothing(minute: Scenario) -> None:
    assert minute.delta(minute.after_rerun, minute.after_third, "requests") == 0


# --------------------------------------------------------------------------- chunking cost, in process


def test_pages_before_the_window_are_normalized_once(tmp_path: Path) -> None:
    """``run_job`` normalizes each page once, also when the first pages hold no row of the window.

    ka10080 pages from the newest minute back, so a window ending before today starts with
    pages of later days. Each page is counted as it goes through ``normalize_pages``.
    """
    start = end = cal.trading_days(date(2024, 10, 1), date(2024, 10, 31))[0]  # ~120 trading days before
    market = Market(Universe.default(STOCKS, SEED), SEED)
    newer = minutes_after(market, MINUTE_SYMBOL, end)
    assert newer > (COMMIT_PAGES + 2) * PAGE_SIZES["minute"]  # the first chunk is all later days
    normalized: list[int] = []

    def counting(api_id: str, pages: Any) -> Any:
        normalized.append(len(pages))
        return real(api_id, pages)

    real = flows.ingest.normalize_pages
    sim = Simulator(sim_config(MINUTE_CLOCK))
    with SimServer(sim) as server, Warehouse(warehouse=tmp_path / "lake") as wh:
        mp = pytest.MonkeyPatch()
        mp.setattr(flows.ingest, "normalize_pages", counting)
        try:

            async def fetch() -> int:
                async with KiwoomClient(client_settings(server.base_url)) as client:
                    (job,) = plan(wh, MINUTE, [MINUTE_SYMBOL], start, end)
                    return (await run_job(client, wh, job, Run.new("manual"))).pages

            pages = asyncio.run(fetch())
        finally:
            mp.undo()
        rows = wh.read(MINUTE).height
    assert pages == sim.stats[MINUTE_TR] == expected_pages(market, MINUTE, MINUTE_SYMBOL, start, end, newer)
    assert rows == minutes_in(market, MINUTE_SYMBOL, start, end)
    assert sum(normalized) == pages, (
        f"{pages} pages fetched, {sum(normalized)} page normalizations in {len(normalized)} calls "
        f"({normalized[:5]}...): pages with no row of the window stay pending and are normalized again "
        "at every later page"
    )
