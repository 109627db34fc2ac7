"""Every failure of talking to Kiwoom, as one tree.

::

    KiwoomError                 api_id, return_code, code, http_status on every error
    ├── ConfigError             settings missing or invalid (nothing was sent)
    ├── RequestRefused          refused before sending: unknown TR, order TR, missing field,
    │                           a header HTTP cannot carry (a next-key with control characters)
    │   └── OrderRefused        this product never trades
    ├── TransientError          retried with backoff; raised once the retries run out
    │   ├── RateLimited         1700 / 1701 / 1702 / 1687, HTTP 429
    │   ├── ServerError         HTTP 5xx, 1999 (unexpected server error)
    │   ├── ConnectionFailed    timeouts, refused or dropped connections
    │   └── MalformedResponse   a body that is not a JSON object
    ├── AuthError               token issue failed, or 8005 again after the one re-issue
    ├── InvalidRequest          1511 / 1517 / 1634 ...: fix the request, never retried
    │   ├── UnknownApi          1504 / 1505: api-id not served at that path, or unknown
    │   └── UnknownSymbol       1901 / 1902
    ├── ApiError                any other non-zero return code
    ├── PagingError             a repeated next-key, or more pages than allowed
    └── RealtimeError           the WebSocket session (connectors.realtime)
        ├── LoginRefused        LOGIN answered non-zero (8005 again after the one re-issue)
        ├── SessionReplaced     SYSTEM R10001: the app key logged in elsewhere; never reconnect
        ├── SubscriptionRefused REG/REMOVE answered non-zero, or more than 100 items
        └── SessionClosed       reconnects ran out, or the session was closed

Messages carry the TR id, the codes and the server's message, never keys or
tokens. Classification (``classify``) looks at the code embedded in the
message first (``[8005:...]`` or ``CODE=8005``), then at the top-level one.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "ApiError",
    "AuthError",
    "ConfigError",
    "ConnectionFailed",
    "InvalidRequest",
    "KiwoomError",
    "LoginRefused",
    "MalformedResponse",
    "OrderRefused",
    "PagingError",
    "RateLimited",
    "RealtimeError",
    "RequestRefused",
    "ServerError",
    "SessionClosed",
    "SessionReplaced",
    "SubscriptionRefused",
    "TransientError",
    "UnknownApi",
    "UnknownSymbol",
    "classify",
    "embedded_code",
]

TOKEN_INVALID = 8005
RATE_LIMIT_CODES = {1700: "api", 1701: "total", 1702: "group", 1687: "api"}
UNKNOWN_API_CODES = {1504, 1505}
UNKNOWN_SYMBOL_CODES = {1901, 1902}
SERVER_ERROR_CODES = {1999}
INVALID_REQUEST_CODES = {1511, 1512, 1513, 1514, 1515, 1516, 1517, 1634}

_EMBEDDED = re.compile(r"\[(\d{4}):|CODE=(\d{4})")


class KiwoomError(Exception):
    """Base of every connector error."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        api_id: str | None = None,
        return_code: int | None = None,
        code: int | None = None,
        http_status: int | None = None,
    ) -> None:
        self.api_id = api_id
        self.return_code = return_code
        self.code = code
        self.http_status = http_status
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        tags = [
            f"{name}={value}"
            for name, value in (
                ("api_id", self.api_id),
                ("return_code", self.return_code),
                ("code", self.code),
                ("http", self.http_status),
            )
            if value is not None
        ]
        return f"{self.detail} ({', '.join(tags)})" if tags else self.detail


class ConfigError(KiwoomError):
    pass


class RequestRefused(KiwoomError):
    pass


class OrderRefused(RequestRefused):
    pass


class TransientError(KiwoomError):
    retryable = True


class RateLimited(TransientError):
    def __init__(self, message: str, *, scope: str = "total", **kw: Any) -> None:
        self.scope = scope  # "api", "total" or "group": which limiter tier to slow down
        super().__init__(message, **kw)


class ServerError(TransientError):
    pass


class ConnectionFailed(TransientError):
    pass


class MalformedResponse(TransientError):
    pass


class AuthError(KiwoomError):
    pass


class InvalidRequest(KiwoomError):
    pass


class UnknownApi(InvalidRequest):
    pass


class UnknownSymbol(InvalidRequest):
    pass


class ApiError(KiwoomError):
    pass


class PagingError(KiwoomError):
    def __init__(self, message: str, *, next_key: str | None = None, **kw: Any) -> None:
        self.next_key = next_key  # where a caller could resume
        super().__init__(message, **kw)


class RealtimeError(KiwoomError):
    pass


class LoginRefused(RealtimeError):
    pass


class SessionReplaced(RealtimeError):
    pass


class SubscriptionRefused(RealtimeError):
    pass


class SessionClosed(RealtimeError):
    pass


def embedded_code(message: object) -> int | None:
    """The precise code inside a ``return_msg`` such as ``"...[8005:Token이 ...]"``."""
    if not isinstance(message, str):
        return None
    m = _EMBEDDED.search(message)
    return int(m.group(1) or m.group(2)) if m else None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def classify(api_id: str | None, body: dict[str, Any], http_status: int = 200) -> KiwoomError | None:
    """The error a Kiwoom body stands for, or None when ``return_code`` is 0 (or absent)."""
    raw = body.get("return_code")
    message = body.get("return_msg")
    return_code = _int_or_none(raw)
    if raw is not None and return_code is None:
        return MalformedResponse(
            f"return_code is not a number: {str(raw)[:40]!r}", api_id=api_id, http_status=http_status
        )
    code = embedded_code(message)
    if code is None and return_code is not None and return_code >= 1000:
        code = return_code
    if not return_code and code is None and http_status == 200:
        return None
    text = f"Kiwoom error: {str(message or '')[:300]}"
    kw: dict[str, Any] = {
        "api_id": api_id,
        "return_code": return_code,
        "code": code,
        "http_status": http_status,
    }
    if code in RATE_LIMIT_CODES:
        return RateLimited(text, scope=RATE_LIMIT_CODES[code], **kw)
    if code == TOKEN_INVALID or (code is not None and 8000 <= code < 9000):
        return AuthError(text, **kw)
    if code in UNKNOWN_API_CODES:
        return UnknownApi(text, **kw)
    if code in UNKNOWN_SYMBOL_CODES:
        return UnknownSymbol(text, **kw)
    if code in INVALID_REQUEST_CODES:
        return InvalidRequest(text, **kw)
    if http_status == 429:
        return RateLimited(text, **kw)
    if code in SERVER_ERROR_CODES or http_status >= 500:
        return ServerError(text, **kw)
    return ApiError(text, **kw)
