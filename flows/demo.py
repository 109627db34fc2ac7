"""``kwh demo``: the whole batch pipeline against the simulator, in a few minutes.

Starts the simulator on a free loopback port (a subprocess, as a user would),
refreshes the universe, backfills daily bars of 20 stocks over 3 years,
1-minute bars of 5 of them over their last 5 trading days, sector and gold
daily bars, an investor, a program-trading and the short-selling dataset for
those stocks, all through the Prefect flows; then streams the last trading
day's realtime trades and order book of 5 stocks for a few seconds (the
simulator replays that session at 600x), prints ``kwh status`` and queries,
and stops the simulator. A second run fetches nothing new.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from flows.lake_cmds import console, frame_table, show_status
from schemas import calendar as cal
from warehouse import LakeConfig, Warehouse, connect

DEMO_STOCKS = 20
MINUTE_STOCKS = 5
SECTORS = "001,101"
GOLD = "M04020000"
STREAM_SECONDS = 8.0
STREAM_SQL = """
SELECT symbol, count(*) AS trades,
       min(ts AT TIME ZONE 'Asia/Seoul')::TIME AS first, max(ts AT TIME ZONE 'Asia/Seoul')::TIME AS last,
       round(sum(price * size) / sum(size)) AS vwap, max(cum_volume) AS volume, sum(side = 1) AS buys
FROM stock_trades GROUP BY ALL ORDER BY symbol
""".strip()
SAMPLE_SQL = """
SELECT b.symbol, l.name, count(*) AS days, min(b.date) AS first, max(b.date) AS last,
       round(avg(b.close)) AS avg_close, round(sum(b.turnover) / 1e12, 2) AS turnover_trn_won
FROM stock_bars_daily b JOIN stock_list l ON l.symbol = b.symbol
GROUP BY ALL ORDER BY turnover_trn_won DESC LIMIT 10
""".strip()


def _die_with_parent() -> None:
    """Linux: the simulator gets SIGTERM if the demo dies, so no server is left behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@contextlib.contextmanager
def simulator(port: int, replay_day: date | None = None) -> Iterator[str]:
    """``kwh sim`` as a subprocess; yields its base URL and stops it afterwards.

    ``replay_day``: its WebSocket replays that day's session at 600x from the first REG.
    """
    cmd = [sys.executable, "-c", "from flows.cli import main; main()", "sim", "--port", str(port)]
    if replay_day is not None:
        cmd += ["--ws-mode", "replay", "--ws-day", replay_day.isoformat(), "--ws-speed", "600"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the simulator exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                httpx.get(f"{url}/_sim/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start within 30 s") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _demo_stocks(warehouse: Path | None) -> list[str]:
    with Warehouse(LakeConfig.load(warehouse)) as wh:
        listed = wh.sql("SELECT symbol FROM stock_list WHERE mrkt_tp = '0' ORDER BY symbol")
    codes = listed["symbol"].to_list()
    picked = [c for c in ("005930", "000660") if c in codes]
    picked += [c for c in codes if c not in picked]
    return picked[:DEMO_STOCKS]


def _stream(url: str, warehouse: Path | None, stocks: list[str], day: date) -> bool:
    """``kwh stream`` in-process for ``STREAM_SECONDS``; whether it completed."""
    import asyncio

    from connectors import Settings
    from flows.stream import StreamConfig, run_stream

    with Warehouse(LakeConfig.load(warehouse)) as wh:
        if (
            "stock_trades" in wh.tables()
            and wh.sql("SELECT count(*) AS n FROM stock_trades WHERE date = ?", [day])["n"][0]
        ):
            # a replay starts at the open again: its book snapshots would be stored a second time
            console.print(f"{day}'s session is already streamed: skipped (the replay would repeat it)")
            return True

    async def go() -> Any:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(STREAM_SECONDS, stop.set)
        with Warehouse(LakeConfig.load(warehouse)) as wh:
            return await run_stream(Settings.load(base_url=url), wh, StreamConfig(stocks, day=day), stop=stop)

    summary = asyncio.run(go())
    c = summary.committer
    console.print(
        f"stream {summary.status}: {summary.session.get('entries', 0)} entries received, "
        f"{c.get('records', 0)} log records committed, rows {c.get('rows', {})}"
        + (f"; {summary.error}" if summary.error else "")
    )
    return bool(summary.status == "completed")


def run_demo(warehouse: Path | None, port: int) -> int:
    from flows.ingest import complete_through
    from flows.run_cmds import _print_summary, _run_flow

    started = time.monotonic()
    last = complete_through(datetime.now(cal.KST))
    three_years = date(last.year - 3, last.month, min(last.day, 28)) + timedelta(days=1)
    five_days = cal.trading_days(last - timedelta(days=14), last)[-5]
    lake = str(warehouse) if warehouse else None
    failed = False
    with simulator(port, replay_day=last) as url:
        console.rule(f"simulator on {url}; warehouse {LakeConfig.load(warehouse).root}")
        result = _run_flow("refresh_universe", base_url=url, warehouse=lake)
        _print_summary(result)
        failed |= result["status"] != "ok"
        stocks = _demo_stocks(warehouse)
        minute_stocks = stocks[:MINUTE_STOCKS]
        steps: list[tuple[str, dict[str, Any]]] = [
            (
                f"daily bars, {len(stocks)} stocks, {three_years}..{last}",
                dict(datasets=["stock_bars_daily"], symbols=stocks, start=str(three_years), end=str(last)),
            ),
            (
                f"1-minute bars, {len(minute_stocks)} stocks, {five_days}..{last}",
                dict(
                    datasets=["stock_bars_minute"], symbols=minute_stocks, start=str(five_days), end=str(last)
                ),
            ),
            (
                "sector daily bars",
                dict(datasets=["sector_bars_daily"], symbols=SECTORS, start=str(three_years), end=str(last)),
            ),
            (
                "gold daily bars",
                dict(datasets=["gold_bars_daily"], symbols=GOLD, start=str(three_years), end=str(last)),
            ),
            (
                "investors, program trading, short selling",
                dict(
                    datasets=["stock_investor_institution", "stock_program_trading_daily", "short_selling"],
                    symbols=stocks,
                    start=str(last - timedelta(days=90)),
                    end=str(last),
                ),
            ),
        ]
        for title, params in steps:
            console.rule(title)
            result = _run_flow("backfill", base_url=url, warehouse=lake, **params)
            _print_summary(result)
            failed |= result["status"] != "ok"
        console.rule(f"realtime: {last}'s session replayed at 600x, {len(minute_stocks)} stocks, 0B + 0D")
        failed |= not _stream(url, warehouse, minute_stocks, last)
    console.rule("kwh status")
    show_status(Warehouse(LakeConfig.load(warehouse)))
    console.rule('a query: kwh sql "..."')
    console.print(SAMPLE_SQL, highlight=False)
    con = connect(read_only=True, warehouse=warehouse)
    try:
        console.print(frame_table(con.sql(SAMPLE_SQL).pl()))
    finally:
        con.close()
    con = connect(read_only=True, warehouse=warehouse)
    try:
        console.print(STREAM_SQL, highlight=False)
        console.print(frame_table(con.sql(STREAM_SQL).pl()))
    finally:
        con.close()
    console.print(
        f"demo finished in {time.monotonic() - started:.0f} s; run it again: it fetches only what is new"
    )
    return 1 if failed else 0
