"""Connection settings: keys, host, limits. From arguments, the environment or ``.env``.

Environment variables (arguments win over the environment, the environment over ``.env``):

- ``KIWOOM_APP_KEY``, ``KIWOOM_SECRET_KEY``: the app's credentials.
- ``KIWOOM_HOST``: ``prod`` (api.kiwoom.com, the default), ``paper`` (mockapi.kiwoom.com)
  or a base URL such as the simulator's ``http://127.0.0.1:8123``.
- ``KIWOOM_BASE_URL``: a base URL; wins over ``KIWOOM_HOST``.
- ``KIWOOM_RATE``: queries per second in total (default 5, paper trading 1).
- ``KIWOOM_PER_TR_RATE``: queries per second of each TR on its own, when known (live: about 1);
  unset, a TR's own limit is learned from the server's 1700 refusals.
- ``KIWOOM_TOKEN_CACHE``: folder of the token cache (default ``~/.cache/kiwoom-warehouse``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from dotenv import dotenv_values

from connectors.errors import ConfigError
from connectors.ratelimit import RateLimits

__all__ = ["HOSTS", "Secret", "Settings", "tls_context"]

HOSTS = {"prod": "https://api.kiwoom.com", "paper": "https://mockapi.kiwoom.com"}
DEFAULT_TOKEN_CACHE = Path("~/.cache/kiwoom-warehouse").expanduser()


class Secret:
    """A string that never shows itself in a repr, str, log or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """A short, non-reversible id: enough to name a cache file, useless to an attacker."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Settings:
    app_key: Secret
    secret_key: Secret
    base_url: str
    host: str = "custom"  # "prod", "paper" or "custom"
    limits: RateLimits = field(default_factory=RateLimits)
    token_cache: Path | None = DEFAULT_TOKEN_CACHE  # None: keep tokens in memory only
    timeout: float = 30.0
    max_retries: int = 6
    backoff_base: float = 0.25
    backoff_max: float = 10.0

    @property
    def is_real_host(self) -> bool:
        return self.host in HOSTS

    @property
    def paper(self) -> bool:
        return self.host == "paper"

    @classmethod
    def load(
        cls,
        *,
        app_key: str | None = None,
        secret_key: str | None = None,
        host: str | None = None,
        base_url: str | None = None,
        rate: float | None = None,
        env: Mapping[str, str | None] | None = None,
        env_file: str | Path | None = ".env",
        **overrides: object,
    ) -> Settings:
        """Resolve settings; raise ``ConfigError`` naming what is missing or wrong."""
        values: dict[str, str | None] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update(dotenv_values(env_file))
        values.update(os.environ if env is None else env)
        name, url = _resolve_host(
            base_url or values.get("KIWOOM_BASE_URL"), host or values.get("KIWOOM_HOST")
        )
        app = app_key or values.get("KIWOOM_APP_KEY") or ""
        secret = secret_key or values.get("KIWOOM_SECRET_KEY") or ""
        missing = [n for n, v in (("KIWOOM_APP_KEY", app), ("KIWOOM_SECRET_KEY", secret)) if not v]
        if missing and name in HOSTS:
            raise ConfigError(f"{' and '.join(missing)} must be set to talk to the {name} host {url}")
        # a simulator accepts any key; give it one so the token flow is the real one
        app, secret = app or "simulator-app-key", secret or "simulator-secret-key"
        if rate is None:
            rate = _rate(values, "KIWOOM_RATE")
        per_tr = _rate(values, "KIWOOM_PER_TR_RATE")
        limits = RateLimits.for_host(name, total=rate, per_tr=per_tr or None)
        cache = values.get("KIWOOM_TOKEN_CACHE")
        kwargs: dict[str, object] = {"limits": limits}
        if cache:
            kwargs["token_cache"] = Path(cache).expanduser()
        kwargs.update(overrides)
        return cls(Secret(app), Secret(secret), url, name, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (
            f"Settings(base_url={self.base_url!r}, host={self.host!r}, "
            f"app_key=<sha256:{self.app_key.fingerprint()}>, limits={self.limits!r})"
        )


def _rate(values: Mapping[str, str | None], name: str) -> float | None:
    """A rate from the environment: a number >= 0, or None when unset."""
    text = (values.get(name) or "").strip()
    if not text:
        return None
    try:
        rate = float(text)
    except ValueError:
        raise ConfigError(f"{name} is not a number: {text!r}") from None
    if not rate >= 0 or rate == float("inf"):
        raise ConfigError(f"{name} must be a number of requests per second >= 0: {text!r}")
    return rate


def _resolve_host(base_url: str | None, host: str | None) -> tuple[str, str]:
    if base_url:
        return _named(base_url), _check_url(base_url)
    host = (host or "prod").strip()
    if host in HOSTS:
        return host, HOSTS[host]
    if "://" in host:
        return _named(host), _check_url(host)
    raise ConfigError(f"unknown host {host!r}: use prod, paper or a base URL such as http://127.0.0.1:8123")


def _named(url: str) -> str:
    url = url.rstrip("/")
    return next((name for name, known in HOSTS.items() if known == url), "custom")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"base URL {url!r} is not an http(s) URL")
    return url.rstrip("/")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificates checked, ``SSL_CERT_FILE``/``SSL_CERT_DIR``
    honoured), made once per process and shared by every client: loading the CA bundle costs
    ~35 ms, which each new client (a run's reachability check, its fetch, a stream) paid again."""
    return httpx.create_ssl_context()
