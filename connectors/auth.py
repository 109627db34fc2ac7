"""Access tokens (au10001/au10002) as an ``httpx.Auth``.

The auth issues a token when it has none, caches it on disk per host and
app-key fingerprint (mode 0600), refreshes it ahead of ``expires_dt``
(Korean time), and when the server answers a request with 8005 (an HTTP 200
whose message embeds ``[8005:``) it re-issues once and replays the request.
No endpoint code touches tokens, and no token goes to an order path: the auth
refuses such a request itself (``OrderRefused``), whatever the caller checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import stat
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson

from connectors.errors import TOKEN_INVALID, AuthError, KiwoomError, MalformedResponse, OrderRefused, classify
from connectors.settings import Secret, Settings
from schemas.calendar import KST
from schemas.catalog import catalog

__all__ = ["REVOKE_PATH", "TOKEN_PATH", "KiwoomAuth", "Token", "TokenCache"]

TOKEN_PATH = "/oauth2/token"
REVOKE_PATH = "/oauth2/revoke"
log = logging.getLogger(__name__)


def now_kst() -> datetime:
    return datetime.now(KST)


@dataclass(frozen=True)
class Token:
    value: Secret
    expires: datetime  # aware, Asia/Seoul
    issued: datetime

    @classmethod
    def from_body(cls, body: dict[str, object], issued: datetime) -> Token:
        value, expires_dt = body.get("token"), body.get("expires_dt")
        if not isinstance(value, str) or not value:
            raise MalformedResponse("token response has no token", api_id="au10001")
        try:
            expires = datetime.strptime(str(expires_dt), "%Y%m%d%H%M%S").replace(tzinfo=KST)
        except ValueError:
            raise MalformedResponse(
                f"token response has a bad expires_dt {str(expires_dt)[:20]!r}", api_id="au10001"
            ) from None
        return cls(Secret(value), expires, issued)

    def refresh_at(self, margin: timedelta) -> datetime:
        """When to ask for the next token: ``margin`` before expiry, at most a tenth of the lifetime."""
        return self.expires - min(margin, (self.expires - self.issued) / 10)

    def __repr__(self) -> str:
        return f"Token(expires={self.expires.isoformat()})"


class TokenCache:
    """One private JSON file per host and app key, in a folder only its owner can open (0700).

    Saving a token also removes the folder's token files whose tokens have expired
    (one per host and port the client ever talked to, e.g. simulators on random
    ports) and temporary files a crash left behind.
    """

    STALE_TMP = timedelta(hours=1)

    def __init__(self, folder: Path, base_url: str, app_key: Secret) -> None:
        host = base_url.split("://", 1)[-1].replace(":", "_").replace("/", "_")
        self.path = folder / f"token-{host}-{app_key.fingerprint()}.json"

    def load(self) -> Token | None:
        try:
            data = json.loads(self.path.read_text())
            return Token(
                Secret(data["token"]),
                datetime.fromisoformat(data["expires"]),
                datetime.fromisoformat(data["issued"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, token: Token) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tighten()
        self._sweep(token.issued)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        payload = {
            "token": token.value.reveal(),
            "expires": token.expires.isoformat(),
            "issued": token.issued.isoformat(),
        }
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def _tighten(self) -> None:
        """Make a folder that existed before (mkdir's mode applies to new ones only) 0700.

        Only a folder of ours that holds nothing but token files: a shared folder
        (``/tmp``, a home) is left alone, the token files in it are 0600 anyway.
        """
        folder = self.path.parent
        try:
            st = folder.stat()
            if stat.S_IMODE(st.st_mode) & 0o077 == 0:
                return
            ours = st.st_uid == os.getuid() and not st.st_mode & stat.S_ISVTX
            if ours and all(p.name.startswith("token-") for p in folder.iterdir()):
                os.chmod(folder, 0o700)
            else:
                log.warning("token cache folder %s is open to other users; its token files are 0600", folder)
        except OSError as exc:
            log.warning("token cache folder %s: cannot check its mode (%s)", folder, exc)

    def _sweep(self, now: datetime) -> None:
        """Delete the folder's expired token files and stale temporary files (never this cache's own)."""
        for path in self.path.parent.glob("token-*"):
            if path == self.path:
                continue
            try:
                if path.suffix == ".json":
                    expires = datetime.fromisoformat(json.loads(path.read_text())["expires"])
                    stale = expires <= now
                else:  # token-...tmp<pid>.<thread>: a save that never finished
                    age = now.timestamp() - path.stat().st_mtime
                    stale = age > self.STALE_TMP.total_seconds()
            except (OSError, ValueError, KeyError, TypeError):
                stale = path.suffix == ".json"  # unreadable: nothing can use it
            if stale:
                with contextlib.suppress(OSError):
                    path.unlink()


def _json(response: httpx.Response) -> dict[str, object] | None:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def is_token_invalid(response: httpx.Response) -> bool:
    body = _json(response) if response.status_code in (200, 401) else None
    if body is None:
        return False
    err = classify(None, body, response.status_code)
    return isinstance(err, AuthError) and err.code == TOKEN_INVALID


class KiwoomAuth(httpx.Auth):
    """Reads response bodies itself (``aread``): ``requires_response_body`` only serves the default flows."""

    def __init__(
        self,
        settings: Settings,
        *,
        refresh_margin: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = now_kst,
        on_issue: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.refresh_margin = refresh_margin
        self.clock = clock
        self.on_issue = on_issue
        self.cache = (
            TokenCache(settings.token_cache, settings.base_url, settings.app_key)
            if settings.token_cache
            else None
        )
        self._token = self.cache.load() if self.cache else None
        self._refresh_at = self._token.refresh_at(refresh_margin) if self._token else None
        self._lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"KiwoomAuth(base_url={self.settings.base_url!r}, token={self._token!r})"

    @property
    def token(self) -> Token | None:
        return self._token

    def usable(self) -> Token | None:
        token, now = self._token, self.clock()
        if token is None or now >= token.expires or (self._refresh_at and now >= self._refresh_at):
            return None
        return token

    def token_request(self) -> httpx.Request:
        s = self.settings
        body = {
            "grant_type": "client_credentials",
            "appkey": s.app_key.reveal(),
            "secretkey": s.secret_key.reveal(),
        }
        return _post(s.base_url + TOKEN_PATH, "au10001", body)

    def revoke_request(self) -> httpx.Request | None:
        if self._token is None:
            return None
        s = self.settings
        body = {
            "appkey": s.app_key.reveal(),
            "secretkey": s.secret_key.reveal(),
            "token": self._token.value.reveal(),
        }
        return _post(s.base_url + REVOKE_PATH, "au10002", body)

    def accept(self, response: httpx.Response, issued: datetime) -> Token:
        """Take the token from an au10001 response, or raise."""
        body = _json(response)
        if body is None:
            raise MalformedResponse(
                "token response is not a JSON object", api_id="au10001", http_status=response.status_code
            )
        err = classify("au10001", body, response.status_code)
        if err is not None:
            if err.retryable:
                raise err
            raise AuthError(
                f"token issue refused: {err.detail}",
                api_id="au10001",
                return_code=err.return_code,
                code=err.code,
                http_status=err.http_status,
            )
        token = Token.from_body(body, issued)
        previous = self._token
        self._token = token
        # the server hands back the same token while it is valid: then use it to its end
        same = previous is not None and previous.value == token.value
        self._refresh_at = token.expires if same else token.refresh_at(self.refresh_margin)
        if self.cache:
            self.cache.save(token)
        if self.on_issue:
            self.on_issue()
        log.info("access token issued for %s, expires %s", self.settings.base_url, token.expires.isoformat())
        return token

    def forget(self) -> None:
        self._token = None
        self._refresh_at = None
        if self.cache:
            self.cache.clear()

    def _loop_lock(self) -> asyncio.Lock:
        """One issuer at a time per event loop, so a burst of requests asks for one token."""
        loop = asyncio.get_running_loop()
        with self._lock:
            lock = self._loop_locks.get(loop)
            if lock is None:
                lock = self._loop_locks[loop] = asyncio.Lock()
            return lock

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        refuse_orders(request)  # no token ever goes with an order, whoever built the request
        async with self._loop_lock():
            used = self.usable()
            if used is None:
                issued = yield self.token_request()
                await issued.aread()
                used = self.accept(issued, self.clock())
        request.headers["authorization"] = f"Bearer {used.value.reveal()}"
        response = yield request
        await response.aread()
        if not is_token_invalid(response):
            return
        log.info("token rejected (8005) on %s: re-issuing once", request.headers.get("api-id"))
        async with self._loop_lock():
            if self._token is used:  # not already replaced by a concurrent request
                self.forget()
            token = self.usable()
            if token is None:
                issued = yield self.token_request()
                await issued.aread()
                token = self.accept(issued, self.clock())
        request.headers["authorization"] = f"Bearer {token.value.reveal()}"
        yield request

    def sync_auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        raise KiwoomError("KiwoomAuth works with httpx.AsyncClient only")


@functools.cache
def _order_paths() -> frozenset[str]:
    return frozenset(tr.path for tr in catalog().trs.values() if tr.is_order)


def refuse_orders(request: httpx.Request) -> None:
    """``OrderRefused`` for a request to an order path or with an order TR's api-id."""
    api_id = request.headers.get("api-id", "")
    tr = catalog().trs.get(api_id)
    if request.url.path.rstrip("/") in _order_paths() or (tr is not None and tr.is_order):
        raise OrderRefused(
            f"{api_id or request.url.path}: an order path; this product never trades, no token is sent",
            api_id=api_id or None,
        )


def _post(url: str, api_id: str, body: dict[str, str]) -> httpx.Request:
    return httpx.Request(
        "POST",
        url,
        content=orjson.dumps(body),
        headers={"api-id": api_id, "content-type": "application/json;charset=UTF-8"},
    )
