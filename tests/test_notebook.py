"""notebooks/research.ipynb runs headless against a small warehouse built from the simulator.

The lake holds what the demo's holds, smaller: the stock list, daily bars of a few
stocks, the KOSPI index's daily bars, one day of minute bars, the investor,
program-trading and short-selling series, and a few seconds of that day's replayed
realtime session (trades and order book). The notebook is executed with nbclient
(a real kernel, matplotlib's Agg backend) and pointed at the lake with
``KWH_WAREHOUSE``; the test fails if any cell errors, if a figure cell did not draw
a non-trivial PNG, or if the notebook's own checks on its data fail.
"""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import polars as pl
import pytest

from connectors import KiwoomClient, RateLimiter, RateLimits, RealtimeSession, RetryPolicy, Settings
from flows.ingest import Job, plan, run_job
from flows.stream import StreamConfig, run_stream
from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from simulator.ws_feed import WsConfig
from warehouse import Run, Warehouse, connect

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "research.ipynb"
DAY = date(2025, 12, 29)  # the session replayed; the last day of every window
EVENING = datetime(2025, 12, 29, 20, 0, tzinfo=KST)
STOCKS = 3
STREAM_SECONDS = 3.0
MIN_PNG_BYTES = 5_000  # an empty matplotlib axes is ~2-4 kB; a drawn chart is tens of kB


def _settings(srv: SimServer, tmp: Path) -> Settings:
    return Settings.load(
        base_url=srv.base_url, env={}, env_file=None, token_cache=tmp / "tokens", backoff_base=0.02
    )


async def _fetch(srv: SimServer, wh: Warehouse, tmp: Path, codes: list[str]) -> None:
    run = Run.new("notebook-test")
    windows: list[tuple[str, list[str | None], date]] = [
        ("stock_bars_daily", list(codes), DAY - timedelta(days=150)),
        ("sector_bars_daily", ["001"], DAY - timedelta(days=150)),
        ("stock_bars_minute", list(codes), DAY),
        ("stock_investor_institution", list(codes), DAY - timedelta(days=60)),
        ("stock_program_trading_daily", list(codes), DAY - timedelta(days=60)),
        ("short_selling", list(codes), DAY - timedelta(days=60)),
    ]
    async with KiwoomClient(_settings(srv, tmp), limiter=RateLimiter(RateLimits(total=None))) as kw:
        await run_job(
            kw, wh, Job("stock_list", "ka10099", None, {"mrkt_tp": "0"}, DAY, DAY), run, now=EVENING
        )
        for name, symbols, start in windows:
            for job in plan(wh, name, symbols, start, DAY, now=EVENING):
                await run_job(kw, wh, job, run, now=EVENING)


async def _stream(srv: SimServer, wh: Warehouse, tmp: Path, codes: list[str]) -> Any:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(STREAM_SECONDS, stop.set)
    s = _settings(srv, tmp)
    session = RealtimeSession(s, retry=RetryPolicy(0.02, 0.1, 20))
    return await run_stream(
        s, wh, StreamConfig(codes, day=DAY, commit_interval=0.2), stop=stop, session=session
    )


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("notebook")
    ws = WsConfig(mode="replay", replay_day=DAY, speed=600, step=0.05)
    with SimServer(Simulator(SimConfig(rate_limit=None, clock=lambda: EVENING, ws=ws))) as srv:
        codes = [s.code for s in srv.sim.market.universe.by_market("KOSPI")][:STOCKS]
        with Warehouse(warehouse=tmp / "lake") as wh:
            asyncio.run(_fetch(srv, wh, tmp, codes))
            summary = asyncio.run(_stream(srv, wh, tmp, codes))
        assert summary.status == "completed", summary.error
    con = connect(read_only=True, warehouse=tmp / "lake")
    have = dict(con.execute("SELECT 'trades', count(*) FROM stock_trades").fetchall())
    con.close()
    assert have["trades"] > 50, "the stream ran"
    return tmp / "lake"


def _execute(lake: Path, cwd: Path) -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {**os.environ, "KWH_WAREHOUSE": str(lake), "MPLBACKEND": "Agg"}
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    # the kernel inherits this environment: KWH_WAREHOUSE points the notebook at the test's lake
    client.execute(env=env)
    return nb


def _images(cell: Any) -> list[bytes]:
    return [
        base64.b64decode(out["data"]["image/png"])
        for out in cell.get("outputs", [])
        if out.get("output_type") in ("display_data", "execute_result") and "image/png" in out.get("data", {})
    ]


def test_the_notebook_runs_and_every_figure_is_drawn(lake: Path) -> None:
    nb = _execute(lake, NOTEBOOK.parent)
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    figures = [c for c in code if "plt.show()" in c.source or "fig" in c.metadata.get("tags", [])]
    assert len(figures) >= 7, "the notebook draws prices, beta, VWAP, investors, program, short, session"
    for cell in figures:
        pngs = _images(cell)
        assert pngs, f"no image from the cell:\n{cell.source[:200]}"
        assert all(len(p) > MIN_PNG_BYTES for p in pngs), f"a tiny image from:\n{cell.source[:200]}"
    text = "".join(
        o.get("text", "") + "".join(o.get("data", {}).get("text/plain", ""))
        for c in code
        for o in c.get("outputs", [])
    )
    assert str(lake) in text, "the notebook read the test's lake (KWH_WAREHOUSE), not another one"


def test_the_notebook_fails_on_a_lake_without_the_data(tmp_path: Path) -> None:
    """Its checks are real: an empty lake (a stock list only) stops it at the first plot."""
    with Warehouse(warehouse=tmp_path / "empty") as wh:
        wh.write(
            "stock_bars_daily",
            pl.DataFrame(
                {"symbol": ["005930"], "date": [DAY], "adjusted": [True], "open": [1], "high": [1]}
                | {"low": [1], "close": [1], "volume": [1], "turnover": [1]}
            ),
            Run.new("notebook-test"),
        )
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="AssertionError"):
        _execute(tmp_path / "empty", NOTEBOOK.parent)
