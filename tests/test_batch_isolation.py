"""A batch run's jobs fail one by one, permanent errors are not retried, and its counts are the server's.

The command line (in-process, as ``kwh`` runs by default) against the simulator over
HTTP; the simulator's ``/_sim/stats`` counts what it served.
"""

from __future__ import annotations

import json
import threading
from datetime import date

import httpx
import pytest
from typer.testing import CliRunner

from connectors import KiwoomClient, MalformedResponse, Settings
from flows.cli import app
from schemas.calendar import trading_days
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from warehouse import connect

runner = CliRunner()
START, END = date(2025, 1, 2), date(2025, 3, 31)
SYMBOLS = "005930,000660,005380,035420,051910"


def env(tmp_path, **extra: str) -> dict[str, str]:
    return {"COLUMNS": "200", "KIWOOM_TOKEN_CACHE": str(tmp_path / "tokens"), **extra}


def served(sim: SimServer) -> dict[str, int]:
    return httpx.get(f"{sim.base_url}/_sim/stats").json()


def backfill(sim: SimServer, lake, symbols: str, tmp_path, **extra: str):
    args = ["backfill", "-d", "stock_bars_daily", "--symbols", symbols, "--start", str(START),
            "--end", str(END), "--base-url", sim.base_url, "--warehouse", str(lake)]  # fmt: skip
    return runner.invoke(app, args, env=env(tmp_path, **extra))


def last_run(lake) -> tuple[str, dict]:
    con = connect(warehouse=lake)
    try:
        status, summary = con.sql(
            "SELECT status, summary FROM meta.runs ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    return status, json.loads(summary)


def test_one_unknown_symbol_never_blocks_the_rest_of_its_batch(tmp_path):
    lake = tmp_path / "lake"  # no universe yet: the symbols are not checked before the run
    with SimServer(Simulator(SimConfig(n_stocks=40, rate_limit=None))) as sim:
        result = backfill(sim, lake, "005930,999999,000660", tmp_path)
        stats = served(sim)
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "999999" in failed[0] and "1902" in failed[0], result.output
    con = connect(warehouse=lake)
    try:
        counts = dict(con.sql("SELECT symbol, count(*) FROM stock_bars_daily GROUP BY 1").fetchall())
    finally:
        con.close()
    days = len(trading_days(START, END))
    assert counts == {"005930": days, "000660": days}
    assert stats["errors"] == 1  # 999999 asked once: an unknown symbol is not retried
    status, summary = last_run(lake)
    assert status == "failed" and summary["errors"] == 1 and len(summary["failed"]) == 1


def test_wrong_keys_fail_at_once_with_one_token_request(tmp_path):
    config = SimConfig(n_stocks=40, rate_limit=None, app_keys={"right-key": "right-secret"})
    with SimServer(Simulator(config)) as sim:
        result = backfill(
            sim, tmp_path / "lake", "005930,000660", tmp_path, KIWOOM_APP_KEY="wrong", KIWOOM_SECRET_KEY="x"
        )
        stats = served(sim)
    assert result.exit_code == 1, result.output
    assert "refused the keys" in result.output and "KIWOOM_APP_KEY" in result.output
    assert stats.get("au10001") == 1 and stats.get("requests", 0) == 0


def test_a_page_that_is_not_json_is_not_retried_and_a_cut_off_one_is():
    sent: list[str] = []
    pages = iter([b'{"return_code":0,"return_msg":"', b"<html>proxy error</html>"])

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path == "/oauth2/token":
            return httpx.Response(
                200, json={"token": "t", "expires_dt": "29991231235959", "return_code": 0, "return_msg": "ok"}
            )
        return httpx.Response(200, content=next(pages, b'{"return_code":0,"return_msg":"ok"}'))

    async def go() -> None:
        settings = Settings.load(base_url="http://sim.test", env={}, env_file=None, token_cache=None)
        async with KiwoomClient(settings, transport=httpx.MockTransport(handler)) as client:
            client.retry = type(client.retry)(base=0.01, cap=0.01, max_retries=6)
            with pytest.raises(MalformedResponse) as caught:
                await client.request(
                    "ka10081", {"stk_cd": "005930", "base_dt": "20250102", "upd_stkpc_tp": "1"}
                )
            assert not caught.value.retryable
            assert client.stats.requests == 2 and client.stats.retries == 1  # the cut-off body was retried
            assert client.stats.token_requests == 1

    import asyncio

    asyncio.run(go())
    assert sent.count("/api/dostk/chart") == 2


def test_summary_counts_equal_the_servers_under_1700_storms_and_token_churn(tmp_path):
    """The server admits 3 requests a second, the client asks for 12 (1700 storms); tokens are
    forgotten every 12 requests (8005, a re-issue and a replay). The run's counts are the server's."""
    lake = tmp_path / "lake"
    sim_ = Simulator(SimConfig(n_stocks=40, rate_limit=3.0, page_sizes={"daily": 12}))
    stop = threading.Event()

    def churn() -> None:
        # forget the tokens after every 12 TR requests served, not every second: on a loaded machine
        # a second can pass between a re-issue and its replay, and a token that dies before its
        # first use is a failure of the keys (the client re-issues once), not churn
        last = 0
        while not stop.wait(0.02):
            n = sim_.stats.get("ka10081", 0)
            if n - last >= 12:
                sim_.expire_tokens()
                last = n

    with SimServer(sim_) as sim:
        churner = threading.Thread(target=churn, daemon=True)
        churner.start()
        try:
            result = backfill(sim, lake, SYMBOLS, tmp_path, KIWOOM_RATE="12")
        finally:
            stop.set()
            churner.join()
        stats = served(sim)
    assert result.exit_code in (0, 1), result.output
    status, summary = last_run(lake)
    # the storms and the churn happened
    assert stats.get("rejections", 0) > 0 and stats["au10001"] > 1, (stats, result.output)
    assert summary["requests"] == stats["requests"]
    assert summary["pages"] == stats["pages"]
    assert summary["rejections"] == stats["rejections"]
    assert summary["token_requests"] == stats["au10001"]
    line = f"requests {stats['requests']}, pages {stats['pages']}, rejections {stats['rejections']}"
    assert line in result.output
    if status == "ok":
        con = connect(warehouse=lake)
        try:
            rows = con.sql("SELECT count(*) FROM stock_bars_daily").fetchone()[0]
        finally:
            con.close()
        assert rows == len(SYMBOLS.split(",")) * len(trading_days(START, END))
