"""The stream worker's committer thread, and the merges of small files it runs between commits.

``CommitLoop`` commits what the tick log has made durable, a decoder thread preparing the next
micro-batch while it commits the last one; between commits, ``Merges`` merges the stream tables'
small files every few seconds: micro-batches leave two files a commit, and with a SQLite catalog
every statement that reads a table lists all of its files.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from warehouse import Warehouse
from warehouse.snapshots import Marks
from warehouse.stream_commit import Batch, StreamCommitter

__all__ = ["EXPIRE_EVERY", "KEEP_SNAPSHOTS", "CommitLoop", "Merges"]

log = logging.getLogger(__name__)

KEEP_SNAPSHOTS = timedelta(minutes=10)  # the session's snapshots kept for time travel (and slow readers)
EXPIRE_EVERY = 60.0  # seconds between expiries of the older ones


class CommitLoop(threading.Thread):
    """Commits whatever the log has made durable, in two stages that overlap.

    A decoder thread reads and decodes the next batch (``StreamCommitter.prepare``) while this
    thread commits the last one (``apply``); one batch waits between them at most, so memory
    stays at about three batches of ``max_bytes``. A batch takes what is durable once
    ``interval`` has passed since the last one was cut (up to the committer's bounds): commits
    are ``interval`` apart when frames keep coming, and as large as the bounds, not more
    frequent, under a backlog. On ``halt`` the decoder stops and the batches it made are committed.
    """

    def __init__(self, committer: StreamCommitter, interval: float, merges: Merges | None = None) -> None:
        super().__init__(name="stream-committer", daemon=True)
        self.committer = committer
        self.interval = interval
        self.merges = merges
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self._batches: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self._decoder = threading.Thread(target=self._decode, name="stream-decoder", daemon=True)

    def _decode(self) -> None:
        committer, cursor, last_cut = self.committer, self.committer.position, time.monotonic()
        try:
            while not self.halt.is_set() and self.error is None:
                if cursor is not None and not committer.pending(cursor):
                    committer.log.wait_past(cursor, timeout=0.1)
                    continue
                due = last_cut + self.interval - time.monotonic()
                if due > 0:
                    self.halt.wait(due)
                    continue
                batch = committer.prepare(cursor)
                last_cut = time.monotonic()
                if batch is None:  # a log never committed, with nothing durable in it yet
                    continue
                cursor = batch.end
                while not self._put(batch):
                    if self.error is not None:
                        return
        except BaseException as exc:  # the worker stops and reports it
            self.error = exc
        finally:
            while not self._put(None) and self.error is None:
                pass

    def _put(self, item: Batch | None) -> bool:
        try:
            self._batches.put(item, timeout=0.1)
        except queue.Full:
            return False
        return True

    def run(self) -> None:
        self._decoder.start()
        try:
            while (batch := self._batches.get()) is not None:
                self.committer.apply(batch)
                if self.merges is not None:
                    self.merges.maybe()
        except BaseException as exc:  # the worker stops and reports it
            self.error = exc
            with contextlib.suppress(queue.Empty):
                self._batches.get_nowait()  # unblocks the decoder, which then sees the error
        self._decoder.join()


class Merges:
    """Merges ``tables``' small files every ``every`` seconds (0: never), between two commits.

    On the committer's thread (``CommitLoop`` calls ``maybe`` after each commit), so the merge
    and the commits never run at once: DuckLake's merge is one catalog transaction that reads
    the table's files first and commits last, and with a SQLite catalog a merge running beside a
    committer three times a second never gets to commit ("database is locked" for as long as the
    commits go on; measured here, in a process of its own too). A merge holds the commits back
    for as long as it takes, so it runs often, over few files: files under
    ``maintenance.SMALL_FILE`` only, a few seconds of micro-batches each time. A failed merge is
    logged and counted and tried again at the next interval: the rows are committed either way.

    Every ``expire_every`` seconds it also expires the snapshots this session made that are older
    than ``keep`` (``None``: never; ``warehouse.snapshots.expire_session``): at four commits a
    second the catalog otherwise gains ~100,000 snapshots a session, and commits and merges
    slow down a little as it grows (``bench/results/snapshots.md``).
    """

    def __init__(
        self,
        wh: Warehouse,
        tables: Sequence[str],
        every: float,
        keep: timedelta | None = KEEP_SNAPSHOTS,
        expire_every: float = EXPIRE_EVERY,
    ) -> None:
        self.wh, self.tables, self.every = wh, tuple(tables), every
        self.expire_every = expire_every
        self.expired_upto = wh.snapshot()  # the session's start: older snapshots are not this session's
        self.marks = Marks(keep.total_seconds()) if keep is not None else None
        self.last = self.last_expiry = time.monotonic()
        self.merges = self.files = self.failures = self.expired = 0
        self.seconds = self.longest = 0.0
        self.last_error: str | None = None

    def maybe(self) -> None:
        if not self.every or time.monotonic() - self.last < self.every:
            return
        started = time.perf_counter()
        merged = self._step(
            "merging the stream's small files", lambda: self.wh.merge_small_files(self.tables)
        )
        if merged is not None:
            self.merges += 1
            self.files += merged
        if self.marks is not None and time.monotonic() - self.last_expiry >= self.expire_every:
            expired = self._step("expiring the session's old snapshots", self._expire)
            self.expired += expired or 0
            self.last_expiry = time.monotonic()
        took = time.perf_counter() - started
        self.seconds += took
        self.longest = max(self.longest, took)
        self.last = time.monotonic()

    def _expire(self) -> int:
        """Expire up to the newest snapshot seen at least ``keep`` ago, and mark the newest one now."""
        assert self.marks is not None
        upto = self.marks.older(time.monotonic(), self.wh.snapshot())
        if upto is None or upto <= self.expired_upto:
            return 0
        expired = self.wh.expire_session(self.expired_upto, upto)
        self.expired_upto = upto
        return expired

    def _step(self, what: str, step: Callable[[], int]) -> int | None:
        """``step()``, or ``None`` when it failed: logged and counted, tried again at the next interval."""
        try:
            return step()
        except Exception as exc:  # the rows are committed either way; the summary says so
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            log.warning("%s failed (will retry): %s", what, self.last_error)
            return None

    def stats(self) -> dict[str, Any]:
        return {
            "merges": self.merges,
            "files_merged": self.files,
            "seconds": round(self.seconds, 3),
            "longest_s": round(self.longest, 3),
            "snapshots_expired": self.expired,
            "failures": self.failures,
            "last_error": self.last_error,
        }
