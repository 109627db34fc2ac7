"""Writes off the fetch path (flows.writes) and different TRs at once (flows.schedule), in-process
against the simulator (``SimServer``): requests go on while a commit runs, commits are grouped,
a failed commit fails the jobs it carried by name, and the TRs take turns."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from connectors import ratelimit
from flows import runner
from flows.ingest import Job
from flows.schedule import batches, run_batches
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from simulator.universe import Universe
from warehouse import Warehouse

SYMBOLS = [s.code for s in Universe.default(20, 7).stocks[:12]]


def _params(url: str, lake: str, symbols: list[str]) -> dict[str, Any]:
    return {
        "datasets": ["stock_bars_daily"],
        "symbols": ",".join(symbols),
        "start": "2019-01-02",
        "end": "2025-12-30",
        "options": {},
        "base_url": url,
        "warehouse": lake,
    }


@pytest.fixture
def sim(tmp_path, monkeypatch):
    monkeypatch.setenv("KIWOOM_TOKEN_CACHE", str(tmp_path / "tokens"))
    monkeypatch.setenv("KIWOOM_RATE", "40")
    with SimServer(Simulator(SimConfig(n_stocks=20, rate_limit=None))) as server:
        yield server.base_url


def test_requests_go_on_while_a_commit_runs_and_commits_are_grouped(sim, tmp_path, monkeypatch):
    commits: list[tuple[float, float, int]] = []
    sent: list[float] = []
    commit = Warehouse.commit

    def slow_commit(self: Warehouse, c: Any) -> Any:  # a write slow enough to see what waits on it
        t0 = time.monotonic()
        time.sleep(0.4)
        out = commit(self, c)
        commits.append((t0, time.monotonic(), len(c.rows)))
        return out

    acquire = ratelimit.RateLimiter.acquire

    async def stamped(self: ratelimit.RateLimiter, api_id: str) -> float:
        waited = await acquire(self, api_id)
        sent.append(time.monotonic())
        return waited

    monkeypatch.setattr(Warehouse, "commit", slow_commit)
    monkeypatch.setattr(ratelimit.RateLimiter, "acquire", stamped)
    result = runner.run_in_process("backfill", _params(sim, str(tmp_path / "lake"), SYMBOLS))
    assert result["status"] == "ok", result
    assert result["jobs"] == len(SYMBOLS) and result["rows"]["stock_bars_daily"] > 0
    # fewer transactions than jobs: the first alone (fail early), then the others grouped
    assert 2 <= len(commits) < len(SYMBOLS), commits
    during = [t for t in sent if any(a < t < b for a, b, _ in commits)]
    assert during, "no request was sent while a commit ran: the write is on the fetch path"
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        covered = wh.coverage("stock_bars_daily")
    assert sorted(covered["symbol"].unique()) == sorted(SYMBOLS)


def test_a_failed_commit_fails_the_jobs_it_carried_by_name(sim, tmp_path, monkeypatch):
    bad = SYMBOLS[3]
    commit = Warehouse.commit

    def failing(self: Warehouse, c: Any) -> Any:
        if any(bad in set(r.frame["symbol"]) for r in c.rows if r.frame.height):
            raise OSError("disk full (test)")
        return commit(self, c)

    monkeypatch.setattr(Warehouse, "commit", failing)
    result = runner.run_in_process("backfill", _params(sim, str(tmp_path / "lake"), SYMBOLS))
    assert result["status"] == "failed"
    assert any(bad in f and "disk full (test)" in f for f in result["failed"]), result["failed"]
    assert result["jobs"] == len(SYMBOLS)  # every job reported, each once
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        covered = set(wh.coverage("stock_bars_daily")["symbol"])
        stored = set(wh.sql("SELECT DISTINCT symbol FROM stock_bars_daily")["symbol"])
    assert bad not in covered and bad not in stored  # nothing of a failed commit: no coverage, no rows
    failed = {s for s in SYMBOLS if any(s in f for f in result["failed"])}
    assert covered == stored == set(SYMBOLS) - failed  # the jobs not carried by it are whole


def _jobs(dataset: str, api_id: str, n: int) -> list[Job]:
    from datetime import date

    return [Job(dataset, api_id, f"{i:06d}", {}, date(2025, 1, 2), date(2025, 1, 3)) for i in range(n)]


def test_batches_interleave_the_trs_and_every_tr_is_in_flight_at_once():
    trs = [(f"ds{i}", f"ka1000{i}") for i in range(5)]
    jobs = [j for ds, tr in trs for j in _jobs(ds, tr, 25)]  # 3 batches of each TR
    work = batches(jobs)
    assert [b[0].api_id for b in work[:5]] == [tr for _, tr in trs]
    assert sorted(j.symbol for b in work for j in b) == sorted(j.symbol for j in jobs)
    flying: list[str] = []
    most: list[set[str]] = []
    lock = threading.Lock()

    async def run(batch: list[Job]) -> None:
        with lock:
            flying.append(batch[0].api_id)
            most.append(set(flying))
        await asyncio.sleep(0.01 * len(batch))
        with lock:
            flying.remove(batch[0].api_id)

    asyncio.run(run_batches(work, run))
    # the first free slots go to TRs with nothing in flight: all five at once, never one TR alone
    assert max(len(s) for s in most) == 5
    assert all(len(s) >= min(5, i + 1) for i, s in enumerate(most[:5]))


def test_merged_drops_only_no_op_cursor_removals_and_keeps_cursor_order():
    from datetime import date

    import polars as pl

    from flows.writes import merged
    from warehouse import Cursor, Rows, Span

    def part(symbol: str, key: str | None = "x", cursor: bool = True) -> Rows:
        frame = pl.DataFrame({"symbol": [symbol], "date": [date(2025, 1, 2)], "close": [1]})
        c = Cursor("ka10081", symbol, "", key, date(2025, 1, 3)) if cursor else None
        return Rows(
            "stock_bars_daily",
            frame,
            coverage=[Span(symbol, "", date(2025, 1, 2), date(2025, 1, 2))],
            cursor=c,
        )

    saved = {("stock_bars_daily", "B", "", "ka10081"): Cursor("ka10081", "B", "", "k", None)}
    parts = [part("A", "k1"), part("A", None), part("B", None), part("C", None), part("D", cursor=False)]
    out = merged(parts, saved)
    # A set then removed in the same commit: both kept, in order; B removes a saved cursor: kept
    assert [(p.cursor.symbol, p.cursor.next_key) for p in out if p.cursor] == [
        ("A", "k1"),
        ("A", None),
        ("B", None),
    ]
    # C's removal is a no-op (nothing saved): it joins D's part, one frame with both spans
    plain = [p for p in out if p.cursor is None]
    assert len(plain) == 1 and sorted(plain[0].frame["symbol"]) == ["C", "D"]
    assert sorted(s.symbol for s in plain[0].coverage or ()) == ["C", "D"]
