"""The async Kiwoom client: one ``httpx.AsyncClient``, every TR through ``request``/``pages``.

An endpoint is data (the catalog gives its path); this module does the I/O
for all of them: the limiter slot, the headers, the token (``KiwoomAuth``),
classification of the answer, retries with exponential backoff and jitter,
and paging through ``cont-yn``/``next-key`` in the response headers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import orjson

from connectors.auth import REVOKE_PATH, TOKEN_PATH, KiwoomAuth
from connectors.errors import (
    ApiError,
    ConnectionFailed,
    KiwoomError,
    MalformedResponse,
    OrderRefused,
    PagingError,
    RateLimited,
    RequestRefused,
    ServerError,
    UnknownApi,
    classify,
)
from connectors.ratelimit import RateLimiter, shared_limiter
from connectors.retry import RetryPolicy
from connectors.settings import Settings, tls_context
from schemas.catalog import catalog
from schemas.errors import UnknownTRError

__all__ = ["ClientStats", "KiwoomClient", "Page"]

log = logging.getLogger(__name__)
ORDER_PATHS = ("/api/dostk/ordr", "/api/dostk/crdordr")


@dataclass(frozen=True)
class Page:
    """One response: the decoded body and the continuation headers."""

    api_id: str
    body: dict[str, Any]
    raw: bytes = field(repr=False)
    cont: bool
    next_key: str | None
    headers: Mapping[str, str] = field(repr=False)
    key: str | None = None  # the next-key this page was asked with (None: the first page)
    number: int = 1


@dataclass
class ClientStats:
    """What this client did, counted once where it happens (one client per run shares them).

    ``requests`` and ``token_requests`` are counted as they go on the wire (an httpx
    request hook), so retries and the auth flow's 8005 replays count like any other
    request and the numbers equal what the server received.
    """

    requests: int = 0  # HTTP requests for TRs sent: retries and 8005 replays included
    pages: int = 0  # successful TR responses
    rejections: int = 0  # rate-limit refusals (1700/1701/1702, HTTP 429)
    retries: int = 0
    errors: int = 0  # errors raised to the caller
    token_requests: int = 0  # au10001 requests sent
    tokens_issued: int = 0
    wait_seconds: float = 0.0  # in the limiter and in backoff

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def check_query_tr(api_id: str) -> str:
    """The path of a query TR, or ``RequestRefused``/``OrderRefused`` before anything is sent."""
    try:
        tr = catalog().tr(api_id)
    except UnknownTRError:
        raise RequestRefused(f"unknown TR {api_id!r}: not in the catalog", api_id=api_id) from None
    if tr.is_order or tr.path in ORDER_PATHS:
        raise OrderRefused(f"{api_id} ({tr.name}) places or changes orders: refused", api_id=api_id)
    if tr.transport != "rest" or tr.path.startswith("/oauth2/"):
        raise RequestRefused(f"{api_id} is not a REST query TR ({tr.transport} {tr.path})", api_id=api_id)
    return tr.path


def check_required(api_id: str, body: Mapping[str, Any]) -> None:
    tr = catalog().tr(api_id)
    missing = [r["name"] for r in tr.request if r.get("required") and str(body.get(r["name"], "")) == ""]
    if missing:
        raise RequestRefused(
            f"{api_id}: required request field(s) missing: {', '.join(missing)}", api_id=api_id
        )


class KiwoomClient:
    """``async with KiwoomClient(Settings.load()) as kw: page = await kw.request("ka10081", {...})``."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        auth: KiwoomAuth | None = None,
    ) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self._paths: dict[str, str] = {}  # TR -> the path that worked, where the catalog has two
        self.limiter = limiter or shared_limiter(
            (settings.base_url, settings.app_key.fingerprint()), settings.limits
        )
        self.retry = RetryPolicy.from_settings(settings)
        self.auth = auth or KiwoomAuth(settings)
        self.auth.on_issue = self._count_token
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            transport=transport,
            timeout=settings.timeout,
            verify=tls_context(),
            auth=self.auth,
            headers={"content-type": "application/json;charset=UTF-8"},
            event_hooks={"request": [self._count_request]},
        )

    def _count_token(self) -> None:
        self.stats.tokens_issued += 1

    async def _count_request(self, request: httpx.Request) -> None:
        """Every request as it is sent (httpx calls this for the auth flow's token requests and replays)."""
        if request.url.path.endswith(TOKEN_PATH):
            self.stats.token_requests += 1
        elif not request.url.path.endswith(REVOKE_PATH):
            self.stats.requests += 1

    def __repr__(self) -> str:
        return f"KiwoomClient({self.settings!r})"

    async def __aenter__(self) -> KiwoomClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ensure_token(self) -> None:
        """Issue (or load) a token now, so that bad keys fail early and clearly."""
        if self.auth.usable() is None:
            try:
                response = await self._http.send(self.auth.token_request(), auth=None)
            except httpx.TransportError as exc:
                raise ConnectionFailed(
                    f"token request failed: {type(exc).__name__}", api_id="au10001"
                ) from None
            self.auth.accept(response, self.auth.clock())

    async def revoke(self) -> None:
        """Revoke the current token (au10002) and forget it."""
        request = self.auth.revoke_request()
        if request is None:
            return
        response = await self._http.send(request, auth=None)
        self.auth.forget()
        body = _decode("au10002", response)
        err = classify("au10002", body, response.status_code)
        if err is not None:
            raise err

    async def request(
        self,
        api_id: str,
        body: Mapping[str, Any],
        *,
        next_key: str | None = None,
        validate: bool = True,
    ) -> Page:
        """One TR call (a continuation page when ``next_key`` is given), retried on transient errors."""
        path = self._paths.get(api_id, check_query_tr(api_id))
        fallback = catalog().tr(api_id).path_fallback
        if validate:
            check_required(api_id, body)
        headers = {"api-id": api_id}
        if next_key is not None:
            headers.update({"cont-yn": "Y", "next-key": next_key})
        content = orjson.dumps(dict(body))
        s = self.settings
        for attempt in range(s.max_retries + 1):
            self.stats.wait_seconds += await self.limiter.acquire(api_id)
            try:
                page = await self._once(api_id, path, headers, content, next_key)
            except KiwoomError as err:
                if isinstance(err, UnknownApi) and fallback and api_id not in self._paths:
                    # the path the vendor's spec gives is refused: use the reference's, once
                    log.warning("%s: %s refused at %s; using %s from now on", api_id, err, path, fallback)
                    self._paths[api_id] = fallback
                    return await self.request(api_id, body, next_key=next_key, validate=False)
                if isinstance(err, RateLimited):
                    self.stats.rejections += 1
                    self.limiter.rejected(api_id, err.scope)
                if not err.retryable or attempt == s.max_retries:
                    self.stats.errors += 1
                    raise
                delay = self.retry.delay(attempt)
                log.warning("%s attempt %d failed (%s); retrying in %.2fs", api_id, attempt + 1, err, delay)
                self.stats.retries += 1
                self.stats.wait_seconds += delay
                await asyncio.sleep(delay)
                continue
            self.limiter.succeeded(api_id)
            self.stats.pages += 1
            return page
        raise AssertionError("unreachable")

    async def _once(
        self, api_id: str, path: str, headers: dict[str, str], content: bytes, key: str | None
    ) -> Page:
        try:
            response = await self._http.post(path, content=content, headers=headers)
        except (httpx.LocalProtocolError, UnicodeEncodeError) as exc:
            # a header (the server's next-key) that HTTP cannot carry: the same every time, never retried
            raise RequestRefused(
                f"request not sendable (next-key {str(key)[:40]!r}): {type(exc).__name__}: {exc}",
                api_id=api_id,
            ) from None
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(f"timed out: {type(exc).__name__}", api_id=api_id) from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise ConnectionFailed(f"connection failed: {type(exc).__name__}: {exc}", api_id=api_id) from None
        if response.status_code >= 500:
            raise ServerError(
                f"server error: HTTP {response.status_code}", api_id=api_id, http_status=response.status_code
            )
        if response.status_code == 429:
            raise RateLimited("rate limited: HTTP 429", api_id=api_id, http_status=429)
        try:
            body = _decode(api_id, response)
        except MalformedResponse as exc:
            if response.status_code == 200:
                if not response.content.lstrip().startswith(b"{"):
                    # not a cut-off JSON object but another kind of page (HTML, a proxy's answer):
                    # asking again gets the same page, so it is not retried
                    exc.retryable = False
                raise
            raise ApiError(
                f"HTTP {response.status_code} without a Kiwoom body",
                api_id=api_id,
                http_status=response.status_code,
            ) from exc
        err = classify(api_id, body, response.status_code)
        if err is not None:
            raise err
        cont = response.headers.get("cont-yn", "N").strip().upper() == "Y"
        next_key = response.headers.get("next-key") or None
        return Page(
            api_id, body, response.content, cont, next_key if cont else None, dict(response.headers), key
        )

    async def pages(
        self,
        api_id: str,
        body: Mapping[str, Any],
        *,
        stop: Callable[[Page], bool] | None = None,
        resume_key: str | None = None,
        max_pages: int = 100_000,
    ) -> AsyncIterator[Page]:
        """Every page of a TR, following ``cont-yn``/``next-key`` from the response headers.

        Stops after the page for which ``stop(page)`` is true (the rows are past the
        window), or when the server says there is no more. ``resume_key`` starts from a
        saved ``next-key``. A repeated key, or more than ``max_pages`` pages, raises
        ``PagingError`` carrying the key to resume from.
        """
        key = resume_key
        seen: set[str] = set()
        number = 0
        while True:
            number += 1
            page = await self.request(api_id, body, next_key=key)
            page = replace(page, number=number)
            yield page
            if (stop is not None and stop(page)) or not page.cont:
                return
            if not page.next_key:
                raise PagingError("cont-yn is Y but next-key is empty", api_id=api_id)
            if page.next_key in seen or page.next_key == key:
                raise PagingError(
                    f"next-key repeated after {number} pages: the server is looping",
                    api_id=api_id,
                    next_key=page.next_key,
                )
            if number >= max_pages:
                raise PagingError(f"more than {max_pages} pages", api_id=api_id, next_key=page.next_key)
            seen.add(page.next_key)
            key = page.next_key


def _decode(api_id: str, response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise MalformedResponse(
            f"body is not JSON ({exc}); starts {response.content[:60]!r}",
            api_id=api_id,
            http_status=response.status_code,
        ) from None
    if not isinstance(body, dict):
        raise MalformedResponse(
            f"body is a JSON {type(body).__name__}, not an object",
            api_id=api_id,
            http_status=response.status_code,
        )
    return body
