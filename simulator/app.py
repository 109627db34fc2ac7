"""The Kiwoom-compatible server: a Starlette app, served by uvicorn or through ``httpx.ASGITransport``.

It serves ``/oauth2/token``, ``/oauth2/revoke`` and every query TR of the
catalog on its documented path, dispatching on the ``api-id`` header, with the
wire behaviour of WIRE_NOTES.md: errors as HTTP 200 with the precise code in
the message, rate limits per app key (1700, or HTTP 429), tokens that expire,
8005 for an invalid token, 1504/1505 for a wrong or unknown api-id, 1511 for a
missing field, 1517 for a malformed one, 1902 for an unknown symbol, and
continuation only in the ``cont-yn``/``next-key`` response headers.

Test hooks (not part of Kiwoom's API) live under ``/_sim/``: request counters,
a reset, and run-time control of faults, limits and tokens.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from schemas.calendar import KST
from schemas.catalog import TR, catalog
from schemas.errors import UnknownTRError
from simulator.bodies import build_body
from simulator.market import MINUTE_SCOPES, Market
from simulator.rows import CHARTS, parse_day, rows_for
from simulator.universe import Universe, strip_venue
from simulator.wire import SUCCESS_MSG, decode_next_key, encode_next_key, error_body, request_digest
from simulator.ws import WsServer
from simulator.ws_feed import WsConfig

__all__ = ["Faults", "SimConfig", "Simulator"]

PAGE_SIZES = {
    "tick": 900,
    "minute": 900,
    "daily": 600,
    "weekly": 600,
    "monthly": 600,
    "yearly": 600,
    "series": 100,
    "list": 100,
}
SYMBOL_FIELDS = ("stk_cd", "inds_cd")
# where the simulator serves a TR when that is not the catalog's path: the stock-lending TRs
# live at /api/dostk/slb (vendor spec, public clients); the reference prints /api/dostk/slbt
LENDING_TRS = ("ka10068", "ka10069", "ka20068", "ka90012")
# request values the live server takes beyond the reference's (copied) lists
EXTRA_ALLOWED = {("ka20005", "tic_scope"): MINUTE_SCOPES, ("ka50092", "tic_scope"): MINUTE_SCOPES}
TOKEN_API_IDS = {"/oauth2/token": "au10001", "/oauth2/revoke": "au10002"}


@dataclass
class Faults:
    """Injected failures, each a probability per TR request (seeded, so runs repeat)."""

    error_rate: float = 0.0  # HTTP 500
    drop_rate: float = 0.0  # the connection dropped in the middle of the response
    malformed_rate: float = 0.0  # HTTP 200 with a truncated JSON body
    latency: float = 0.0  # seconds added to every TR response
    seed: int = 0


@dataclass
class SimConfig:
    seed: int = 7
    n_stocks: int = 300
    clock: Callable[[], datetime] | None = None  # the market's time; None: the real time in Asia/Seoul
    token_clock: Callable[[], datetime] | None = None  # token lifetimes; None: the real time
    token_lifetime: timedelta = timedelta(hours=24)
    rate_limit: float | None = 5.0  # TR requests per second per app key; None: off
    per_api_limit: float | None = None  # per TR and app key, requests a second sustained; None: off
    per_api_burst: float | None = None  # per TR: requests allowed at once; None: one second's worth
    rate_window: float = 1.0
    rejection: str = "code"  # "code": HTTP 200 with [1700:...]; "429": HTTP 429
    page_sizes: dict[str, int] = field(default_factory=lambda: dict(PAGE_SIZES))
    faults: Faults = field(default_factory=Faults)
    app_keys: dict[str, str] | None = None  # accepted (app key -> secret key); None: any
    lending_path: str = "slb"  # where ka10068/ka10069/ka20068/ka90012 answer ("slbt": the reference's)
    ws: WsConfig = field(default_factory=WsConfig)  # the WebSocket side (simulator.ws)


@dataclass
class _Token:
    app_key: str
    expires: datetime


class Simulator:
    """State (tokens, rate windows, counters) and the ASGI app over one synthetic market."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.market = Market(Universe.default(self.config.n_stocks, self.config.seed), self.config.seed)
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (tokens, at) per TR and app key
        self._rng = random.Random(self.config.faults.seed)
        self.stats: Counter[str] = Counter()
        self.ws = WsServer(self, self.config.ws)
        self.app = Starlette(
            routes=[
                WebSocketRoute("/api/dostk/websocket", self.ws.endpoint),
                Route("/_sim/ws", self.ws.stats_endpoint, methods=["GET", "POST"]),
                Route("/oauth2/token", self._token, methods=["POST"]),
                Route("/oauth2/revoke", self._revoke, methods=["POST"]),
                Route("/api/dostk/{name}", self._tr, methods=["POST"]),
                Route("/_sim/stats", self._stats, methods=["GET"]),
                Route("/_sim/reset", self._reset, methods=["POST"]),
                Route("/_sim/control", self._control, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # every answer carries api-id, errors and tokens included, as the live server's do
        headers = dict(scope.get("headers") or ())
        api_id = TOKEN_API_IDS.get(scope.get("path", "")) or headers.get(b"api-id", b"").decode("latin-1")

        async def with_api_id(message: Any) -> None:
            if message["type"] == "http.response.start" and api_id:
                sent = list(message.get("headers") or ())
                if not any(k.lower() == b"api-id" for k, _ in sent):
                    message = {**message, "headers": [*sent, (b"api-id", api_id.encode("latin-1"))]}
            await send(message)

        await self.app(scope, receive, with_api_id)

    def now(self) -> datetime:
        """The market's clock: today's session grows with it."""
        clock = self.config.clock
        return clock().astimezone(KST) if clock else datetime.now(KST)

    def token_now(self) -> datetime:
        clock = self.config.token_clock
        return clock().astimezone(KST) if clock else datetime.now(KST)

    # ---- test hooks -------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Forget every token: the next request with one gets 8005."""
        with self._lock:
            self._tokens.clear()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats.clear()

    async def _stats(self, request: Request) -> Response:
        return _json(dict(self.stats))

    async def _reset(self, request: Request) -> Response:
        self.reset_stats()
        return _json({"ok": True})

    async def _control(self, request: Request) -> Response:
        """``{"faults": {...}, "rate_limit": 4, "expire_tokens": true, "page_sizes": {...}}``."""
        spec = orjson.loads(await request.body() or b"{}")
        if spec.get("expire_tokens"):
            self.expire_tokens()
        if "faults" in spec:
            self.config.faults = replace(self.config.faults, **spec["faults"])
        known = {f.name for f in fields(SimConfig)} - {"faults", "clock", "token_clock", "app_keys", "ws"}
        for key in known & spec.keys():
            value = spec[key]
            setattr(self.config, key, timedelta(seconds=value) if key == "token_lifetime" else value)
        return _json({"faults": asdict(self.config.faults), "rate_limit": self.config.rate_limit})

    # ---- tokens -----------------------------------------------------------------------------
    async def _token(self, request: Request) -> Response:
        self.stats["au10001"] += 1
        body = _body(await request.body())
        if body is None:
            return _json(error_body(1517, "body", "JSON이 아닙니다"))
        if "grant_type" not in body:
            return _json(error_body(8011))
        if body["grant_type"] != "client_credentials":
            return _json(error_body(8012))
        app_key, secret = body.get("appkey"), body.get("secretkey")
        if not app_key or not secret:
            return _json(error_body(8020))
        keys = self.config.app_keys
        if keys is not None and keys.get(app_key) != secret:
            return _json(error_body(8001))
        now = self.token_now().replace(microsecond=0)
        with self._lock:
            current = next(
                ((t, v) for t, v in self._tokens.items() if v.app_key == app_key and v.expires > now), None
            )
            if current is None:
                current = (secrets.token_urlsafe(48), _Token(app_key, now + self.config.token_lifetime))
                self._tokens[current[0]] = current[1]
                self.stats["tokens_issued"] += 1
        token, info = current
        return _json(
            {
                "expires_dt": info.expires.strftime("%Y%m%d%H%M%S"),
                "token_type": "bearer",
                "token": token,
                "return_code": 0,
                "return_msg": SUCCESS_MSG,
            }
        )

    async def _revoke(self, request: Request) -> Response:
        self.stats["au10002"] += 1
        body = _body(await request.body()) or {}
        if not body.get("appkey") or not body.get("secretkey"):
            return _json(error_body(8020))
        if not body.get("token"):
            return _json(error_body(8016))
        with self._lock:
            self._tokens.pop(body["token"], None)
        return _json({"return_code": 0, "return_msg": SUCCESS_MSG})

    def _app_key(self, authorization: str | None) -> str | dict[str, Any]:
        if not authorization:
            return error_body(1513)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error_body(1514)
        with self._lock:
            info = self._tokens.get(token.strip())
        if info is None or info.expires <= self.token_now():
            return error_body(8005)
        return info.app_key

    def _admit(self, app_key: str, api_id: str) -> bool:
        """A sliding-window limit per app key over all TRs, and a token bucket per TR and app
        key when configured (``per_api_limit`` a second sustained, ``per_api_burst`` at once)."""
        now = time.monotonic()
        limits = [((app_key, ""), self.config.rate_limit)]
        with self._lock:
            rate = self.config.per_api_limit
            if rate:
                burst = self.config.per_api_burst or max(1.0, rate)
                tokens, at = self._buckets.get((app_key, api_id), (burst, now))
                tokens = min(burst, tokens + (now - at) * rate)
                if tokens < 1:
                    return False
            windows = []
            for key, limit in limits:
                if not limit:
                    continue
                window = self._windows.setdefault(key, deque())
                while window and window[0] <= now - self.config.rate_window:
                    window.popleft()
                if len(window) >= limit * self.config.rate_window:
                    return False
                windows.append(window)
            for window in windows:
                window.append(now)
            if rate:
                self._buckets[(app_key, api_id)] = (tokens - 1, now)
        return True

    # ---- TRs --------------------------------------------------------------------------------
    async def _tr(self, request: Request) -> Response:
        api_id = request.headers.get("api-id", "")
        self.stats["requests"] += 1
        self.stats[api_id or "<none>"] += 1
        faults = self.config.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        roll = self._rng.random()
        if roll < faults.error_rate:
            self.stats["fault_error"] += 1
            return Response(b"Internal Server Error", status_code=500, media_type="text/plain")
        roll -= faults.error_rate
        if roll < faults.drop_rate:
            self.stats["fault_drop"] += 1
            return _Dropped()
        roll -= faults.drop_rate
        if roll < faults.malformed_rate:
            self.stats["fault_malformed"] += 1
            return Response(b'{"return_code":0,"return_msg":"', media_type="application/json;charset=UTF-8")

        if not api_id:
            return self._error(error_body(1501))
        try:
            tr = catalog().tr(api_id)
        except UnknownTRError:
            return self._error(error_body(1505, api_id))
        path = f"/api/dostk/{self.config.lending_path}" if tr.id in LENDING_TRS else tr.path
        if path != request.url.path:
            return self._error(error_body(1504, api_id, request.url.path))
        app_key = self._app_key(request.headers.get("authorization"))
        if isinstance(app_key, dict):
            return self._error(app_key)
        if not self._admit(app_key, api_id):
            self.stats["rejections"] += 1
            if self.config.rejection == "429":
                return Response(b"Too Many Requests", status_code=429, media_type="text/plain")
            return _json(error_body(1700, api_id))
        if tr.is_order or tr.transport != "rest":
            return self._error(error_body(1999, "the simulator serves query TRs only"))
        body = _body(await request.body())
        if body is None:
            return self._error(error_body(1517, "body", "JSON 객체가 아닙니다"))
        return self._answer(tr, body, request.headers)

    def _error(self, body: dict[str, Any]) -> Response:
        self.stats["errors"] += 1
        return _json(body)

    def _answer(self, tr: TR, body: dict[str, Any], headers: Any) -> Response:
        opts = {k: str(v) for k, v in body.items()}
        for spec in tr.request:
            name, value = spec["name"], opts.get(spec["name"], "")
            if spec.get("required") and value == "":
                return self._error(error_body(1511, name))
            allowed = spec.get("allowed")
            if (tr.id, name) in EXTRA_ALLOWED:
                allowed = {**(allowed or {}), **{str(n): "" for n in EXTRA_ALLOWED[(tr.id, name)]}}
            if value and allowed and value not in allowed and name not in SYMBOL_FIELDS:
                return self._error(error_body(1517, name, f"허용되지 않는 값 {value[:20]}"))
            is_date = name.endswith("_dt") or name in ("dt", "date")
            if value and not allowed and is_date and parse_day(value) is None:
                return self._error(error_body(1517, name, "날짜 형식(YYYYMMDD)이 아닙니다"))
        inst, symbol = None, ""
        requested = {spec["name"] for spec in tr.request}
        for name in SYMBOL_FIELDS:
            if name in requested and opts.get(name):
                symbol, code = opts[name], strip_venue(opts[name])
                try:
                    inst = self.market.universe.get(code)
                except KeyError:
                    return self._error(error_body(1902, opts[name], top_level=True))
                break
        digest = request_digest(tr.id, body)
        cursor = None
        if headers.get("cont-yn", "").upper() == "Y":
            cursor = decode_next_key(headers.get("next-key", ""), digest)
            if cursor is None:
                return self._error(error_body(1517, "next-key", "연속조회키가 올바르지 않습니다"))
        rows = rows_for(tr, self.market, inst, opts, self.now(), self._page_size(tr), cursor)
        out = build_body(tr, rows, opts, symbol)
        response = _json(out)
        response.headers["api-id"] = tr.id
        response.headers["cont-yn"] = "N" if rows.next_cursor is None else "Y"
        response.headers["next-key"] = (
            "" if rows.next_cursor is None else encode_next_key(digest, rows.next_cursor)
        )
        self.stats["pages"] += 1
        return response

    def _page_size(self, tr: TR) -> int:
        sizes = self.config.page_sizes
        if tr.id in CHARTS:
            return sizes.get(CHARTS[tr.id][1], 600)
        items = {f.name for f in tr.main.items} if tr.main else set()
        return sizes.get("series" if {"dt", "tm", "cntr_tm"} & items else "list", 100)


class _Dropped(Response):
    """Start a response and break the connection halfway, as a dying proxy would."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"return_code":0,', "more_body": True})
        raise ConnectionAbortedError("simulated dropped connection")


def _body(raw: bytes) -> dict[str, Any] | None:
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json;charset=UTF-8")
