"""Talking to Kiwoom: settings, tokens, rate limiting, retries, paging, the error tree."""

from connectors.auth import KiwoomAuth, Token, TokenCache
from connectors.client import ClientStats, KiwoomClient, Page, check_query_tr
from connectors.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConnectionFailed,
    InvalidRequest,
    KiwoomError,
    MalformedResponse,
    OrderRefused,
    PagingError,
    RateLimited,
    RequestRefused,
    ServerError,
    TransientError,
    UnknownApi,
    UnknownSymbol,
    classify,
)
from connectors.paging import oldest_row, rows_before
from connectors.ratelimit import RateLimiter, RateLimits, shared_limiter
from connectors.settings import HOSTS, Secret, Settings

__all__ = [
    "HOSTS",
    "ApiError",
    "AuthError",
    "ClientStats",
    "ConfigError",
    "ConnectionFailed",
    "InvalidRequest",
    "KiwoomAuth",
    "KiwoomClient",
    "KiwoomError",
    "MalformedResponse",
    "OrderRefused",
    "Page",
    "PagingError",
    "RateLimited",
    "RateLimiter",
    "RateLimits",
    "RequestRefused",
    "Secret",
    "ServerError",
    "Settings",
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
]
