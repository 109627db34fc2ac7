"""The run's progress line: requests sent of the estimate, rows written, jobs, and the ETA at the
limiter's rate (flows.progress), fed live by the runner and drawn by ``kwh backfill``."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import pytest
from _flow_procs import KWH, Proc, clean_env, start_sim, wait_http

from flows import runner
from flows.estimate import estimate_pages
from flows.ingest import Job
from flows.progress import RunProgress
from schemas import calendar as cal
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer

DEC30 = datetime(2025, 12, 30, 18, 0, tzinfo=cal.KST)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _jobs() -> list[Job]:
    daily = [
        Job("stock_bars_daily", "ka10081", s, {}, date(2015, 1, 2), date(2025, 12, 30))
        for s in ("005930", "000660", "035420")
    ]
    return [*daily, Job("stock_bars_daily", "ka10081", "005380", {}, date(2025, 12, 1), date(2025, 12, 30))]


def test_requests_rows_and_eta_come_from_the_estimate_and_the_limiter_rate():
    clock, jobs = FakeClock(), _jobs()
    model = RunProgress(clock=clock)
    counts = {"requests": 0, "rows": 0}
    model.follow(lambda: (counts["requests"], counts["rows"]))
    assert model.snapshot().eta is None  # nothing planned yet: no ETA, not a zero one

    model.plan(jobs, rate=4.0, now=DEC30)
    expected = sum(estimate_pages(j, DEC30) for j in jobs)
    assert expected == 3 * 5 + 1  # 2,7xx trading days at 600 rows a page, and one short window
    first = model.snapshot()
    assert (first.requests, first.estimated, first.rows, first.done, first.total) == (0, expected, 0, 0, 4)
    assert first.eta == expected / 4.0

    # requests move the ETA before any job ends; the clock (the job pace) does not
    clock.now += 30.0
    counts["requests"] = 6
    mid = model.snapshot()
    assert mid.elapsed == 30.0 and mid.done == 0
    assert mid.eta == (expected - 6) / 4.0

    model(1, 4, "stock_bars_daily (ka10081) 005930")
    counts.update(requests=8, rows=2700)
    clock.now += 1000.0  # a stall changes the elapsed time, never the ETA
    after = model.snapshot()
    assert (after.rows, after.done, after.label) == (2700, 1, "stock_bars_daily (ka10081) 005930")
    assert after.eta == (expected - 8) / 4.0
    assert after.line() == f"requests 8/{expected}  rows 2,700  jobs 1/4  eta 0:00:02"

    # past the estimate with jobs left: each unfinished job still takes a request
    counts["requests"] = expected + 5
    model(2, 4, "x")
    assert model.snapshot().eta == 2 / 4.0
    model(4, 4, "y")
    assert model.snapshot().eta == 0.0

    model.plan(jobs, rate=None, now=DEC30)  # the limiter off (KIWOOM_RATE=0): no rate, no ETA
    assert model.snapshot().eta is None
    assert model.snapshot().line().endswith("eta ?")
    model.plan([], rate=4.0, now=DEC30)  # nothing to fetch: planned and finished
    assert model.snapshot().planned and model.snapshot().eta == 0.0


class Recording(RunProgress):
    """Takes a snapshot each time a job ends, as the bar's timer would at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def __call__(self, done: int, total: int, label: str) -> None:
        super().__call__(done, total, label)
        if done:
            self.seen.append(self.snapshot())


def test_the_runner_feeds_requests_live_and_rows_per_job(tmp_path, monkeypatch):
    monkeypatch.setenv("KIWOOM_TOKEN_CACHE", str(tmp_path / "tokens"))
    monkeypatch.setenv("KIWOOM_RATE", "50")
    model = Recording()
    with SimServer(Simulator(SimConfig(n_stocks=20, rate_limit=None))) as server:
        params = {
            "datasets": ["stock_bars_daily"],
            "symbols": "005930,000660,035420",
            "start": "2015-01-02",
            "end": "2025-12-30",
            "options": {},
            "base_url": server.base_url,
            "warehouse": str(tmp_path / "lake"),
        }
        result = runner.run_in_process("backfill", params, progress=model)
    assert result["status"] == "ok", result
    assert [s.done for s in model.seen] == [1, 2, 3] and all(s.total == 3 for s in model.seen)
    # the client's counter, read while the run goes (the summary only adds it up at the end)
    assert 0 < model.seen[0].requests < model.seen[-1].requests
    assert model.seen[0].estimated >= 3 * 5  # eleven years of daily bars, 600 rows a page
    final = model.snapshot()
    assert final.requests == result["requests"]
    assert final.rows == sum(result["rows"].values()) > 0
    assert final.eta == 0.0
    assert abs(final.requests - final.estimated) <= 0.1 * final.estimated  # the estimate holds


@pytest.mark.slow
def test_kwh_backfill_prints_requests_rows_and_jobs_once_off_a_terminal(tmp_path):
    env = clean_env(tmp_path)
    sim, url = start_sim(tmp_path, env, stocks=20, seed=5)
    try:
        assert wait_http(url + "/_sim/stats", sim, 60), f"simulator did not start:\n{sim.output()}"
        args = ["backfill", "-d", "stock_bars_daily", "--symbols", "005930,000660", "--start", "2015-01-02",
                "--end", "2025-12-30", "--base-url", url, "--warehouse", str(tmp_path / "lake")]  # fmt: skip
        kwh = Proc(tmp_path, "kwh", [*KWH, *args], {**env, "KIWOOM_RATE": "50"})
        code = kwh.wait(240)
        out = kwh.output()
        again = Proc(tmp_path, "again", [*KWH, *args], {**env, "KIWOOM_RATE": "50"})
        rerun = (again.wait(240), again.output())
    finally:
        sim.kill()
    assert code == 0, out
    # stdout is a file: the progress line is printed once, at the end, with the final counts
    lines = [line for line in out.splitlines() if re.search(r"requests \d+/\d+  rows", line)]
    assert len(lines) == 1, out
    match = re.search(r"requests (\d+)/(\d+)  rows ([\d,]+)  jobs 2/2  eta 0:00:00", lines[0])
    assert match, lines[0]
    sent, rows = int(match[1]), int(match[3].replace(",", ""))
    summary = re.search(r"requests (\d+), pages", out)
    assert summary and int(summary[1]) == sent, out
    assert rows > 0 and f"{rows}" in out.replace(",", ""), out  # the summary's rows written
    # a rerun has nothing to fetch: the line says so, with no requests and no wait
    assert rerun[0] == 0, rerun[1]
    assert re.search(r"done .*requests 0/0  rows 0  jobs 0/0  eta 0:00:00", rerun[1]), rerun[1]
