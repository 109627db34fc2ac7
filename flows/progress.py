"""Where a batch run is: requests sent of the estimate, rows written, jobs done, and the ETA.

The runner plans the progress once it has the jobs (``plan``: each job's pages
from ``flows.estimate.estimate_pages``, and the limiter's configured rate), and
hands it a ``follow`` source that reads the counts the client already keeps
(``ClientStats.requests``, the summary's rows); the command line's bar reads a
``snapshot`` on its own timer, so the line moves with every request sent, not
only when a job ends. The ETA is the requests still to send at the configured
rate: the limiter, not the job pace, sets how fast a run goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from flows.estimate import estimate_pages
from flows.ingest import Job

__all__ = ["RunProgress", "Snapshot"]

# (requests sent, rows written) so far
Counts = Callable[[], tuple[int, int]]


@dataclass(frozen=True)
class Snapshot:
    """One reading of a run's progress."""

    requests: int  # TR requests sent (retries included)
    estimated: int  # requests the planned jobs should take (0 before the plan; a run may go past it)
    rows: int  # rows the finished jobs wrote
    done: int  # jobs finished (failed ones included)
    total: int  # jobs planned
    label: str  # the job last finished, or what the run is doing
    planned: bool  # the jobs are known (maybe none: nothing to fetch)
    elapsed: float  # seconds since the plan
    eta: float | None  # seconds still to go; None when unknown (no plan yet, no rate limit)

    def line(self) -> str:
        """``requests 120/480  rows 56,000  jobs 3/20  eta 0:01:12``"""
        eta = "?" if self.eta is None else _clock(self.eta)
        return (
            f"requests {self.requests:,}/{self.estimated:,}  rows {self.rows:,}  "
            f"jobs {self.done:,}/{self.total:,}  eta {eta}"
        )


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class RunProgress:
    """The progress model of one run; also the ``(done, total, label)`` hook that flows call per job."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._rate: float | None = None
        self._counts: Counts = lambda: (0, 0)
        self.estimated = 0
        self.done = 0
        self.total = 0
        self.label = "planning"
        self.planned = False

    def plan(self, jobs: Sequence[Job], rate: float | None, now: datetime | None = None) -> None:
        """The jobs about to run and the limiter's rate (requests/s; None: not limited)."""
        self.estimated = sum(estimate_pages(job, now) for job in jobs)
        self.done, self.total, self.planned = 0, len(jobs), True
        self._rate = rate if rate and rate > 0 else None
        self._started = self._clock()
        self.label = "starting"

    def follow(self, counts: Counts) -> None:
        """Where requests and rows are read from: the live client's counts in-process, the merged
        batch summaries under Prefect."""
        self._counts = counts

    def __call__(self, done: int, total: int, label: str) -> None:
        self.done, self.total, self.label = done, total, label

    def eta(self, requests: int) -> float | None:
        """Seconds to send what is left at the configured rate. A job not yet finished takes at
        least one more request, however far past the estimate the run has gone."""
        if not self.planned:
            return None
        if self.done >= self.total:
            return 0.0
        if self._rate is None:
            return None
        left = max(self.estimated - requests, self.total - self.done)
        return left / self._rate

    def snapshot(self) -> Snapshot:
        requests, rows = self._counts()
        return Snapshot(
            requests=requests,
            estimated=self.estimated,
            rows=rows,
            done=self.done,
            total=self.total,
            label=self.label,
            planned=self.planned,
            elapsed=self._clock() - self._started,
            eta=self.eta(requests),
        )
