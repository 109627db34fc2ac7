"""The simulator's WebSocket: ``/api/dostk/websocket`` as WIRE_NOTES.md describes Kiwoom's.

- ``LOGIN`` is checked against the tokens the REST side issued (8005 for an
  unknown or expired one); no LOGIN within ``login_timeout``: ``SYSTEM R10004``
  and close. A second LOGIN with the same app key closes the older connection
  with ``SYSTEM R10001``.
- ``PING`` every ``ping_interval`` s; an echo that is not the same text within
  ``ping_timeout`` s: ``SYSTEM R10002`` and close.
- ``REG``/``REMOVE`` per group, at most ``max_items`` items per request,
  ``refresh`` "0" replacing the group's registrations and "1" adding; the ack
  names no items.
- ``REAL`` frames of 0B/0D entries from ``ws_feed`` (the market model's ticks).

Fault knobs (``WsFaults``, changed at run time with ``POST /_sim/ws``) and
per-connection counters of what was sent (``GET /_sim/ws``) are test hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from simulator.wire import error_body
from simulator.ws_feed import Feed, LoadPacer, ReplayClock, TickCache, WsConfig, default_day

if TYPE_CHECKING:
    from simulator.app import Simulator

__all__ = ["PING", "WsFaults", "WsServer"]

PING = '{"trnm":"PING"}'
_KEEP = 1000  # connections whose counters /_sim/ws keeps
SYSTEM_TEXT = {
    "R10001": "동일한 App key로 접속이 되어 기존 세션을 종료합니다",
    "R10002": "PING 응답이 없어 접속을 종료합니다",
    "R10004": "LOGIN 요청이 없어 접속을 종료합니다",
}


@dataclass
class WsFaults:
    """Injected WebSocket failures. Counts are one-shot: each firing uses one up (-1: always)."""

    drop_after: int = 0  # close a connection after it sent this many REAL frames (0: off)
    drops: int = 0  # how many connections to drop that way
    drop_rate: float = 0.0  # chance per REAL frame of closing the connection
    refuse_logins: int = 0  # the next N LOGINs are refused with ``refuse_code``
    refuse_code: int = 8005
    handshake_closes: int = 0  # the next N connections are closed (1000) right after the upgrade
    ping_delay: float = 0.0  # seconds each PING is late
    malformed: int = 0  # the next N REAL frames sent are cut in half
    takeovers: int = 0  # the next N streaming connections get SYSTEM R10001
    seed: int = 0


def _take(value: int) -> tuple[bool, int]:
    """Fire a one-shot knob: (fired, what is left)."""
    if value == 0:
        return False, 0
    return True, value if value < 0 else value - 1


@dataclass
class _Conn:
    id: int
    ws: WebSocket = field(repr=False)
    app_key: str | None = None
    groups: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    frames: int = 0  # REAL frames sent
    entries: int = 0
    sent: dict[str, dict[str, int]] = field(default_factory=dict)  # item -> type -> entries
    pings: int = 0
    echoes: int = 0
    bad_echoes: int = 0
    malformed: int = 0
    bytes: int = 0
    closed: str | None = None
    echoed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    feeds: dict[str, Feed] = field(default_factory=dict, repr=False)

    def counters(self) -> dict[str, Any]:
        names = ("id", "frames", "entries", "pings", "echoes", "bad_echoes", "malformed", "bytes", "closed")
        out: dict[str, Any] = {k: getattr(self, k) for k in names}
        out["sent"] = {item: dict(kinds) for item, kinds in self.sent.items()}
        out["app_key"] = (self.app_key or "")[:4] + "…" if self.app_key else None
        out["items"] = len({i for pairs in self.groups.values() for i, _ in pairs})
        return out


class _Close(Exception):
    def __init__(self, code: int, why: str, system: str | None = None) -> None:
        self.code, self.why, self.system = code, why, system


class WsServer:
    """The WebSocket endpoint of one ``Simulator``."""

    def __init__(self, sim: Simulator, config: WsConfig | None = None) -> None:
        self.sim = sim
        self.config = config or WsConfig()
        self.faults = WsFaults(drop_rate=self.config.drop_rate)
        self.cache = TickCache(sim.market, sim.config.seed)
        self.replay = ReplayClock()
        self.connections: dict[int, _Conn] = {}
        self._by_key: dict[str, _Conn] = {}
        self._ids = itertools.count(1)
        self._rng = random.Random(0)

    # ---- test hooks ---------------------------------------------------------------------------
    async def stats_endpoint(self, request: Request) -> Response:
        """GET: counters per connection; POST ``{"faults": {...}, "config": {...}, "restart": true}``."""
        if request.method == "POST":
            spec = orjson.loads(await request.body() or b"{}")
            if "faults" in spec:
                self.faults = replace(self.faults, **spec["faults"])
                self._rng = random.Random(self.faults.seed)
            for key, value in spec.get("config", {}).items():
                if key not in {f.name for f in fields(WsConfig)}:
                    return Response(f"unknown config {key}", status_code=400)
                if key == "replay_day" and value:
                    value = date.fromisoformat(value)
                if key == "replay_from":
                    value = time.fromisoformat(value)
                setattr(self.config, key, value)
            if spec.get("restart"):
                self.replay.start(force=True)
        conns = [c.counters() for c in self.connections.values()]
        body = {"connections": conns, "faults": asdict(self.faults), "mode": self.config.mode}
        return Response(orjson.dumps(body), media_type="application/json")

    # ---- one connection -----------------------------------------------------------------------
    async def endpoint(self, ws: WebSocket) -> None:
        await ws.accept()
        conn = _Conn(next(self._ids), ws)
        self.connections[conn.id] = conn
        self.sim.stats["ws_connections"] += 1
        fired, self.faults.handshake_closes = _take(self.faults.handshake_closes)
        if fired:
            conn.closed = "closed during the handshake (fault)"
            await ws.close(1000)
            return
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._login(conn)
            tasks = [asyncio.create_task(self._pinger(conn)), asyncio.create_task(self._streamer(conn))]
            receiver = asyncio.create_task(self._receive(conn))
            done, _ = await asyncio.wait([receiver, *tasks], return_when=asyncio.FIRST_COMPLETED)
            tasks.append(receiver)
            for task in done:
                task.result()
        except _Close as close:
            conn.closed = close.why
            if close.system:
                await self._send(
                    conn, {"trnm": "SYSTEM", "code": close.system, "message": SYSTEM_TEXT[close.system]}
                )
            await _close(ws, close.code)
        except (WebSocketDisconnect, RuntimeError, OSError):
            conn.closed = conn.closed or "client went away"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if conn.app_key and self._by_key.get(conn.app_key) is conn:
                del self._by_key[conn.app_key]
            conn.feeds.clear()  # its counters stay for /_sim/ws, its rendered entries go
            for old in list(self.connections)[: max(0, len(self.connections) - _KEEP)]:
                del self.connections[old]

    async def _send(self, conn: _Conn, body: dict[str, Any] | str) -> None:
        text = body if isinstance(body, str) else orjson.dumps(body).decode()
        conn.bytes += len(text)
        await conn.ws.send_text(text)

    async def _recv(self, conn: _Conn) -> str:
        message = await conn.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        return message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")

    async def _login(self, conn: _Conn) -> None:
        try:
            text = await asyncio.wait_for(self._recv(conn), self.config.login_timeout)
        except TimeoutError:
            raise _Close(1000, "no LOGIN (R10004)", "R10004") from None
        body = _json(text)
        if body is None or body.get("trnm") != "LOGIN":
            raise _Close(1000, "no LOGIN (R10004)", "R10004")
        refused, self.faults.refuse_logins = _take(self.faults.refuse_logins)
        app_key = self.sim._app_key(f"Bearer {body.get('token') or ''}")
        if refused:
            app_key = error_body(self.faults.refuse_code)
        if isinstance(app_key, dict):
            await self._send(conn, {"trnm": "LOGIN", **app_key})
            self.sim.stats["ws_login_refused"] += 1
            raise _Close(1000, f"LOGIN refused: {app_key['return_msg']}")
        older = self._by_key.get(app_key)
        conn.app_key = app_key
        self._by_key[app_key] = conn
        await self._send(conn, {"trnm": "LOGIN", "return_code": 0, "return_msg": ""})
        self.sim.stats["ws_logins"] += 1
        if older is not None and older is not conn:
            older.closed = "replaced by a newer LOGIN with the same app key (R10001)"
            await self._system_close(older, "R10001")

    async def _system_close(self, conn: _Conn, code: str) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            await self._send(conn, _system(code))
            await _close(conn.ws, 1000)

    async def _receive(self, conn: _Conn) -> None:
        while True:
            text = await self._recv(conn)
            if text == PING:
                conn.echoes += 1
                conn.echoed.set()
                continue
            body = _json(text)
            trnm = body.get("trnm") if body else None
            if trnm == "PING":  # an echo, but not the same text
                conn.bad_echoes += 1
            elif trnm in ("REG", "REMOVE") and body is not None:
                await self._send(conn, {"trnm": trnm, **self._register(conn, body)})
            elif trnm == "LOGIN":
                await self._send(conn, {"trnm": "LOGIN", "return_code": 0, "return_msg": ""})

    def _register(self, conn: _Conn, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data")
        grp = str(body.get("grp_no", ""))
        if not grp or not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            return {"return_code": 1, "return_msg": "grp_no와 data를 확인해 주세요"}
        pairs = {(str(i), str(t)) for d in data for i in d.get("item") or () for t in d.get("type") or ()}
        items = {i for i, _ in pairs}
        if len(items) > self.config.max_items:
            self.sim.stats["ws_reg_too_many"] += 1
            return {
                "return_code": 1,
                "return_msg": f"등록 가능한 종목 수({self.config.max_items})를 초과했습니다",
            }
        group = conn.groups.setdefault(grp, set())
        if body["trnm"] == "REMOVE":
            group -= pairs
        else:
            if str(body.get("refresh", "1")) == "0":
                group.clear()
            group |= pairs
            self.replay.start()
        self._refeed(conn)
        self.sim.stats[f"ws_{body['trnm'].lower()}"] += 1
        return {"return_code": 0, "return_msg": ""}

    def _day(self) -> date:
        return (
            self.sim.now().date() if self.config.mode == "clock" else self.config.replay_day or default_day()
        )

    def _refeed(self, conn: _Conn) -> None:
        wanted: dict[str, set[str]] = {}
        for pairs in conn.groups.values():
            for item, kind in pairs:
                wanted.setdefault(item, set()).add(kind)
        now = self._now()
        day = self._day()
        for item in list(conn.feeds):
            if item not in wanted or conn.feeds[item].day != day:
                del conn.feeds[item]
        for item, kinds in wanted.items():
            feed = conn.feeds.get(item) or Feed(self.cache, item, day, now)
            feed.types = kinds
            conn.feeds[item] = feed

    def _now(self) -> datetime | None:
        mode = self.config.mode
        if mode == "load":
            return None
        return self.sim.now() if mode == "clock" else self.replay.now(self.config)

    async def _pinger(self, conn: _Conn) -> None:
        while True:
            await asyncio.sleep(self.config.ping_interval + self.faults.ping_delay)
            conn.echoed.clear()
            await self._send(conn, PING)
            conn.pings += 1
            try:
                await asyncio.wait_for(conn.echoed.wait(), self.config.ping_timeout)
            except TimeoutError:
                raise _Close(1000, "no PING echo (R10002)", "R10002") from None

    async def _streamer(self, conn: _Conn) -> None:
        cfg = self.config
        pacer = LoadPacer(cfg.load_rate) if cfg.mode == "load" and cfg.load_rate > 0 else None
        while True:
            load = cfg.mode == "load"
            now = self._now()
            if now is None and not load:
                await asyncio.sleep(cfg.step)
                continue
            if cfg.mode == "clock" and now and any(f.day != now.date() for f in conn.feeds.values()):
                self._refeed(conn)
            sent = False
            for feed in list(conn.feeds.values()):
                if not feed.streams:
                    continue
                while True:
                    entries, counts = feed.due(now, cfg.entries_per_frame)
                    if not entries:
                        break
                    await self._real(conn, feed.item, entries, counts)
                    if pacer is not None:
                        await pacer.sent(sum(counts.values()))
                    sent = True
                    if load:
                        break
            # load: give the receiver and other connections a turn; clocked: wait for the next step
            await asyncio.sleep(0 if load and sent else cfg.step)

    async def _real(self, conn: _Conn, item: str, entries: list[str], counts: dict[str, int]) -> None:
        frame = '{"trnm":"REAL","data":[' + ",".join(entries) + "]}"
        faults = self.faults
        fired, faults.malformed = _take(faults.malformed)
        if fired:
            frame = frame[: len(frame) // 2]
            conn.malformed += 1
        await self._send(conn, frame)
        conn.frames += 1
        per_item = conn.sent.setdefault(item, {})
        for kind, n in counts.items():
            per_item[kind] = per_item.get(kind, 0) + n
            conn.entries += n
        self.sim.stats["ws_frames"] += 1
        if faults.drop_after and conn.frames >= faults.drop_after and faults.drops:
            _, faults.drops = _take(faults.drops)
            raise _Close(1001, f"dropped after {conn.frames} frames (fault)")
        if faults.drop_rate and self._rng.random() < faults.drop_rate:
            raise _Close(1001, "dropped at random (fault)")
        if faults.takeovers:
            _, faults.takeovers = _take(faults.takeovers)
            raise _Close(1000, "taken over (fault, R10001)", "R10001")


def _system(code: str) -> dict[str, str]:
    return {"trnm": "SYSTEM", "code": code, "message": SYSTEM_TEXT[code]}


async def _close(ws: WebSocket, code: int) -> None:
    with contextlib.suppress(RuntimeError, OSError):  # already closed by the other side
        await ws.close(code)


def _json(text: str) -> dict[str, Any] | None:
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None
