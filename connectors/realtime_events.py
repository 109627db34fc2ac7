"""What the realtime session hands out (``RawFrame``, ``Gap``), the bounded queue they wait in,
its counters, and wire helpers."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed

from connectors.settings import HOSTS

__all__ = [
    "SYSTEM_CODES",
    "WS_PATH",
    "Connector",
    "Event",
    "EventQueue",
    "Gap",
    "RawFrame",
    "SessionStats",
    "WireSocket",
    "closed_reason",
    "redact",
    "websocket_url",
]

WS_PATH = "/api/dostk/websocket"
WS_PORT = 10000
SYSTEM_CODES = {
    "R10001": "another connection logged in with the same app key: this one is closed",
    "R10002": "no PING reply reached the server in time: the server closed the connection",
    "R10004": "no LOGIN reached the server in time: the server closed the connection",
}
_TOKEN_FIELD = re.compile(rb'("token"\s*:\s*)"[^"]*"')


class WireSocket(Protocol):
    """What the session needs of a WebSocket; tests pass a fake (no network)."""

    async def send(self, message: str | bytes) -> None: ...

    async def recv(self, decode: bool | None = None) -> str | bytes: ...

    async def close(self) -> None: ...


Connector = Callable[[str], Awaitable[WireSocket]]


def websocket_url(base_url: str) -> str:
    """Kiwoom's WebSocket URL for a REST base URL: port 10000 on the real hosts, the same
    host and port elsewhere (the simulator serves both on one port)."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    netloc = parts.netloc
    if base_url.rstrip("/") in HOSTS.values():
        netloc = f"{parts.hostname}:{WS_PORT}"
    return f"{scheme}://{netloc}{WS_PATH}"


def redact(frame: str | bytes) -> bytes:
    """A frame fit for a log line: the token replaced by ``***``."""
    raw = frame.encode() if isinstance(frame, str) else frame
    return _TOKEN_FIELD.sub(rb'\1"***"', raw)


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One frame as received. ``trnm`` is None and ``error`` says why when it could not be read."""

    seq: int  # 1, 2, ... per session, across reconnects
    received_ns: int  # wall clock (ns since the epoch, UTC) when it arrived
    data: str | bytes
    connection: int  # 1 for the first connection, 2 after the first reconnect ...
    trnm: str | None
    entries: int  # entries in ``data`` (REAL), 0 otherwise
    error: str | None = None

    @property
    def received(self) -> datetime:
        return datetime.fromtimestamp(self.received_ns / 1e9, UTC)


@dataclass(frozen=True, slots=True)
class Gap:
    """A disconnect: data between ``start`` and ``end`` may be missing.

    ``start`` is when the last frame before the drop arrived (or the connection
    was made, if none did); ``end`` is when the wanted subscriptions were
    registered again, None when the session stopped for good.
    """

    after_seq: int  # the last frame before the gap (0: none yet)
    start_ns: int
    end_ns: int | None
    reason: str
    connection: int  # the connection that was lost

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_ns / 1e9, UTC)

    @property
    def end(self) -> datetime | None:
        return None if self.end_ns is None else datetime.fromtimestamp(self.end_ns / 1e9, UTC)


Event = RawFrame | Gap


@dataclass
class SessionStats:
    frames: int = 0  # frames handed out (REAL and anything else that is not control)
    entries: int = 0  # REAL entries in them
    bytes: int = 0  # every frame received, control frames included
    malformed: int = 0
    pings: int = 0  # PINGs echoed
    system: int = 0  # SYSTEM frames received
    logins: int = 0
    tokens_issued: int = 0
    reconnects: int = 0
    gaps: int = 0
    backpressure: int = 0  # times the reader stopped because the consumer was behind
    queued: int = 0  # frames waiting for the consumer now
    max_queued: int = 0
    seconds_behind: float = 0.0  # how long the last frame handed out waited in the session

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def closed_reason(exc: ConnectionClosed, system: str | None = None) -> str:
    close = exc.rcvd or exc.sent
    code = (
        f"close {close.code}" + (f" {close.reason!r}" if close.reason else "") if close else "no close frame"
    )
    return f"{system}; {code}" if system else f"connection closed ({code})"


class _Stop:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class EventQueue:
    """Events waiting for the consumer. Frames are bounded: past ``limit`` waiting,
    ``put_frame`` waits (so the session stops reading its socket); gaps and the stop never wait."""

    def __init__(self, limit: int, stats: SessionStats, clock_ns: Callable[[], int]) -> None:
        self.limit, self.stats, self.clock_ns = limit, stats, clock_ns
        self._events: deque[Event | _Stop] = deque()
        self._ready = asyncio.Event()  # an event is waiting
        self._space = asyncio.Event()  # the consumer took a frame

    def put(self, event: Event) -> None:
        self._events.append(event)
        self._ready.set()

    def stop(self, error: BaseException | None) -> None:
        """After the events already queued, ``get`` raises ``error`` (StopAsyncIteration if None)."""
        self._events.append(_Stop(error))
        self._ready.set()

    async def put_frame(self, frame: RawFrame) -> None:
        stats = self.stats
        if stats.queued >= self.limit:
            stats.backpressure += 1
            while stats.queued >= self.limit:
                self._space.clear()
                await self._space.wait()
        stats.queued += 1
        stats.max_queued = max(stats.max_queued, stats.queued)
        stats.frames += 1
        stats.entries += frame.entries
        self.put(frame)

    async def get(self) -> Event:
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        event = self._events.popleft()
        if isinstance(event, _Stop):
            self._events.appendleft(event)  # every later call stops the same way
            if event.error is not None:
                raise event.error
            raise StopAsyncIteration
        if isinstance(event, RawFrame):
            self.stats.queued -= 1
            self.stats.seconds_behind = max(0.0, (self.clock_ns() - event.received_ns) / 1e9)
            self._space.set()
        return event
