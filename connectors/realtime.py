"""The realtime WebSocket session: LOGIN, PING echo, REG/REMOVE, reconnect, raw frames out.

Transport only (DESIGN.md, "Realtime layout"): the session hands out what
arrives as ``RawFrame`` (bytes or str as received, receive time, a
per-session sequence number) and a ``Gap`` for every disconnect; parsing is
``schemas.normalize_realtime``. Wire behaviour from WIRE_NOTES.md:

- ``LOGIN`` with the token of the same ``KiwoomAuth``/token cache as the REST
  client; an 8005 answer forgets the token, issues a new one and logs in once
  more, a second refusal is ``LoginRefused``.
- ``PING`` frames are sent back unchanged (the same str or bytes object);
  ``SYSTEM`` frames never. Keep-alive is Kiwoom's application PING, so the
  library's own pings are off (``ping_interval=None``).
- ``SYSTEM R10001`` (the app key logged in elsewhere) stops the session for
  good with ``SessionReplaced``: reconnecting would knock the other worker
  off, which would knock us off, forever. R10002/R10004 are logged.
- A dropped connection is retried with ``RetryPolicy`` (exponential backoff
  with jitter, shared with the REST client), with a usable token and the
  wanted subscriptions restored; a close before the LOGIN reply (the server
  refusing a too-fast reconnect) backs off four times longer.
- Memory is bounded: past ``queue_size`` undelivered frames the reader stops
  reading the socket (the library's buffer then fills and TCP pushes back),
  and counts it in ``stats.backpressure``.

The token never appears in logs, errors or reprs; a logged LOGIN frame shows
``"token":"***"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from connectors.auth import KiwoomAuth
from connectors.errors import (
    KiwoomError,
    LoginRefused,
    SessionClosed,
    SessionReplaced,
    SubscriptionRefused,
    classify,
)
from connectors.realtime_events import (
    SYSTEM_CODES,
    Connector,
    Event,
    EventQueue,
    Gap,
    RawFrame,
    SessionStats,
    WireSocket,
    closed_reason,
    redact,
    websocket_url,
)
from connectors.realtime_login import Drop, login, usable_token
from connectors.retry import RetryPolicy
from connectors.settings import Settings, tls_context
from connectors.subscriptions import Subscriptions, restore_requests

__all__ = ["Gap", "RawFrame", "RealtimeSession", "SessionStats", "WireSocket", "websocket_url"]

log = logging.getLogger(__name__)
_HANDSHAKE_PENALTY = 2  # a close before the LOGIN reply counts as two more failed attempts
_SYSTEM_CODE = re.compile(r"R\d{5}")
_REAL_HEAD, _VALUES = '{"trnm":"REAL","data":[{', '"values":'
_REAL_HEAD_B, _VALUES_B = _REAL_HEAD.encode(), _VALUES.encode()


async def _default_connect(url: str) -> WireSocket:
    # Kiwoom's keep-alive is its PING frame; no compression: frames are small and many
    return await ws_connect(url, ping_interval=None, compression=None, max_queue=64, open_timeout=15)


class RealtimeSession:
    """``async with RealtimeSession(settings) as rt: await rt.subscribe([...], ["0B"]); async for ev in rt``.

    Iterating yields ``RawFrame`` and ``Gap`` events; it raises ``SessionReplaced``,
    ``LoginRefused``, ``SubscriptionRefused`` or ``SessionClosed`` when the
    session stops for good, and ends after ``close()``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        auth: KiwoomAuth | None = None,
        url: str | None = None,
        connect: Connector | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        queue_size: int = 10_000,
        login_timeout: float = 10.0,
        ack_timeout: float = 10.0,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.auth = auth or KiwoomAuth(settings)
        self.url = url or websocket_url(settings.base_url)
        self.retry = retry or RetryPolicy.from_settings(settings, max_retries=None)
        self.queue_size = queue_size
        self.login_timeout = login_timeout
        self.ack_timeout = ack_timeout
        self.stats = SessionStats()
        self.subscriptions = Subscriptions()
        self._connect = connect or _default_connect
        self._clock = clock_ns
        self._http = httpx.AsyncClient(
            base_url=settings.base_url, transport=transport, timeout=settings.timeout, verify=tls_context()
        )
        self._queue = EventQueue(queue_size, self.stats, clock_ns)
        self._sock: WireSocket | None = None
        self._acks: deque[tuple[str, asyncio.Future[dict[str, Any]]]] = deque()
        self._reg_lock = asyncio.Lock()
        self._logged_in = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fatal: BaseException | None = None
        self._closing = False
        self._seq = 0
        self._connection = 0
        self._last_ns = 0
        self._gap: tuple[int, int, str, int] | None = None  # after_seq, start_ns, reason, connection
        self._last_system: str | None = None

    def __repr__(self) -> str:
        return (
            f"RealtimeSession(url={self.url!r}, connection={self._connection}, "
            f"items={self.subscriptions.count()}, token={self.auth.token!r})"
        )

    # ---- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> RealtimeSession:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect and log in; raise what stopped it if the first login cannot succeed."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"kiwoom-ws {self.url}")
        waiter = asyncio.ensure_future(self._logged_in.wait())
        await asyncio.wait([waiter, self._task], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._fatal is not None:
            raise self._fatal

    async def close(self) -> None:
        """Close the connection and stop; iteration ends once the queued frames are read."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._sock is not None:
            await _quietly(self._sock.close())
        await self._http.aclose()
        self._queue.stop(None)

    @property
    def connected(self) -> bool:
        return self._sock is not None and self._logged_in.is_set()

    # ---- subscriptions --------------------------------------------------------------------
    async def subscribe(
        self, items: Iterable[str], types: Iterable[str], *, grp_no: str = "1", replace: bool = False
    ) -> None:
        """Register items x types (REG, at most 100 items per request) and keep them registered
        across reconnects. ``replace`` makes the group hold exactly these (refresh "0")."""
        before = self.subscriptions.snapshot()
        requests = self.subscriptions.add(grp_no, items, types, replace=replace)
        try:
            await self._send_requests(requests)
        except SubscriptionRefused:
            self.subscriptions = before
            raise

    async def unsubscribe(self, items: Iterable[str], types: Iterable[str], *, grp_no: str = "1") -> None:
        """REMOVE items x types and stop restoring them."""
        await self._send_requests(self.subscriptions.remove(grp_no, items, types))

    async def _send_requests(self, requests: list[dict[str, Any]]) -> None:
        async with self._reg_lock:
            sock = self._sock
            if sock is None or not self._logged_in.is_set():
                return  # registered when the connection is back
            try:
                for body in requests:
                    await self._request(sock, body)
            except Drop:
                pass  # the reconnect restores the wanted set

    async def _request(self, sock: WireSocket, body: dict[str, Any]) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks.append((body["trnm"], future))
        try:
            await sock.send(orjson.dumps(body).decode())
            reply = await asyncio.wait_for(future, self.ack_timeout)
        except ConnectionClosed as exc:
            raise Drop(closed_reason(exc)) from None
        except TimeoutError:
            raise Drop(f"no {body['trnm']} reply within {self.ack_timeout:g}s") from None
        err = classify(body["trnm"], reply)
        if err is not None:
            items = sum(len(d.get("item", ())) for d in body.get("data", ()))
            raise SubscriptionRefused(
                f"{body['trnm']} of {items} item(s) in group {body['grp_no']} refused: {err.detail}",
                api_id=body["trnm"],
                return_code=err.return_code,
                code=err.code,
            )
        return reply

    # ---- events ---------------------------------------------------------------------------
    def __aiter__(self) -> RealtimeSession:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    # ---- the connection loop --------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        reissued = False
        while not self._closing:
            self._connection += 1
            connected_ns = self._clock()
            try:
                sock = await self._open()
                self._sock = sock
                self._last_ns = connected_ns
                token_rejected = await self._login(sock, force_new=reissued)
                if token_rejected:
                    if reissued:
                        raise token_rejected
                    log.info("LOGIN refused with 8005: issuing a new token and logging in again")
                    reissued = True
                    await _quietly(sock.close())
                    self._connection -= 1
                    continue
                reissued = False
                reader = asyncio.create_task(self._read(sock))
                try:
                    async with self._reg_lock:  # a subscribe() meanwhile waits, then goes out live
                        for body in restore_requests(self.subscriptions):
                            await self._request(sock, body)
                        self._logged_in.set()
                    self._end_gap()
                    attempt = 0
                    await reader
                finally:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
            except Drop as drop:
                reason, penalty = drop.reason, _HANDSHAKE_PENALTY if drop.handshake else 0
            except (SessionReplaced, LoginRefused, SubscriptionRefused, SessionClosed) as exc:
                self._stop(exc, str(exc))
                return
            except KiwoomError as exc:  # token issue failed: an AuthError is final, the rest retried
                if not exc.retryable:
                    self._stop(exc, str(exc))
                    return
                reason, penalty = f"token request failed: {exc}", 0
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                reason, penalty = f"connect failed: {type(exc).__name__}: {exc}", 0
                if isinstance(exc, InvalidHandshake):
                    penalty = _HANDSHAKE_PENALTY
            finally:
                self._logged_in.clear()
                self._fail_acks(Drop("connection closed"))
                if self._sock is not None:
                    await _quietly(self._sock.close())
                    self._sock = None
            if self._closing:
                return
            self._open_gap(reason)
            attempt += 1 + penalty
            if self.retry.gives_up(attempt - 1):
                err = SessionClosed(f"realtime session gave up after {attempt} failed attempts: {reason}")
                self._stop(err, reason)
                return
            delay = self.retry.delay(attempt - 1)
            log.warning(
                "realtime connection %d lost (%s); reconnecting in %.2fs", self._connection, reason, delay
            )
            self.stats.reconnects += 1
            await asyncio.sleep(delay)

    async def _open(self) -> WireSocket:
        try:
            return await self._connect(self.url)
        except InvalidHandshake as exc:
            # the server refused the upgrade (or closed it): it may think we come back too fast
            raise Drop(f"handshake refused: {exc}", handshake=True) from None

    async def _login(self, sock: WireSocket, *, force_new: bool) -> LoginRefused | None:
        token, issued = await usable_token(self.auth, self._http, force_new=force_new)
        self.stats.tokens_issued += issued
        refused = await login(sock, token, lambda data: self._control(sock, data), self.login_timeout)
        if refused is None:
            self.stats.logins += 1
            log.info("realtime connection %d logged in to %s", self._connection, self.url)
        return refused

    async def _read(self, sock: WireSocket) -> None:
        try:
            while True:
                # bytes: websockets would decode each frame to text, and the log wants bytes again
                data = await sock.recv(decode=False)
                await self._control(sock, data)
        except ConnectionClosed as exc:
            drop = Drop(closed_reason(exc, self._last_system))
            self._fail_acks(drop)
            raise drop from None
        except Exception as exc:  # SessionReplaced above all: whoever waits for an ack learns it too
            self._fail_acks(exc)
            raise

    async def _control(self, sock: WireSocket, data: str | bytes) -> dict[str, Any] | None:
        """Answer PING, act on SYSTEM, route acks; hand every other frame to the consumer.
        Returns the decoded frame when it is a LOGIN reply."""
        now = self._clock()
        self.stats.bytes += len(data)
        if _looks_real(data):
            # the bulk: decoding every entry here would cost more than the rest of the path;
            # a frame cut short fails the shape check, anything subtler the batch parser
            await self._emit(data, now, "REAL", _entries(data))
            return None
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            await self._malformed(data, now, f"not JSON: {exc}")
            return None
        trnm = msg.get("trnm") if isinstance(msg, dict) else None
        if not isinstance(trnm, str):
            await self._malformed(data, now, "not an object with a trnm")
            return None
        if trnm == "REAL":
            entries = msg.get("data")
            if not isinstance(entries, list):
                await self._malformed(data, now, "REAL frame without a data list")
                return None
            await self._emit(data, now, trnm, len(entries))
        elif trnm == "PING":
            # unchanged, as a text frame like the server's
            await sock.send(data.decode() if isinstance(data, bytes) else data)
            self.stats.pings += 1
        elif trnm == "SYSTEM":
            self._system(msg)
        elif trnm == "LOGIN":
            return msg
        elif trnm in ("REG", "REMOVE") and self._acks and self._acks[0][0] == trnm:
            _, future = self._acks.popleft()
            if not future.done():
                future.set_result(msg)
        else:
            await self._emit(data, now, trnm, 0)
        return None

    def _system(self, msg: dict[str, Any]) -> None:
        self.stats.system += 1
        text = f"{msg.get('code', '')} {msg.get('message', '')} {msg.get('return_msg', '')}"
        match = _SYSTEM_CODE.search(text)
        code = match.group(0) if match else ""
        meaning = SYSTEM_CODES.get(code, "")
        detail = str(msg.get("message") or msg.get("return_msg") or "")[:200]
        self._last_system = f"SYSTEM {code or '?'}: {meaning or detail}"
        if code == "R10001":
            raise SessionReplaced(
                f"realtime session closed for good by SYSTEM R10001: {meaning} ({detail}). Two workers "
                "with one app key would knock each other off in a loop, so this one does not reconnect",
                api_id="SYSTEM",
            )
        log.warning("realtime SYSTEM %s: %s (%s)", code or "?", meaning or "unknown code", detail)

    async def _emit(
        self, data: str | bytes, now: int, trnm: str | None, entries: int, error: str | None = None
    ) -> None:
        self._seq += 1
        self._last_ns = now
        await self._queue.put_frame(RawFrame(self._seq, now, data, self._connection, trnm, entries, error))

    async def _malformed(self, data: str | bytes, now: int, why: str) -> None:
        self.stats.malformed += 1
        log.warning("realtime frame %d malformed (%s): %r", self._seq + 1, why, redact(data)[:120])
        await self._emit(data, now, None, 0, why)

    # ---- gaps -----------------------------------------------------------------------------
    def _open_gap(self, reason: str) -> None:
        self._last_system = None
        if self._gap is None and self._connection_had_login():
            self._gap = (self._seq, self._last_ns, reason, self._connection)

    def _connection_had_login(self) -> bool:
        return self.stats.logins > 0

    def _end_gap(self) -> None:
        if self._gap is not None:
            after, start, reason, conn = self._gap
            self._gap = None
            self.stats.gaps += 1
            self._queue.put(Gap(after, start, self._clock(), reason, conn))

    def _stop(self, error: BaseException, reason: str) -> None:
        self._fatal = error
        if self._gap is not None or self.stats.logins:
            after, start, why, conn = self._gap or (self._seq, self._last_ns, reason, self._connection)
            self._gap = None
            self.stats.gaps += 1
            self._queue.put(Gap(after, start, None, why, conn))
        log.error("realtime session stopped: %s", error)
        self._queue.stop(error)

    def _fail_acks(self, error: BaseException) -> None:
        while self._acks:
            _, future = self._acks.popleft()
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: nobody may be waiting any more


def _entries(data: str | bytes) -> int:
    return data.count(_VALUES) if isinstance(data, str) else data.count(_VALUES_B)


def _looks_real(data: str | bytes) -> bool:
    if isinstance(data, str):
        return data.startswith(_REAL_HEAD) and data.endswith("}]}")
    return data.startswith(_REAL_HEAD_B) and data.endswith(b"}]}")


async def _quietly(aw: Awaitable[Any]) -> None:
    with contextlib.suppress(Exception):  # closing a broken socket: nothing left to save
        await aw
