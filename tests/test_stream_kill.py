"""Kill storm: ``kwh stream`` SIGKILLed again and again while it streams 50 symbols; nothing lost or doubled.

After each kill the test reads what the log holds on disk (what "reached the log":
fsynced records survive a SIGKILL; the tail of the page cache may too). At the end
every one of those entries must be in the warehouse exactly once, and no key twice;
after the evening's heal from the tick chart every symbol-day's trade sizes sum to
its daily bar's volume.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import httpx
import orjson
import polars as pl
import pytest

from connectors import KiwoomClient, RateLimiter, RateLimits, Settings
from flows.heal import HealResult, heal_gaps
from flows.ingest import plan, run_job
from flows.verify import verify
from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from simulator.ws_feed import WsConfig
from warehouse import Run, Warehouse, connect
from warehouse.ticklog import read_records

pytestmark = pytest.mark.slow
DAY = date(2025, 12, 29)
EVENING = datetime(2025, 12, 29, 20, 0, tzinfo=KST)
KWH = [sys.executable, "-c", "from flows.cli import app; app()"]


def _worker(srv: SimServer, lake: Path, codes: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KIWOOM_TOKEN_CACHE": str(tmp / "tokens")}
    cmd = [*KWH, "stream", "-s", ",".join(codes), "--day", DAY.isoformat(), "--base-url", srv.base_url]
    return subprocess.Popen(
        [*cmd, "-w", str(lake)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


async def _heal(srv: SimServer, lake: Path, codes: list[str], tmp: Path) -> HealResult:
    """The evening's daily bars, then the heal of every gap the kills left (as the daily flow does)."""
    settings = Settings.load(base_url=srv.base_url, env={}, env_file=None, token_cache=tmp / "tokens")
    with Warehouse(warehouse=lake) as wh:
        async with KiwoomClient(settings, limiter=RateLimiter(RateLimits(total=None))) as kw:
            run = Run.new("daily")
            for job in plan(wh, "stock_bars_daily", codes, DAY, DAY, now=EVENING):
                await run_job(kw, wh, job, run, now=EVENING)
            return await heal_gaps(kw, wh, DAY, now=EVENING)


def _streaming(
    folder: Path, proc: subprocess.Popen[bytes], timeout: float = 180.0, required: bool = True
) -> None:
    """Wait until this worker has received frames (its status file says so); kill it if it never does
    (unless not ``required``: the replayed day may be over, and a worker then receives nothing)."""
    status, since = folder / "status.json", time.time()
    while time.time() - since < timeout:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode()[-2000:] if proc.stdout else "the worker died")
        if status.exists() and status.stat().st_mtime > since:
            body = orjson.loads(status.read_bytes())
            if body.get("status") == "running" and body.get("session", {}).get("frames", 0) > 0:
                return
        time.sleep(0.1)
    if not required:
        return
    proc.kill()
    proc.wait()
    raise AssertionError("the worker did not start streaming")


def _sent(connections: list[dict], kind: str) -> dict[str, int]:
    """Entries of ``kind`` the simulator sent per item, summed over its connections' counters."""
    out: dict[str, int] = {}
    for conn in connections:
        for item, kinds in conn["sent"].items():
            out[item] = out.get(item, 0) + kinds.get(kind, 0)
    return out


def _on_disk(folder: Path) -> dict[int, bytes]:
    return {rec.seq: rec.payload for rec in read_records(folder)} if folder.exists() else {}


def test_sigkill_storm_loses_and_doubles_nothing(tmp_path):
    rng = random.Random(7)
    lake, folder = tmp_path / "lake", tmp_path / "lake" / "stream" / "realtime"
    cfg = WsConfig(mode="replay", replay_day=DAY, speed=300, step=0.05)
    reached: dict[int, bytes] = {}
    with SimServer(Simulator(SimConfig(rate_limit=None, clock=lambda: EVENING, ws=cfg))) as srv:
        codes = [s.code for s in srv.sim.market.universe.stocks[:50]]
        for _ in range(6):
            proc = _worker(srv, lake, codes, tmp_path)
            _streaming(folder, proc)
            time.sleep(rng.uniform(0.2, 3.0))  # commits every 0.25 s: kills land in them, in fsyncs, between
            proc.kill()
            proc.wait()
            reached |= _on_disk(folder)
        proc = _worker(srv, lake, codes, tmp_path)
        _streaming(folder, proc, timeout=60.0, required=False)  # a loaded machine starts slowly
        time.sleep(5.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode()[-2000:]
        reached |= _on_disk(folder)
        healed = asyncio.run(_heal(srv, lake, codes, tmp_path))
        conns = httpx.get(srv.base_url + "/_sim/ws").json()["connections"]
    report = verify(Warehouse(warehouse=lake), DAY)
    assert healed.rows > 0, "the restarts left holes for the heal to fill"
    assert report.height == len(codes) and report["status"].unique().to_list() == ["ok"], report.filter(
        pl.col("status") != "ok"
    )
    assert b"stream completed" in out
    trades, books = set(), set()
    for seq, payload in reached.items():
        body = orjson.loads(payload)
        if body.get("trnm") != "REAL":
            continue
        for i, entry in enumerate(e for e in body["data"] if e["type"] == "0D"):
            books.add((entry["item"], seq, i))
        for entry in body["data"]:
            if entry["type"] == "0B":
                trades.add((entry["item"], int(entry["values"]["13"])))
    assert len(trades) > 500 and len(books) > 500, "the storm streamed something"
    con = connect(read_only=True, warehouse=lake)
    stored_trades = con.execute("SELECT symbol, cum_volume FROM stock_trades").fetchall()
    stored_books = con.execute("SELECT symbol, log_seq, entry FROM stock_orderbook").fetchall()
    runs = con.execute("SELECT count(*) FROM meta.runs WHERE flow = 'stream'").fetchone()
    streamed = con.execute(
        "SELECT symbol, count(*) FROM stock_trades WHERE source = 'stream' GROUP BY 1"
    ).fetchall()
    con.close()
    # the simulator's per-connection counters bound what can have reached the log and the lake
    streaming = [c for c in conns if c["frames"]]
    assert len(streaming) >= 6, f"{len(streaming)} connections streamed: each killed worker had one"
    real = sum(1 for p in reached.values() if orjson.loads(p).get("trnm") == "REAL")
    assert real <= sum(c["frames"] for c in streaming), "the log holds frames the simulator never sent"
    bound = {kind: _sent(streaming, kind) for kind in ("0B", "0D")}
    assert all(n <= bound["0B"].get(sym, 0) for sym, n in streamed), "more trades streamed than sent"
    books_per = pl.DataFrame(stored_books, schema=["symbol", "log_seq", "entry"], orient="row")
    assert all(n <= bound["0D"].get(sym, 0) for sym, n in books_per.group_by("symbol").len().iter_rows())
    assert len(stored_trades) == len(set(stored_trades)), "a trade stored twice (healed or streamed)"
    assert len(stored_books) == len(set(stored_books)), "a book entry stored twice"
    assert trades <= set(stored_trades), f"{len(trades - set(stored_trades))} logged trades lost"
    assert books <= set(stored_books), f"{len(books - set(stored_books))} logged book entries lost"
    assert runs == (7,), "every worker got to stream before it was killed"
