"""Request pacing: one limiter per app key and host, shared by every task of the process.

Each tier (all TRs together, one TR, a group of TRs) is a calendar of booked
send times that spaces requests evenly: at most ``burst`` requests in any
``burst / rate`` seconds, a small safety ``margin`` under the nominal rate so
that network jitter never puts one request too many into the server's
one-second window. A request books the earliest time free in every tier it
belongs to. Gaps stay usable: a request that must wait a second for its own
TR's slot books the total tier a second ahead, and a request of another TR
still takes the total's free slots before it (one TR's limit never starves
the others; a multi-TR run fills the total budget).

Per-TR limits: ``per_tr`` gives every TR its own tier at a known rate
(``KIWOOM_PER_TR_RATE``); otherwise a TR gets one when the server first refuses
it with 1700 (learned, as below).

After a rejection the tier that the server named (1700 per TR, 1701 in total,
1702 per group, HTTP 429 in total) slows to 80% of its current rate and
remembers that rate as a ceiling; successes bring it back quickly to just
under the ceiling, then probe upwards slowly to the configured rate. A stray
rejection (the first after ``CALM`` successes in a row) does not slow the
tier: at the nominal rate, jitter in arrival times puts one request in a
hundred or so into the server's previous second, and slowing for each cost
twice what the refusal itself did. A second one soon after is a limit below
ours, and the tier slows from then on as above.
Reservations are arithmetic under a ``threading.Lock``, so the limiter is
shared safely across event loops and threads; waiting is ``asyncio.sleep``.

The calendar is the plan; what the server counts is when requests really go.
A task can wake late (the event loop was busy parsing a page), and a request
sent late by more than the margin's slack puts the next few too close behind
it. So each tier also keeps the times its last requests really went, and a
request goes only once the server's own window allows it by those: at most
``limit`` of them (a whole number of requests) in ``limit`` intervals. A late
request delays the ones after it by its lateness instead of being refused.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["RateLimiter", "RateLimits", "shared_limiter"]

SLOWDOWN = 0.8
FAST_RECOVERY = 0.05  # of the limit per success, up to just under the last ceiling
PROBE = 0.004  # of the limit per success, above the ceiling
CALM = 30  # successes in a row after which a rejection is taken for jitter, not a lower limit


@dataclass(frozen=True)
class RateLimits:
    """Requests per second per tier; ``total=None`` turns limiting off."""

    total: float | None = 5.0
    per_api: Mapping[str, float] = field(default_factory=dict)
    groups: Mapping[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    margin: float = 0.03
    burst: int = 1
    floor: float = 0.2  # adaptive rates never fall below this fraction of their limit
    per_tr: float | None = None  # every TR's own limit when known; None: learned from 1700 refusals

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
        self.slots: list[float] = []  # booked send times, sorted: the recent past and the future
        self.sent: deque[float] = deque(maxlen=max(1, int(limit)))  # when the last requests really went
        self.calm = CALM  # successes since the last rejection

    @property
    def interval(self) -> float:
        return 1.0 / (self.rate * (1.0 - self.margin))

    @property
    def window(self) -> float:
        """At most ``burst`` requests in any window this long."""
        return self.burst * self.interval

    def forget(self, now: float) -> None:
        """Drop bookings too old to constrain a request at ``now`` or later."""
        old = bisect.bisect_left(self.slots, now - self.window)
        if old:
            del self.slots[:old]

    def fits(self, at: float) -> bool:
        """Whether a request at ``at`` keeps every window within ``burst`` requests."""
        times = self.slots
        k = bisect.bisect_left(times, at)
        trial = [*times[max(0, k - self.burst) : k], at, *times[k : k + self.burst]]
        lead = min(k, self.burst)  # trial[lead] is ``at``
        width = self.window - 1e-9
        return all(
            trial[i + self.burst] - trial[i] >= width
            for i in range(max(0, lead - self.burst), lead + 1)
            if i + self.burst < len(trial)
        )

    def take(self, at: float) -> None:
        bisect.insort(self.slots, at)

    def clear_at(self, now: float) -> float:
        """When a request may really go: the server's window, by the times requests really went."""
        if len(self.sent) < (self.sent.maxlen or 1):
            return now
        return max(now, self.sent[0] + len(self.sent) * self.interval)

    def rejected(self) -> None:
        stray, self.calm = self.calm >= CALM, 0
        if stray:
            return
        self.ceiling = self.rate
        self.rate = max(self.floor, self.rate * SLOWDOWN)

    def succeeded(self) -> None:
        self.calm += 1
        if self.rate < self.limit:
            step = FAST_RECOVERY if self.rate < 0.95 * self.ceiling else PROBE
            self.rate = min(self.limit, self.rate + step * self.limit)


def _earliest(buckets: list[_Bucket], now: float) -> float:
    """The first time at or after ``now`` free in every bucket: ``now`` or the end of a booking's window."""
    ends = sorted({s + b.window for b in buckets for s in b.slots if s + b.window > now})
    return next(at for at in (now, *ends) if all(b.fits(at) for b in buckets))


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
        if self.limits.per_tr and api_id not in self._api:
            self._api[api_id] = _Bucket(api_id, self.limits.per_tr, self.limits)
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
            for b in buckets:
                b.forget(now)
            at = _earliest(buckets, now)
            for b in buckets:
                b.take(at)
            return at

    def confirm(self, api_id: str) -> float | None:
        """Record a send of ``api_id`` now if every tier's real sends allow it (None); else when they will."""
        with self._lock:
            now = self._clock()
            buckets = self._buckets(api_id)
            ready = max((b.clear_at(now) for b in buckets), default=now)
            if ready > now:
                return ready
            for b in buckets:
                b.sent.append(now)
            return None

    async def acquire(self, api_id: str) -> float:
        """Wait for a slot for ``api_id`` and for the real sends before it to allow it; the seconds waited."""
        start = self._clock()
        at: float | None = self.reserve(api_id)
        while at is not None:
            wait = at - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            at = self.confirm(api_id)
        return max(0.0, self._clock() - start)

    def rejected(self, api_id: str, scope: str = "total") -> None:
        """The server refused a request of ``api_id``: slow the tier it named."""
        with self._lock:
            self.rejections += 1
            if scope == "api" and self._total is not None:
                # learn a per-TR limit the configuration did not know about
                self._api.setdefault(
                    api_id, _Bucket(api_id, self.limits.per_tr or self._total.limit, self.limits)
                )
            targets: list[_Bucket | None] = [self._total]
            if scope == "api" and self.limits.per_tr:
                # the TR's own rate is the configuration's and stays: the server says 1700 for the
                # TR's limit and the total's alike, so it slows the total, which recovers in a second
                # (slowing the TR instead costs more: 0.05/s back per success of that TR alone)
                targets = [self._total]
            elif scope == "api" and api_id in self._api:
                # a learned per-TR limit and the total are not told apart reliably: slow both
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
