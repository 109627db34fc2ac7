"""The realtime session against the simulator over real loopback WebSocket (uvicorn in a thread)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import httpx
import orjson
import pytest

from connectors import Gap, LoginRefused, RawFrame, RealtimeSession, SessionReplaced, Settings
from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from simulator.ws_feed import WsConfig

DAY = date(2025, 12, 29)
EVENING = datetime(2025, 12, 29, 20, 0, tzinfo=KST)  # no trading: nothing streams


def make_server(**ws: Any) -> SimServer:
    cfg = WsConfig(**{"ping_interval": 0.1, "ping_timeout": 0.5, **ws})
    return SimServer(Simulator(SimConfig(rate_limit=None, clock=lambda: EVENING, ws=cfg)))


@pytest.fixture
def quiet() -> Iterator[SimServer]:
    with make_server() as srv:
        yield srv


@pytest.fixture
def replay() -> Iterator[SimServer]:
    with make_server(mode="replay", replay_day=DAY, speed=2000, step=0.02) as srv:
        yield srv


def settings(srv: SimServer, tmp_path: Any, **kw: Any) -> Settings:
    return Settings.load(
        base_url=srv.base_url,
        env={},
        env_file=None,
        token_cache=tmp_path / "tokens",
        backoff_base=0.02,
        backoff_max=0.1,
        **kw,
    )


def sim_ws(srv: SimServer, **control: Any) -> dict[str, Any]:
    if control:
        return httpx.post(srv.base_url + "/_sim/ws", json=control).json()
    return httpx.get(srv.base_url + "/_sim/ws").json()


async def collect(rt: RealtimeSession, stop: Any, timeout: float = 10.0) -> list[RawFrame | Gap]:
    events: list[RawFrame | Gap] = []
    async with asyncio.timeout(timeout):
        async for event in rt:
            events.append(event)
            if stop(events):
                return events
    return events


@pytest.mark.asyncio
async def test_login_150_items_in_two_regs_and_every_ping_is_echoed(quiet, tmp_path):
    codes = [s.code for s in quiet.sim.market.universe.stocks[:150]]
    async with RealtimeSession(settings(quiet, tmp_path)) as rt:
        await rt.subscribe(codes, ["0B", "0D"])
        await asyncio.sleep(1.5)  # 15 PING intervals, three server timeouts
        stats = rt.stats
    conn = sim_ws(quiet)["connections"][0]
    assert quiet.sim.stats["ws_reg"] == 2 and conn["items"] == 150
    assert conn["pings"] >= 8 and conn["echoes"] == conn["pings"] and conn["bad_echoes"] == 0
    assert stats.pings == conn["pings"] and stats.reconnects == 0 and stats.system == 0
    assert conn["closed"] == "client went away"  # not R10002


@pytest.mark.asyncio
async def test_a_drop_reconnects_with_a_fresh_token_resubscribes_and_reports_the_gap(replay, tmp_path):
    async with RealtimeSession(settings(replay, tmp_path)) as rt:
        await rt.subscribe(["005930", "000660"], ["0B"])
        replay.sim.expire_tokens()  # the next LOGIN gets 8005: the session must issue a new token
        sim_ws(replay, faults={"drop_after": 3, "drops": 1})
        events = await collect(rt, lambda ev: isinstance(ev[-1], RawFrame) and ev[-1].connection == 2)
        stats = rt.stats
    gaps = [e for e in events if isinstance(e, Gap)]
    frames = [e for e in events if isinstance(e, RawFrame)]
    assert len(gaps) == 1 and gaps[0].after_seq == 3 and "1001" in gaps[0].reason
    assert gaps[0].end is not None and gaps[0].start <= gaps[0].end
    assert gaps[0].end_ns is not None and frames[2].received_ns <= gaps[0].start_ns + 1
    assert gaps[0].end_ns <= frames[3].received_ns
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    assert stats.tokens_issued == 2 and stats.logins == 2 and stats.reconnects >= 1
    conns = sim_ws(replay)["connections"]
    # the first reconnect met 8005 (its LOGIN refused); the next, with a new token, resubscribed
    assert [c["items"] for c in conns] == [2, 0, 2] and conns[0]["frames"] == 3
    assert "8005" in conns[1]["closed"]


@pytest.mark.asyncio
async def test_r10001_stops_the_older_session_with_a_clear_error_and_no_reconnect(quiet, tmp_path):
    first = RealtimeSession(settings(quiet, tmp_path))
    await first.start()
    async with RealtimeSession(settings(quiet, tmp_path)) as second:
        with pytest.raises(SessionReplaced, match=r"R10001.*same app key"):
            await collect(first, lambda ev: False, timeout=5)
        await asyncio.sleep(0.3)
        assert second.connected and first.stats.reconnects == 0
        assert len(sim_ws(quiet)["connections"]) == 2
    await first.close()


@pytest.mark.asyncio
async def test_a_refused_login_is_a_clear_error(quiet, tmp_path):
    sim_ws(quiet, faults={"refuse_logins": 2})
    with pytest.raises(LoginRefused, match="8005"):
        await RealtimeSession(settings(quiet, tmp_path)).start()
    sim_ws(quiet, faults={"refuse_logins": 1, "refuse_code": 8010})
    started = time.monotonic()
    with pytest.raises(LoginRefused, match="8010"):
        await RealtimeSession(settings(quiet, tmp_path)).start()
    assert time.monotonic() - started < 2 and quiet.sim.stats["ws_login_refused"] == 3


@pytest.mark.asyncio
async def test_a_malformed_frame_is_reported_and_the_session_survives(replay, tmp_path):
    sim_ws(replay, faults={"malformed": 1})
    async with RealtimeSession(settings(replay, tmp_path)) as rt:
        await rt.subscribe(["005930"], ["0B"])
        events = await collect(rt, lambda ev: len(ev) == 5)
        assert rt.stats.malformed == 1 and rt.stats.reconnects == 0
    first, *rest = events
    assert isinstance(first, RawFrame) and first.trnm is None and "not JSON" in (first.error or "")
    assert all(isinstance(e, RawFrame) and e.trnm == "REAL" and e.connection == 1 for e in rest)


@pytest.mark.asyncio
async def test_a_close_during_the_handshake_is_retried(quiet, tmp_path):
    sim_ws(quiet, faults={"handshake_closes": 1})
    async with RealtimeSession(settings(quiet, tmp_path)) as rt:
        assert rt.connected and rt.stats.reconnects == 1 and rt.stats.gaps == 0
    first = sim_ws(quiet)["connections"][0]
    assert first["closed"].startswith("closed during the handshake")


@pytest.mark.asyncio
async def test_the_server_enforces_ping_echo_and_login_in_time(tmp_path):
    from websockets.asyncio.client import connect

    with make_server(ping_interval=0.1, ping_timeout=0.2, login_timeout=0.2) as srv:
        url = srv.base_url.replace("http", "ws") + "/api/dostk/websocket"
        async with connect(url, ping_interval=None) as ws:  # no LOGIN
            assert '"R10004"' in await asyncio.wait_for(ws.recv(), 2)
        token = httpx.post(
            srv.base_url + "/oauth2/token",
            json={"grant_type": "client_credentials", "appkey": "k", "secretkey": "s"},
        ).json()["token"]
        async with connect(url, ping_interval=None) as ws:
            await ws.send('{"trnm":"LOGIN","token":"' + token + '"}')
            assert '"return_code":0' in await ws.recv()
            assert await ws.recv() == '{"trnm":"PING"}'  # and never answered
            assert '"R10002"' in await asyncio.wait_for(ws.recv(), 2)
        closed = [c["closed"] for c in sim_ws(srv)["connections"]]
        assert closed == ["no LOGIN (R10004)", "no PING echo (R10002)"]


@pytest.mark.asyncio
async def test_the_server_limits_reg_to_100_items_and_honours_refresh():

    with make_server(ping_interval=60) as srv:  # no PING between a REG and its ack
        await _reg_limits(srv)


async def _reg_limits(quiet: SimServer) -> None:
    from websockets.asyncio.client import connect

    token = httpx.post(
        quiet.base_url + "/oauth2/token",
        json={"grant_type": "client_credentials", "appkey": "k", "secretkey": "s"},
    ).json()["token"]
    url = quiet.base_url.replace("http", "ws") + "/api/dostk/websocket"

    def reg(items: list[str], refresh: str, trnm: str = "REG") -> str:
        body = {"trnm": trnm, "grp_no": "1", "refresh": refresh, "data": [{"item": items, "type": ["0B"]}]}
        return orjson.dumps(body).decode()

    async with connect(url, ping_interval=None) as ws:
        await ws.send('{"trnm":"LOGIN","token":"' + token + '"}')
        await ws.recv()
        codes = [f"{i:06d}" for i in range(101)]
        replies = []
        for frame in (reg(codes, "1"), reg(codes[:60], "1"), reg(codes[60:], "1"), reg(codes[:5], "0")):
            await ws.send(frame)
            replies.append(orjson.loads(await ws.recv()))
            if len(replies) == 3:
                items_after_two = sim_ws(quiet)["connections"][0]["items"]
        await ws.send(reg(codes[:2], "", "REMOVE"))
        replies.append(orjson.loads(await ws.recv()))
        items_at_end = sim_ws(quiet)["connections"][0]["items"]
    assert [r["return_code"] for r in replies] == [1, 0, 0, 0, 0]
    assert all(set(r) == {"trnm", "return_code", "return_msg"} for r in replies)  # acks name no items
    assert items_after_two == 101 and items_at_end == 3  # refresh "0" replaced the 101 with 5


@pytest.mark.asyncio
async def test_random_drops_give_gaps_and_a_takeover_fault_stops_the_session(replay, tmp_path):
    sim_ws(replay, faults={"drop_rate": 0.3, "seed": 1})
    async with RealtimeSession(settings(replay, tmp_path)) as rt:
        await rt.subscribe(["005930"], ["0B"])
        events = await collect(rt, lambda ev: sum(isinstance(e, Gap) for e in ev) == 2)
        sim_ws(replay, faults={"drop_rate": 0.0, "takeovers": 1})
        with pytest.raises(SessionReplaced, match="R10001"):
            await collect(rt, lambda ev: False)
        assert rt.stats.gaps >= 3 and rt.stats.reconnects >= 2  # drops may race the control call
    frames = [e for e in events if isinstance(e, RawFrame)]
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    assert {f.connection for f in frames} >= {1, 2}  # every dropped connection had sent frames
