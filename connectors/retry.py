"""One retry policy for the REST client and the realtime session: exponential backoff with jitter.

The delay before retry ``attempt`` (0 for the first retry) is
``min(cap, base * 2**attempt)`` scaled by a uniform factor in [0.5, 1]: the
"equal jitter" variant, so clients that failed together do not come back
together, and a delay never drops below half its nominal value.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from connectors.settings import Settings

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 0.25  # seconds before the first retry (before jitter)
    cap: float = 10.0  # no single delay is longer
    max_retries: int | None = 6  # None: retry forever (a streaming session)

    @classmethod
    def from_settings(cls, settings: Settings, *, max_retries: int | None = -1) -> RetryPolicy:
        """The policy of ``settings`` (``backoff_base``, ``backoff_max``, ``max_retries``);
        pass ``max_retries`` to override the number of retries (None: unlimited)."""
        retries = settings.max_retries if max_retries == -1 else max_retries
        return cls(settings.backoff_base, settings.backoff_max, retries)

    def delay(self, attempt: int, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        return min(self.cap, self.base * 2 ** min(attempt, 62)) * uniform(0.5, 1.0)

    def gives_up(self, attempt: int) -> bool:
        """True when ``attempt`` (0-based) is past the allowed retries."""
        return self.max_retries is not None and attempt >= self.max_retries
