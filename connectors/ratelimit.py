"""Request pacing: one limiter per app key and host, shared by every task of the process.

Each tier (all TRs together, one TR, a group of TRs) is a bucket that spaces
requests evenly (a GCRA scheduler: no bursts beyond ``burst``, a small safety
``margin`` under the nominal rate so that network jitter never puts one
request too many into the server's one-second window). A request waits for a
slot free in every tier it belongs to.

After a rejection the tier that the server named (1700 per TR, 1701 in total,
1702 per group, HTTP 429 in total) slows to 80% of its current rate and
remembers that rate as a ceiling; successes bring it back quickly to just
under the ceiling, then probe upwards slowly to the configured rate.
Reservations are arithmetic under a ``threading.Lock``, so the limiter is
shared safely across event loops and threads; waiting is ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["RateLimiter", "RateLimits", "shared_limiter"]

SLOWDOWN = 0.8
FAST_RECOVERY = 0.05  # of the limit per success, up to just under the last ceiling
PROBE = 0.004  # of the limit per success, above the ceiling


@dataclass(frozen=True)
class RateLimits:
    """Requests per second per tier; ``total=None`` turns limiting off."""

    total: float | None = 5.0
    per_api: Mapping[str, float] = field(default_factory=dict)
    groups: Mapping[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    margin: float = 0.03
    burst: int = 1
    floor: float = 0.2  # adaptive rates never fall below this fraction of their limit

    @classmethod
    def for_host(cls, host: str, total: float | None = None, **kw: object) -> RateLimits:
        """The service terms: 5 queries per second, 1 on paper trading."""
        default = 1.0 if host == "paper" else 5.0
        return cls(total=default if total is None else (total or None), **kw)  # type: ignore[arg-type]


class _Bucket:
    def __init__(self, name: str, limit: float, limits: RateLimits) -> None:
        self.name = name
        self.limit = limit
        self.rate = limit
        self.ceiling = limit
        self.margin = limits.margin
        self.burst = max(1, limits.burst)
        self.floor = limit * limits.floor
        self.tat = 0.0  # theoretical arrival time of the next request

    @property
    def interval(self) -> float:
        return 1.0 / (self.rate * (1.0 - self.margin))

    def earliest(self, now: float) -> float:
        return max(now, self.tat - (self.burst - 1) * self.interval)

    def take(self, at: float) -> None:
        self.tat = max(self.tat, at) + self.interval

    def rejected(self) -> None:
        self.ceiling = self.rate
        self.rate = max(self.floor, self.rate * SLOWDOWN)

    def succeeded(self) -> None:
        if self.rate < self.limit:
            step = FAST_RECOVERY if self.rate < 0.95 * self.ceiling else PROBE
            self.rate = min(self.limit, self.rate + step * self.limit)


class RateLimiter:
    """Async pacing over the tiers of ``RateLimits``."""

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._total = _Bucket("total", limits.total, limits) if limits.total else None
        self._api = {api: _Bucket(api, rate, limits) for api, rate in limits.per_api.items()}
        self._groups = [
            (_Bucket(name, rate, limits), members) for name, (rate, members) in limits.groups.items()
        ]
        self.rejections = 0

    def _buckets(self, api_id: str) -> list[_Bucket]:
        out = [b for b, members in self._groups if api_id in members]
        if api_id in self._api:
            out.append(self._api[api_id])
        if self._total is not None:
            out.append(self._total)
        return out

    def reserve(self, api_id: str) -> float:
        """Book the next slot free in every tier of ``api_id``; return its clock time."""
        with self._lock:
            now = self._clock()
            buckets = self._buckets(api_id)
            if not buckets:
                return now
            at = max(b.earliest(now) for b in buckets)
            for b in buckets:
                b.take(at)
            return at

    async def acquire(self, api_id: str) -> float:
        """Wait for a slot for ``api_id``; return the seconds waited."""
        wait = self.reserve(api_id) - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
            return wait
        return 0.0

    def rejected(self, api_id: str, scope: str = "total") -> None:
        """The server refused a request of ``api_id``: slow the tier it named."""
        with self._lock:
            self.rejections += 1
            if scope == "api" and self._total is not None:
                # learn a per-TR limit the configuration did not know about
                self._api.setdefault(api_id, _Bucket(api_id, self._total.limit, self.limits))
            targets: list[_Bucket | None] = [self._total]
            if scope == "api" and api_id in self._api:
                # the server's per-TR and total limits are not told apart reliably: slow both
                targets = [self._api[api_id], self._total]
            elif scope == "group":
                targets = [b for b, members in self._groups if api_id in members] or targets
            for bucket in targets:
                if bucket is not None:
                    bucket.rejected()

    def succeeded(self, api_id: str) -> None:
        with self._lock:
            for bucket in self._buckets(api_id):
                bucket.succeeded()

    def rates(self) -> dict[str, float]:
        """Current rate of every tier (requests per second)."""
        with self._lock:
            tiers = [self._total, *self._api.values(), *(b for b, _ in self._groups)]
            return {b.name: round(b.rate, 3) for b in tiers if b is not None}

    def __repr__(self) -> str:
        return f"RateLimiter({self.rates()})"


_SHARED: dict[tuple[str, str], RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(key: tuple[str, str], limits: RateLimits) -> RateLimiter:
    """The process-wide limiter of one (base URL, app-key fingerprint)."""
    with _SHARED_LOCK:
        limiter = _SHARED.get(key)
        if limiter is None or limiter.limits != limits:
            limiter = _SHARED[key] = RateLimiter(limits)
        return limiter
