"""The connector against the simulator over real loopback HTTP (uvicorn in a thread)."""

from __future__ import annotations

import asyncio
import itertools
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import httpx
import pytest

from connectors import (
    AuthError,
    ConnectionFailed,
    InvalidRequest,
    KiwoomAuth,
    KiwoomClient,
    OrderRefused,
    Page,
    PagingError,
    RateLimiter,
    RateLimits,
    RequestRefused,
    Settings,
    UnknownSymbol,
    rows_before,
)
from schemas import calendar as cal
from simulator.app import Faults, SimConfig, Simulator
from simulator.server import SimServer, free_port

KST = cal.KST
AFTER_CLOSE = datetime(2025, 12, 30, 16, 0, tzinfo=KST)
DAILY = {"stk_cd": "005930", "base_dt": "20251230", "upd_stkpc_tp": "1"}


class FakeTime:
    """One clock for the server and the client, moved by the test."""

    def __init__(self, start: datetime = AFTER_CLOSE) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def server() -> Iterator[SimServer]:
    sim = Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None))
    with SimServer(sim) as srv:
        yield srv


def make_client(
    srv: SimServer, tmp_path, *, rate: float | None = None, auth_clock=None, **kw
) -> KiwoomClient:
    overrides = {
        "max_retries": 4,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "token_cache": tmp_path / "tokens",
    }
    overrides.update(kw)
    settings = Settings.load(base_url=srv.base_url, env={}, env_file=None, **overrides)
    limiter = RateLimiter(RateLimits(total=rate)) if rate else RateLimiter(RateLimits(total=None))
    auth = KiwoomAuth(settings, clock=auth_clock) if auth_clock else None
    return KiwoomClient(settings, limiter=limiter, auth=auth)


def run(coro):
    return asyncio.run(coro)


# ---- tokens ------------------------------------------------------------------------------------


def test_token_issued_once_cached_private_and_reused(server, tmp_path):
    async def go() -> None:
        async with make_client(server, tmp_path) as kw:
            await kw.request("ka10081", DAILY)
            await kw.request("ka10081", DAILY)
            assert kw.stats.tokens_issued == 1
        # a new process (new client) reads the cache instead of asking again
        async with make_client(server, tmp_path) as kw:
            await kw.request("ka10081", DAILY)
            assert kw.stats.tokens_issued == 0

    run(go())
    assert server.sim.stats["au10001"] == 1
    (cache,) = (tmp_path / "tokens").iterdir()
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600


def test_token_expiry_in_the_middle_of_a_run_is_refreshed_ahead(tmp_path):
    clock = FakeTime()
    sim = Simulator(SimConfig(token_clock=clock, rate_limit=None, token_lifetime=timedelta(seconds=100)))
    with SimServer(sim) as srv:

        async def go() -> None:
            async with make_client(srv, tmp_path, auth_clock=clock) as kw:
                for _ in range(12):  # 12 x 20 s: the token expires twice during the run
                    page = await kw.request("ka10081", DAILY)
                    assert page.body["return_code"] == 0
                    clock.advance(20)
                assert kw.stats.tokens_issued == 3
                assert kw.stats.retries == 0 and kw.stats.errors == 0

        run(go())
        assert sim.stats["errors"] == 0  # refreshed before expiry: no request ever got 8005
        assert sim.stats["au10001"] == 3


def test_invalid_token_8005_is_reissued_once_and_replayed(server, tmp_path):
    async def go() -> None:
        async with make_client(server, tmp_path) as kw:
            await kw.request("ka10081", DAILY)
            server.sim.expire_tokens()  # the server forgets: the client's token is now invalid
            page = await kw.request("ka10081", DAILY)
            assert page.body["stk_dt_pole_chart_qry"]
            assert kw.stats.tokens_issued == 2 and kw.stats.pages == 2

    run(go())
    assert server.sim.stats["ka10081"] == 3  # the rejected request and its replay
    assert server.sim.stats["au10001"] == 2


def test_8005_after_the_reissue_is_an_auth_error(tmp_path):
    # tokens that are dead on arrival: the one re-issue cannot help
    sim = Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None, token_lifetime=timedelta(0)))
    with SimServer(sim) as srv:

        async def go() -> None:
            async with make_client(srv, tmp_path, token_cache=None) as kw:
                with pytest.raises(AuthError, match="8005") as info:
                    await kw.request("ka10081", DAILY)
                assert info.value.code == 8005 and info.value.api_id == "ka10081"

        run(go())
        assert sim.stats["ka10081"] == 2 and sim.stats["au10001"] == 2


def test_revoke(server, tmp_path):
    async def go() -> None:
        async with make_client(server, tmp_path) as kw:
            await kw.request("ka10081", DAILY)
            await kw.revoke()
            assert kw.auth.token is None
            assert not list((tmp_path / "tokens").iterdir())
            await kw.request("ka10081", DAILY)
            assert kw.stats.tokens_issued == 2

    run(go())
    assert server.sim.stats["au10002"] == 1


def test_wrong_app_key_is_an_auth_error(tmp_path):
    sim = Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None, app_keys={"good": "secret"}))
    with SimServer(sim) as srv:

        async def go() -> None:
            async with make_client(srv, tmp_path, app_key="bad", secret_key="wrong") as kw:
                with pytest.raises(AuthError, match="token issue refused") as info:
                    await kw.request("ka10081", DAILY)
                assert info.value.code == 8001
                assert "wrong" not in str(info.value) and "bad" not in str(info.value)

        run(go())
        assert sim.stats["ka10081"] == 0


# ---- paging ------------------------------------------------------------------------------------


@pytest.fixture
def paging_server() -> Iterator[SimServer]:
    sim = Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None, page_sizes={"daily": 30}))
    with SimServer(sim) as srv:
        yield srv


def _dates(page) -> list[str]:
    return [row["dt"] for row in page.body["stk_dt_pole_chart_qry"]]


def test_paging_follows_headers_and_stops_at_the_date(paging_server, tmp_path):
    start = date(2023, 6, 1)

    async def go() -> list:
        async with make_client(paging_server, tmp_path) as kw:
            return [p async for p in kw.pages("ka10081", DAILY, stop=rows_before("ka10081", start))]

    pages = run(go())
    assert len(pages) >= 20
    assert paging_server.sim.stats["ka10081"] == len(pages)  # no page fetched past the stop
    assert [p.number for p in pages] == list(range(1, len(pages) + 1))
    got = [d for p in pages for d in _dates(p)]
    assert len(got) == len(set(got))  # no row twice
    assert got == sorted(got, reverse=True)  # newest first, across pages
    window = {d.strftime("%Y%m%d") for d in cal.trading_days(start, date(2025, 12, 30))}
    assert window <= set(got)  # every trading day of the window
    assert min(_dates(pages[-1])) < "20230601" <= min(_dates(pages[-2]))
    assert pages[0].key is None and all(p.key == q.next_key for q, p in itertools.pairwise(pages))


def test_resume_from_a_saved_next_key(paging_server, tmp_path):
    stop = rows_before("ka10081", date(2024, 1, 2))

    async def go() -> tuple[list, list, list]:
        async with make_client(paging_server, tmp_path) as kw:
            full = [p async for p in kw.pages("ka10081", DAILY, stop=stop)]
            first = []
            async for p in kw.pages("ka10081", DAILY, stop=stop):
                first.append(p)
                if len(first) == 4:
                    break  # the process dies here, after saving p.next_key
        async with make_client(paging_server, tmp_path) as kw:
            rest = [p async for p in kw.pages("ka10081", DAILY, stop=stop, resume_key=first[-1].next_key)]
        return full, first, rest

    full, first, rest = run(go())
    assert len(full) > 6
    assert [d for p in first + rest for d in _dates(p)] == [d for p in full for d in _dates(p)]
    assert len(rest) == len(full) - 4


def test_repeated_next_key_is_an_error(tmp_path):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"token": "t", "expires_dt": "29991231235959", "return_code": 0})
        calls.append(request.headers.get("next-key"))
        body = {"stk_cd": "005930", "stk_dt_pole_chart_qry": [], "return_code": 0, "return_msg": ""}
        return httpx.Response(200, json=body, headers={"cont-yn": "Y", "next-key": "same"})

    settings = Settings.load(base_url="http://kiwoom.test", env={}, env_file=None, token_cache=None)

    async def go() -> None:
        async with KiwoomClient(
            settings, transport=httpx.MockTransport(handler), limiter=RateLimiter(RateLimits(total=None))
        ) as kw:
            with pytest.raises(PagingError, match="repeated") as info:
                async for _ in kw.pages("ka10081", DAILY):
                    pass
            assert info.value.next_key == "same"

    run(go())
    assert calls == [None, "same"]


# ---- errors: retried or not --------------------------------------------------------------------


@pytest.mark.parametrize("style", ["code", "429"])
def test_rate_limit_rejections_are_retried(tmp_path, style):
    sim = Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=3, rejection=style))
    with SimServer(sim) as srv:

        async def go() -> KiwoomClient:
            # the client believes in 6/s: it learns the server's 3/s from the rejections
            async with make_client(srv, tmp_path, rate=6, max_retries=8) as kw:
                pages = await asyncio.gather(*(kw.request("ka10081", DAILY) for _ in range(12)))
                assert all(p.body["return_code"] == 0 for p in pages)
                return kw

        kw = run(go())
        assert sim.stats["rejections"] > 0
        assert kw.stats.rejections == sim.stats["rejections"] and kw.stats.retries >= kw.stats.rejections
        assert kw.limiter.rejections == kw.stats.rejections


@pytest.mark.parametrize(
    ("faults", "counter"),
    [
        (Faults(error_rate=0.4, seed=1), "fault_error"),
        (Faults(drop_rate=0.4, seed=2), "fault_drop"),
        (Faults(malformed_rate=0.4, seed=3), "fault_malformed"),
    ],
)
def test_server_errors_drops_and_broken_bodies_are_retried(tmp_path, faults, counter):
    sim = Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None, faults=faults))
    with SimServer(sim) as srv:

        async def go() -> KiwoomClient:
            async with make_client(srv, tmp_path, max_retries=10) as kw:
                for _ in range(10):
                    page = await kw.request("ka10081", DAILY)
                    assert page.body["stk_dt_pole_chart_qry"]
                return kw

        kw = run(go())
        assert sim.stats[counter] > 0
        assert kw.stats.retries == sim.stats[counter] and kw.stats.pages == 10


def test_timeouts_are_retried_then_raised(tmp_path):
    sim = Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None, faults=Faults(latency=0.5)))
    with SimServer(sim) as srv:

        async def go() -> None:
            async with make_client(srv, tmp_path, max_retries=2, timeout=0.1) as kw:
                with pytest.raises(ConnectionFailed, match="timed out"):
                    await kw.request("ka10081", DAILY)
                assert kw.stats.retries == 2
                assert kw.stats.requests == 3  # counted as they go on the wire

        run(go())
        # the server saw at most those three; on a loaded machine an attempt can time out
        # while connecting (ConnectTimeout), before the server sees it
        assert 1 <= sim.stats["ka10081"] <= 3


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        ({"base_dt": "20251230", "upd_stkpc_tp": "1"}, InvalidRequest, 1511),  # missing stk_cd
        ({**DAILY, "base_dt": "20251332"}, InvalidRequest, 1517),  # not a date
        ({**DAILY, "stk_cd": "005930", "base_dt": "2025-12-30"}, InvalidRequest, 1517),  # not YYYYMMDD
        ({**DAILY, "stk_cd": "999999"}, UnknownSymbol, 1902),
    ],
)
def test_bad_input_is_never_retried(server, tmp_path, body, error, code):
    async def go() -> None:
        async with make_client(server, tmp_path) as kw:
            with pytest.raises(error) as info:
                await kw.request("ka10081", body, validate=False)
            assert info.value.code == code and kw.stats.retries == 0

    run(go())
    assert server.sim.stats["ka10081"] == 1


def test_missing_field_is_caught_before_sending(server, tmp_path):
    async def go() -> None:
        async with make_client(server, tmp_path) as kw:
            with pytest.raises(RequestRefused, match="stk_cd"):
                await kw.request("ka10081", {"base_dt": "20251230", "upd_stkpc_tp": "1"})

    run(go())
    assert server.sim.stats["requests"] == 0


def test_order_tr_refused_with_zero_requests(server, tmp_path):
    async def go() -> KiwoomClient:
        async with make_client(server, tmp_path) as kw:
            for api_id in ("kt10000", "kt10001", "kt10002", "kt10003"):
                with pytest.raises(OrderRefused):
                    await kw.request(api_id, {"dmst_stex_tp": "KRX", "stk_cd": "005930", "ord_qty": "1"})
            return kw

    kw = run(go())
    assert kw.stats.requests == 0
    assert server.sim.stats.total() == 0  # not even a token was asked for


def test_wrong_path_and_unknown_api_id_codes(server):
    async def go() -> list[dict]:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            token = (
                await http.post(
                    "/oauth2/token",
                    json={"grant_type": "client_credentials", "appkey": "a", "secretkey": "b"},
                )
            ).json()["token"]
            headers = {"authorization": f"Bearer {token}"}
            out = []
            for api_id, path in (("ka10081", "/api/dostk/stkinfo"), ("ka99999", "/api/dostk/chart")):
                r = await http.post(path, json=DAILY, headers={**headers, "api-id": api_id})
                out.append(r.json())
            return out

    wrong_path, unknown = run(go())
    assert "[1504:" in wrong_path["return_msg"] and wrong_path["return_code"] != 0
    assert "[1505:" in unknown["return_msg"]


def test_kwh_sim_serves_on_the_given_port(tmp_path):
    port = free_port()
    kwh = [sys.executable, "-c", "from flows.cli import app; app()"]
    proc = subprocess.Popen([*kwh, "sim", "--port", str(port), "--rate", "0"], stdout=subprocess.DEVNULL)
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base_url + "/_sim/stats", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "kwh sim did not come up"
                time.sleep(0.2)
        settings = Settings.load(base_url=base_url, env={}, env_file=None, token_cache=None)

        async def go() -> Page:
            async with KiwoomClient(settings, limiter=RateLimiter(RateLimits(total=None))) as kw:
                return await kw.request("ka10001", {"stk_cd": "005930"})

        page = run(go())
        assert page.body["stk_nm"] == "삼성전자"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
