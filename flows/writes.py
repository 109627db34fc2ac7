"""Writes off the fetch path: a run's commits grouped, in a thread, while the next requests are in flight.

``run_job`` hands each whole-day chunk of a job (its rows, coverage and cursor:
a ``warehouse.Rows``) to the ``Committer``. One writer task commits the queued
chunks of several jobs as one transaction (``Warehouse.commit``) in a worker
thread: as soon as ``group_parts`` chunks (or ``group_rows`` rows) wait, or
``group_seconds`` after the oldest of them was handed over (at once if it already
waited that long behind the previous commit), and when the fetch ends; the very
first chunk of a run alone, at once, so a broken write path fails early. The event loop never waits on a write
(so the limiter's slots never pass unused); only when ``queue_parts`` chunks
wait does a job wait to hand over its next one, so memory stays bounded.

A job is done when its last chunk is committed: ``done`` is called once per
job, with the rows committed for it and its error, if any. A commit that fails
fails every job with a chunk in it (``WriteFailed``, named by the caller), and
such a job's later chunks are refused, so it stops fetching.

Stopping (Ctrl-C, a run aborted): ``close`` commits what is queued and waits for
the commit in progress. Each chunk is whole days with its own coverage and
cursor, and chunks commit in the order they came, so whatever was committed is
a consistent state: never coverage without its rows. A kill loses the jobs in
flight and the queued chunks: about ``group_seconds`` of fetching plus what came
during the commit in progress. The next run fetches them again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from flows.ingest import Job
from warehouse import Cursor, Run, Warehouse
from warehouse.commit import Commit, Rows

__all__ = ["Committer", "CursorKey", "Ticket", "WriteFailed"]

CursorKey = tuple[str, str, str, str]  # dataset, symbol, options, api_id

# A commit costs about 0.1-0.3 s of CPU per dataset in it whatever its rows (statements, not rows):
# measured here, 10 symbols' daily bars as ten parts 0.37 s, as one part 0.32 s. So few, large commits.
GROUP_PARTS = 50  # chunks per transaction at most before it goes (more if a slow commit left more)
GROUP_ROWS = 250_000  # or this many rows
# A chunk waits at most this long for others to share its transaction: what a kill can lose, against
# commits per run. At 5 requests/s a second groups a few symbols' chunks; the commit is then a small
# share of a core, and a SIGKILL loses about a second of fetching besides the jobs in flight.
GROUP_SECONDS = 1.0
QUEUE_PARTS = 100  # chunks waiting before a job waits to hand over more (memory bound)


class WriteFailed(Exception):
    """A commit that carried this job's rows failed; what it carried is not in the lake."""


@dataclass(eq=False)
class Ticket:
    """One job's writes: committed rows, chunks still queued, and the job's error."""

    job: Job
    rows: int = 0
    queued: int = 0
    error: BaseException | None = None  # the fetch's or a commit's
    lost: bool = False  # a commit carrying this job's rows failed
    ended: bool = False
    reported: bool = False


Done = Callable[[Ticket], None]


class Committer:
    """Commits the chunks of many jobs, grouped, in a thread; use ``async with`` on the fetch's loop."""

    def __init__(
        self,
        wh: Warehouse,
        run: Run,
        done: Done | None = None,
        *,
        group_parts: int = GROUP_PARTS,
        group_rows: int = GROUP_ROWS,
        group_seconds: float = GROUP_SECONDS,
        queue_parts: int = QUEUE_PARTS,
    ) -> None:
        self.wh, self.run, self.done = wh, run, done
        self.group_parts, self.group_rows, self.group_seconds = max(1, group_parts), group_rows, group_seconds
        self._queue: asyncio.Queue[tuple[Ticket, Rows, float] | None] = asyncio.Queue(max(1, queue_parts))
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        self.seconds = 0.0  # spent in commits (in the thread)
        # the saved fetch positions, read once and kept current with each commit: a job reads its
        # own here, not in the warehouse, where it would wait for the commit in progress
        self.cursors: dict[CursorKey, Cursor] = {}

    async def __aenter__(self) -> Committer:
        self.cursors = await asyncio.to_thread(self._read_cursors)
        self._task = asyncio.create_task(self._writer())
        return self

    def _read_cursors(self) -> dict[CursorKey, Cursor]:
        rows = self.wh.sql("SELECT dataset, symbol, options, api_id, next_key, below FROM meta.cursors")
        return {
            (ds, symbol, opts, api): Cursor(api, symbol, opts, key, below)
            for ds, symbol, opts, api, key, below in rows.iter_rows()
        }

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def put(self, ticket: Ticket, rows: Rows) -> None:
        """Hand over one chunk of ``ticket``'s job; waits only while the queue is full."""
        if ticket.lost:
            raise WriteFailed(str(ticket.error))
        if self._task is None or self._task.done():
            raise RuntimeError("the committer is not running")
        if rows.frame.is_empty() and not rows.coverage and rows.cursor is None:
            return  # nothing to record (``Warehouse.write`` skips it too)
        await self._queue.put((ticket, rows, asyncio.get_running_loop().time()))
        ticket.queued += 1

    def end(self, ticket: Ticket, error: BaseException | None = None) -> None:
        """The job has handed over everything (or failed): report it once its chunks are committed."""
        ticket.ended = True
        if error is not None and ticket.error is None:
            ticket.error = error
        self._settle(ticket)

    async def close(self) -> None:
        """Commit what is queued, then stop; the commit in progress always finishes."""
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done():
            await self._queue.put(None)
        await asyncio.shield(task)

    def _settle(self, ticket: Ticket) -> None:
        if ticket.ended and ticket.queued == 0 and not ticket.reported:
            ticket.reported = True
            if self.done is not None:
                self.done(ticket)

    async def _writer(self) -> None:
        try:
            await self._groups()
        except BaseException:  # a bug: no job waits on a queue nobody reads, and close() raises it
            while not self._queue.empty():
                self._queue.get_nowait()
            raise

    async def _groups(self) -> None:
        loop = asyncio.get_running_loop()
        closing, wait = False, 0.0  # the first chunk commits alone, at once: a bad write path fails early
        while not closing:
            first = await self._queue.get()
            if first is None:
                return
            group = [first[:2]]
            rows = first[1].frame.height
            deadline, wait = first[2] + wait, self.group_seconds  # from when the oldest came
            while len(group) < self.group_parts and rows < self.group_rows:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
                if item is None:
                    closing = True
                    break
                group.append(item[:2])
                rows += item[1].frame.height
            while not closing and not self._queue.empty():  # a slow commit left more: take it too
                item = self._queue.get_nowait()
                if item is None:
                    closing = True
                else:
                    group.append(item[:2])
            await self._commit(group)

    async def _commit(self, group: list[tuple[Ticket, Rows]]) -> None:
        # a chunk of a job whose earlier chunk failed is dropped: its cursor would skip the lost days
        live = [(t, r) for t, r in group if not t.lost]
        error: Exception | None = None
        if live:
            started = time.monotonic()
            try:
                parts = merged([r for _, r in live], self.cursors)
                await asyncio.to_thread(self.wh.commit, Commit(self.run, rows=parts))
            except Exception as exc:  # the commit left nothing: every job it carried fails
                error = exc
            self.seconds += time.monotonic() - started
            self.commits += 1
        jobs = len({id(t) for t, _ in live})
        for ticket, rows in group:
            ticket.queued -= 1
            if ticket.lost:
                continue
            if error is not None:
                ticket.lost = True
                ticket.error = WriteFailed(f"the commit of {len(live)} chunks of {jobs} jobs failed: {error}")
            else:
                ticket.rows += rows.frame.height
                if rows.cursor is not None:
                    c = rows.cursor
                    key = (rows.dataset, c.symbol, c.options, c.api_id)
                    if c.next_key is None:
                        self.cursors.pop(key, None)
                    else:
                        self.cursors[key] = c
        for ticket in dict.fromkeys(t for t, _ in group):
            self._settle(ticket)


def merged(parts: Sequence[Rows], cursors: Mapping[CursorKey, Cursor]) -> list[Rows]:
    """The same commit in fewer statements: what a commit costs is its statements, not its rows.

    A cursor removal with no saved cursor (in the lake, ``cursors``, nor set by an earlier
    part) is a no-op and goes; the parts of a dataset without a cursor become one (rows concatenated, spans
    together). Parts with a cursor stay as they are, in their order. The keys of different
    parts never overlap (other symbols or other days), so the rows left are the same.
    """
    out: list[Rows] = []
    plain: dict[str, list[Rows]] = {}
    saved = set(cursors)  # the keys with a cursor once the parts so far are applied
    for part in parts:
        c = part.cursor
        if c is not None:
            key = (part.dataset, c.symbol, c.options, c.api_id)
            if c.next_key is not None:
                saved.add(key)
            elif key in saved:
                saved.discard(key)
            else:
                part = dataclasses.replace(part, cursor=None)
        if part.cursor is None and part.replace and part.coverage is not None:
            plain.setdefault(part.dataset, []).append(part)
        else:
            out.append(part)
    for name, group in plain.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        frames = [p.frame for p in group if not p.frame.is_empty()] or [group[0].frame]
        spans = [s for p in group for s in p.coverage or ()]
        out.append(Rows(name, pl.concat(frames, how="diagonal_relaxed"), coverage=spans))
    return out
