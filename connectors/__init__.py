"""Talking to Kiwoom: settings, tokens, rate limits, retries, paging, errors, the WebSocket session."""

from connectors.auth import KiwoomAuth, Token, TokenCache
from connectors.client import ClientStats, KiwoomClient, Page, check_query_tr
from connectors.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConnectionFailed,
    InvalidRequest,
    KiwoomError,
    LoginRefused,
    MalformedResponse,
    OrderRefused,
    PagingError,
    RateLimited,
    RealtimeError,
    RequestRefused,
    ServerError,
    SessionClosed,
    SessionReplaced,
    SubscriptionRefused,
    TransientError,
    UnknownApi,
    UnknownSymbol,
    classify,
)
from connectors.paging import oldest_row, rows_before
from connectors.ratelimit import RateLimiter, RateLimits, shared_limiter
from connectors.realtime import RealtimeSession
from connectors.realtime_events import Gap, RawFrame, SessionStats, websocket_url
from connectors.retry import RetryPolicy
from connectors.settings import HOSTS, Secret, Settings

__all__ = [
    "HOSTS",
    "ApiError",
    "AuthError",
    "ClientStats",
    "ConfigError",
    "ConnectionFailed",
    "Gap",
    "InvalidRequest",
    "KiwoomAuth",
    "KiwoomClient",
    "KiwoomError",
    "LoginRefused",
    "MalformedResponse",
    "OrderRefused",
    "Page",
    "PagingError",
    "RateLimited",
    "RateLimiter",
    "RateLimits",
    "RawFrame",
    "RealtimeError",
    "RealtimeSession",
    "RequestRefused",
    "RetryPolicy",
    "Secret",
    "ServerError",
    "SessionClosed",
    "SessionReplaced",
    "SessionStats",
    "Settings",
    "SubscriptionRefused",
    "Token",
    "TokenCache",
    "TransientError",
    "UnknownApi",
    "UnknownSymbol",
    "check_query_tr",
    "classify",
    "oldest_row",
    "rows_before",
    "shared_limiter",
    "websocket_url",
]
