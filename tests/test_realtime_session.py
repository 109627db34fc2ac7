"""The realtime session against a fake socket and a fake token endpoint: no network."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close

from connectors import (
    Gap,
    LoginRefused,
    RawFrame,
    RealtimeSession,
    RetryPolicy,
    SessionReplaced,
    Settings,
    SubscriptionRefused,
)
from connectors.realtime_events import redact, websocket_url
from connectors.subscriptions import MAX_ITEMS, Subscriptions, restore_requests

REAL = '{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"090001","10":"+100"}}]}'


class FakeSocket:
    def __init__(self, server: FakeKiwoom) -> None:
        self.server = server
        self.inbox: asyncio.Queue[str | bytes | Close] = asyncio.Queue()
        self.sent: list[str | bytes] = []
        self.closed = False

    async def send(self, message: str | bytes) -> None:
        if self.closed:
            raise ConnectionClosedError(Close(1006, ""), None)
        self.sent.append(message)
        self.server.on_message(self, message)

    async def recv(self, decode: bool | None = None) -> str | bytes:
        item = await self.inbox.get()
        if isinstance(item, Close):
            self.closed = True
            raise ConnectionClosedError(item, None)
        if decode is False and isinstance(item, str):  # as websockets gives a text frame undecoded
            return item.encode()
        return item

    async def close(self) -> None:
        self.closed = True

    def push(self, *frames: str | bytes) -> None:
        for f in frames:
            self.inbox.put_nowait(f)

    def drop(self, code: int = 1011) -> None:
        self.inbox.put_nowait(Close(code, "gone"))


class FakeKiwoom:
    """Answers LOGIN (from ``login_replies``, else success) and acknowledges REG/REMOVE."""

    def __init__(self) -> None:
        self.sockets: list[FakeSocket] = []
        self.login_replies: deque[dict[str, Any] | None] = deque()  # None: close without a reply
        self.requests: list[tuple[int, dict[str, Any]]] = []
        self.tokens = 0

    async def connect(self, url: str) -> FakeSocket:
        sock = FakeSocket(self)
        self.sockets.append(sock)
        return sock

    def on_message(self, sock: FakeSocket, message: str | bytes) -> None:
        body = orjson.loads(message)
        trnm = body.get("trnm")
        if trnm == "LOGIN":
            reply = self.login_replies.popleft() if self.login_replies else {"return_code": 0}
            if reply is None:
                sock.drop(1000)
            else:
                sock.push(orjson.dumps({"trnm": "LOGIN", "return_msg": "", **reply}).decode())
        elif trnm in ("REG", "REMOVE"):
            self.requests.append((len(self.sockets), body))
            sock.push(orjson.dumps({"trnm": trnm, "return_code": 0, "return_msg": ""}).decode())

    def token_endpoint(self, request: httpx.Request) -> httpx.Response:
        self.tokens += 1
        body = {"token": f"SECRET-TOKEN-{self.tokens}", "expires_dt": "20991231235959", "return_code": 0}
        return httpx.Response(200, json=body)

    @property
    def current(self) -> FakeSocket:
        return self.sockets[-1]


class Recording(RetryPolicy):
    def __init__(self) -> None:
        super().__init__(base=0.001, cap=0.001, max_retries=None)
        object.__setattr__(self, "attempts", [])

    def delay(self, attempt: int, uniform: Any = None) -> float:
        self.attempts.append(attempt)  # type: ignore[attr-defined]
        return 0.001


def session(fake: FakeKiwoom, **kw: Any) -> RealtimeSession:
    settings = Settings.load(base_url="http://kiwoom.test", env={}, env_file=None, token_cache=None)
    kw.setdefault("retry", Recording())
    return RealtimeSession(
        settings, connect=fake.connect, transport=httpx.MockTransport(fake.token_endpoint), **kw
    )


async def next_event(rt: RealtimeSession) -> RawFrame | Gap:
    return await asyncio.wait_for(rt.__anext__(), 2)


async def next_frame(rt: RealtimeSession) -> RawFrame:
    event = await next_event(rt)
    assert isinstance(event, RawFrame), event
    return event


async def until(predicate: Any, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


def test_websocket_urls_follow_the_rest_host():
    assert websocket_url("https://api.kiwoom.com") == "wss://api.kiwoom.com:10000/api/dostk/websocket"
    assert websocket_url("https://mockapi.kiwoom.com") == "wss://mockapi.kiwoom.com:10000/api/dostk/websocket"
    assert websocket_url("http://127.0.0.1:8123") == "ws://127.0.0.1:8123/api/dostk/websocket"


@pytest.mark.asyncio
async def test_login_sends_the_token_and_never_shows_it(caplog):
    fake = FakeKiwoom()
    caplog.set_level(logging.DEBUG)
    async with session(fake) as rt:
        login = orjson.loads(fake.current.sent[0])
        assert login == {"trnm": "LOGIN", "token": "SECRET-TOKEN-1"}
        assert "SECRET" not in repr(rt) and "SECRET" not in caplog.text
        assert b"***" in redact(fake.current.sent[0]) and b"SECRET" not in redact(fake.current.sent[0])
        assert rt.stats.logins == 1 and rt.stats.tokens_issued == 1


@pytest.mark.asyncio
async def test_ping_is_echoed_unchanged_and_system_never(caplog):
    fake = FakeKiwoom()
    async with session(fake) as rt:
        text, raw = '{"trnm":"PING"}', b'{ "trnm" : "PING",  "n": 1 }'
        fake.current.push(text, raw, '{"trnm":"SYSTEM","code":"R10002","message":"x"}', REAL)
        frame = await next_event(rt)
        assert isinstance(frame, RawFrame) and frame.trnm == "REAL"
        echoes = fake.current.sent[1:]
        # the same bytes back, as a text frame (frames are read undecoded; the server's PING is text)
        assert echoes == [text, raw.decode()] and all(isinstance(e, str) for e in echoes)
        assert rt.stats.pings == 2 and rt.stats.system == 1
        assert "R10002: no PING reply reached the server" in caplog.text  # logged with its meaning


@pytest.mark.asyncio
async def test_subscribing_150_items_sends_two_requests_and_a_reconnect_restores_exactly_them():
    fake = FakeKiwoom()
    items = [f"{i:06d}" for i in range(150)]
    async with session(fake) as rt:
        await rt.subscribe(items, ["0B", "0D"])
        regs = [body for _, body in fake.requests]
        assert [len(b["data"][0]["item"]) for b in regs] == [100, 50]
        assert [b["refresh"] for b in regs] == ["1", "1"] and {b["grp_no"] for b in regs} == {"1"}
        await rt.unsubscribe(items[:10], ["0D"])
        assert fake.requests[-1][1]["trnm"] == "REMOVE" and "refresh" not in fake.requests[-1][1]
        fake.current.push(REAL)
        first = await next_frame(rt)
        before = len(fake.requests)
        fake.current.drop()
        gap = await next_event(rt)
        assert isinstance(gap, Gap) and gap.after_seq == first.seq == 1
        assert gap.end_ns is not None and gap.start_ns <= gap.end_ns and "1011" in gap.reason
        restore = [body for conn, body in fake.requests[before:] if conn == 2]
        assert restore[0]["refresh"] == "0" and all(b["refresh"] == "1" for b in restore[1:])
        assert all(len({i for d in b["data"] for i in d["item"]}) <= MAX_ITEMS for b in restore)
        pairs = {(i, t) for b in restore for d in b["data"] for i in d["item"] for t in d["type"]}
        assert pairs == {(i, t) for i in items for t in ("0B", "0D")} - {(i, "0D") for i in items[:10]}
        fake.current.push(REAL)
        after = await next_event(rt)
        assert isinstance(after, RawFrame) and after.seq == 2 and after.connection == 2
        assert rt.stats.reconnects == 1 and rt.stats.gaps == 1


def test_replace_keeps_only_the_new_set_and_restore_groups_by_types():
    subs = Subscriptions()
    subs.add("1", ["A", "B"], ["0B"])
    reqs = subs.add("1", ["C"], ["0D"], replace=True)
    assert reqs[0]["refresh"] == "0" and subs.pairs() == {("1", "C", "0D")}
    subs.add("2", ["A"], ["0B", "0D"])
    bodies = restore_requests(subs)
    assert [(b["grp_no"], b["refresh"]) for b in bodies] == [("1", "0"), ("2", "0")]
    with pytest.raises(SubscriptionRefused):
        subs.add("1", [], ["0B"])
    with pytest.raises(SubscriptionRefused):
        subs.add("1", ["A"], ["0BX"])


@pytest.mark.asyncio
async def test_r10001_stops_for_good_without_reconnecting():
    fake = FakeKiwoom()
    async with session(fake) as rt:
        fake.current.push(REAL, '{"trnm":"SYSTEM","code":"R10001","message":"동일한 App key"}')
        assert isinstance(await next_event(rt), RawFrame)
        gap = await next_event(rt)
        assert isinstance(gap, Gap) and gap.end_ns is None and "R10001" in gap.reason
        with pytest.raises(SessionReplaced, match="same app key"):
            await next_event(rt)
        await asyncio.sleep(0.05)
        assert len(fake.sockets) == 1 and rt.stats.reconnects == 0
        with pytest.raises(SessionReplaced):  # and it stays stopped
            await next_event(rt)


@pytest.mark.asyncio
async def test_8005_at_login_issues_a_new_token_once():
    fake = FakeKiwoom()
    refused = {"return_code": 3, "return_msg": "인증에 실패했습니다[8005:Token이 유효하지 않습니다]"}
    fake.login_replies.extend([refused])
    async with session(fake) as rt:
        assert fake.tokens == 2 and rt.stats.logins == 1
        assert orjson.loads(fake.current.sent[0])["token"] == "SECRET-TOKEN-2"
    fake = FakeKiwoom()
    fake.login_replies.extend([refused, refused])
    with pytest.raises(LoginRefused, match="8005") as info:
        await session(fake).start()
    assert "SECRET" not in str(info.value) and fake.tokens == 2 and len(fake.sockets) == 2


@pytest.mark.asyncio
async def test_a_close_during_the_handshake_backs_off_further():
    fake = FakeKiwoom()
    fake.login_replies.extend([None])  # closed before the LOGIN reply
    retry = Recording()
    async with session(fake, retry=retry) as rt:
        assert rt.stats.logins == 1 and len(fake.sockets) == 2
        fake.current.drop()
        await until(lambda: len(fake.sockets) == 3 and rt.connected)
    assert retry.attempts == [2, 0]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_slow_consumer_gets_backpressure_not_a_growing_queue():
    fake = FakeKiwoom()
    async with session(fake, queue_size=5) as rt:
        fake.current.push(*[REAL] * 50)
        await until(lambda: rt.stats.queued == 5)
        await asyncio.sleep(0.02)
        assert rt.stats.queued == 5 and rt.stats.backpressure == 1
        assert fake.current.inbox.qsize() >= 40  # the socket is not being read
        seqs = [(await next_frame(rt)).seq for _ in range(50)]
        assert seqs == list(range(1, 51)) and rt.stats.max_queued == 5


@pytest.mark.asyncio
async def test_a_malformed_frame_is_reported_and_the_session_goes_on():
    fake = FakeKiwoom()
    async with session(fake) as rt:
        fake.current.push('{"trnm":"REAL","data":[{"ty', b"\xff\xfe", REAL)
        bad = await next_event(rt)
        assert isinstance(bad, RawFrame) and bad.trnm is None and "not JSON" in (bad.error or "")
        assert (await next_frame(rt)).error is not None
        good = await next_frame(rt)
        assert good.trnm == "REAL" and good.entries == 1 and good.seq == 3
        assert rt.stats.malformed == 2 and rt.stats.reconnects == 0
