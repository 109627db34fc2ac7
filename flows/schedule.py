"""Which batch runs next: different TRs at once, so per-TR limits never leave the total budget unused.

The server limits each TR on its own (about 1 request a second, measured live)
besides all TRs together (5 a second). A run of several datasets therefore
fills the total only when requests of different TRs are in flight at once:
``batches`` cuts the jobs into batches of one TR and interleaves the TRs, and
``run_batches`` keeps ``slots`` batches in flight, each next one from the TR
with the fewest batches in flight (then the most left to do). The one shared
limiter (``connectors.ratelimit``) paces them all.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from itertools import zip_longest

from flows.ingest import Job

__all__ = ["BATCH_SYMBOLS", "CONCURRENCY", "MAX_CONCURRENCY", "PER_TR", "batches", "run_batches", "slots_for"]

BATCH_SYMBOLS = 10  # symbols per batch (a Prefect task each)
CONCURRENCY = 4  # batches in flight at least; the client's limiter paces them all
PER_TR = 2  # batches in flight per TR: one waits for the TR's next slot while the other's answer is read
MAX_CONCURRENCY = 16  # and at most this many


def batches(jobs: Sequence[Job], size: int = BATCH_SYMBOLS) -> list[list[Job]]:
    """Jobs grouped by dataset and TR, ``size`` symbols a batch, the TRs taking turns."""
    by_tr: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        by_tr.setdefault((job.dataset, job.api_id), []).append(job)
    per_tr: list[list[list[Job]]] = []
    for group in by_tr.values():
        symbols = list(dict.fromkeys(j.symbol for j in group))
        cut = []
        for i in range(0, len(symbols), size):
            chunk = set(symbols[i : i + size])
            cut.append([j for j in group if j.symbol in chunk])
        per_tr.append(cut)
    return [batch for turn in zip_longest(*per_tr) for batch in turn if batch is not None]


def slots_for(work: Sequence[Sequence[Job]]) -> int:
    """Batches in flight: at least ``CONCURRENCY``, ``PER_TR`` per TR up to ``MAX_CONCURRENCY``.

    One batch per TR is not enough when per-TR limits bind: its jobs run one after the other,
    so the time to read an answer and hand its rows over (more on a loaded machine) adds to the
    TR's one-second spacing instead of overlapping it."""
    trs = len({batch[0].api_id for batch in work if batch})
    return max(CONCURRENCY, min(MAX_CONCURRENCY, PER_TR * trs))


async def run_batches(
    work: Sequence[list[Job]], run: Callable[[list[Job]], Awaitable[None]], slots: int | None = None
) -> None:
    """Run every batch, ``slots`` at once; a free slot takes the TR with the fewest batches in flight."""
    pending: dict[str, deque[list[Job]]] = {}
    for batch in work:
        if batch:
            pending.setdefault(batch[0].api_id, deque()).append(batch)
    flying: Counter[str] = Counter()

    def pick() -> tuple[str, list[Job]] | None:
        ready = [tr for tr, queue in pending.items() if queue]
        if not ready:
            return None
        tr = min(ready, key=lambda t: (flying[t], -len(pending[t])))
        flying[tr] += 1
        return tr, pending[tr].popleft()

    async def worker() -> None:
        while (item := pick()) is not None:
            tr, batch = item
            try:
                await run(batch)
            finally:
                flying[tr] -= 1

    count = min(slots or slots_for(work), sum(len(q) for q in pending.values()))
    async with asyncio.TaskGroup() as group:
        for _ in range(count):
            group.create_task(worker())
