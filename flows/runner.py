"""A batch run as plain functions: backfill, daily and refresh_universe, whoever drives them.

``execute`` is a whole run: hold the warehouse's batch lease (``flows.lease``),
plan the jobs from coverage, check once that the host answers (a token request),
fetch, heal (daily), and close the run in ``meta.runs`` with its summary. How the
batches are fetched is the caller's: ``run_in_process`` (the command line's
default) fetches them concurrently on one event loop with one client, different
TRs at once (``flows.schedule``), and stops cleanly on Ctrl-C; ``flows.pipeline``
submits them as Prefect tasks. Either way the writes are grouped off the fetch
path (``flows.writes``): a job counts as done when its rows are committed. Nothing here
imports Prefect, so a run with nothing to fetch ends in about Python's start-up time.

Each job of a batch runs whatever its neighbours did: a failure is recorded
(``Summary.failed`` names the job) and the next job goes on. Only failures that
every job would meet abort the run (``RunAborted``: keys refused, host gone).
Counts come from the client (``ClientStats``), once: requests as they go on the
wire, so retries and token replays are in them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from connectors import AuthError, ClientStats, ConnectionFailed, KiwoomClient, KiwoomError, Settings
from flows.ingest import Job, run_job
from flows.lease import LeaseHeld, hold
from flows.plans import plan_run
from flows.progress import RunProgress
from flows.schedule import batches, run_batches
from flows.writes import Committer, Ticket, WriteFailed
from schemas import calendar as cal
from warehouse import LakeConfig, Run, Warehouse

__all__ = [
    "Interrupted",
    "RunAborted",
    "Summary",
    "Target",
    "batches",
    "execute",
    "fetch_batch",
    "run_in_process",
]

CHECK_SECONDS = 5.0  # the reachability check gives up after this

# the run's progress: planned with the jobs, called as (done, total, label) after each job
Progress = RunProgress
# fetches the batches into the summary: (target, batches, run, now, summary, progress)
Fetcher = Callable[["Target", list[list[Job]], Run, datetime | None, "Summary", Progress | None], None]


class RunAborted(Exception):
    """The run cannot go on: every job would fail the same way (the host, the keys)."""


class Interrupted(Exception):
    """Ctrl-C: the run stopped between commits."""


@dataclass(frozen=True)
class Target:
    """Where to fetch from and write to; plain values so Prefect can pass them around."""

    base_url: str | None = None
    host: str | None = None
    warehouse: str | None = None

    def settings(self) -> Settings:
        return Settings.load(base_url=self.base_url, host=self.host)

    def lake(self) -> Warehouse:
        return _warehouse(str(LakeConfig.load(self.warehouse).root) if self.warehouse else None)


_WAREHOUSES: dict[str | None, Warehouse] = {}


def _warehouse(root: str | None) -> Warehouse:
    """One warehouse (one DuckDB connection, one write lock) per lake per process."""
    if root not in _WAREHOUSES:
        _WAREHOUSES[root] = Warehouse(warehouse=root)
    return _WAREHOUSES[root]


@dataclass
class Summary:
    requests: int = 0
    pages: int = 0
    rejections: int = 0
    retries: int = 0
    token_requests: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    jobs: int = 0
    failed: list[str] = field(default_factory=list)
    healed: dict[str, Any] | None = None  # the daily flow's heal of stream gaps (flows.heal)

    @property
    def errors(self) -> int:
        """Failed jobs (and a failed heal): each is named in ``failed``."""
        return len(self.failed)

    def add_stats(self, stats: ClientStats) -> None:
        self.requests += stats.requests
        self.pages += stats.pages
        self.rejections += stats.rejections
        self.retries += stats.retries
        self.token_requests += stats.token_requests

    def merge(self, other: Summary) -> None:
        for name in ("requests", "pages", "rejections", "retries", "token_requests", "jobs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rows.update(other.rows)
        self.failed += other.failed

    def as_dict(self, seconds: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "pages": self.pages,
            "rejections": self.rejections,
            "retries": self.retries,
            "token_requests": self.token_requests,
            "errors": self.errors,
            "jobs": self.jobs,
            "rows": dict(self.rows),
            "failed": list(self.failed),
            "seconds": round(seconds, 2),
        } | ({"healed": self.healed} if self.healed is not None else {})


# ------------------------------------------------------------------ fetching


async def fetch_jobs(
    client: KiwoomClient,
    wh: Warehouse,
    jobs: Sequence[Job],
    committer: Committer,
    now: datetime | None,
) -> None:
    """Run each job, its chunks handed to ``committer``; a failed job is reported by the committer (see
    ``settled``) and the next one goes on. Failures every job would meet raise ``RunAborted``."""
    for job in jobs:
        ticket = Ticket(job)
        try:
            write = functools.partial(committer.put, ticket)
            await run_job(client, wh, job, committer.run, now=now, write=write, cursors=committer.cursors)
        except (AuthError, ConnectionFailed) as exc:  # every other job would fail the same way
            raise RunAborted(f"{job.describe()}: {exc}") from exc
        except WriteFailed:  # the commit's error is the ticket's already
            committer.end(ticket)
        except Exception as exc:  # an unknown symbol, a malformed page: this job only
            committer.end(ticket, exc)
        else:
            committer.end(ticket)


def settled(summary: Summary, done: Callable[[Job], None] | None = None) -> Callable[[Ticket], None]:
    """What a job's end does once its rows are committed: counted, and named in ``failed`` if it failed."""

    def report(ticket: Ticket) -> None:
        summary.rows[ticket.job.dataset] += ticket.rows
        if ticket.error is not None:
            summary.failed.append(f"{ticket.job.describe()}: {ticket.error}")
        summary.jobs += 1
        if done is not None:
            done(ticket.job)

    return report


def fetch_batch(target: Target, jobs: list[Job], run: Run, now: datetime | None = None) -> Summary:
    """Fetch one batch with a client of its own (a Prefect task's body); never raises for a job."""
    summary = Summary()

    async def go() -> None:
        wh = target.lake()
        async with KiwoomClient(target.settings()) as client:
            try:
                async with Committer(wh, run, settled(summary)) as committer:
                    await fetch_jobs(client, wh, jobs, committer, now)
            finally:
                summary.add_stats(client.stats)

    asyncio.run(go())
    return summary


async def check_reachable(client: KiwoomClient) -> None:
    """One token request (or, with a cached token, one connection) before the work, so a wrong URL
    or wrong keys fail in a second with a message saying what to check."""
    url = client.settings.base_url
    try:
        if client.auth.usable() is None:
            await asyncio.wait_for(client.ensure_token(), CHECK_SECONDS)
        else:
            where = httpx.URL(url)
            port = where.port or (443 if where.scheme == "https" else 80)
            _, writer = await asyncio.wait_for(asyncio.open_connection(where.host, port), CHECK_SECONDS)
            writer.close()
    except (TimeoutError, ConnectionFailed, OSError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else str(exc)
        raise RunAborted(
            f"cannot reach {url} ({reason}): check --base-url/KIWOOM_BASE_URL (or --host) "
            "and that the server is up and reachable from here"
        ) from None
    except AuthError as exc:
        raise RunAborted(
            f"{url} refused the keys: {exc}; check KIWOOM_APP_KEY and KIWOOM_SECRET_KEY"
        ) from None


# ------------------------------------------------------------------ a whole run


def execute(
    flow: str,
    params: dict[str, Any],
    fetch: Fetcher,
    *,
    wait: bool = False,
    notify: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    stopping: threading.Event | None = None,
) -> dict[str, Any]:
    """One run of ``flow`` ("backfill", "daily", "refresh_universe") with ``params`` (the flow's
    parameters): the result's ``status`` is ok, failed or interrupted."""
    started = time.monotonic()
    target = Target(params.get("base_url"), params.get("host"), params.get("warehouse"))
    now: datetime | None = params.get("now")
    summary = Summary()
    checked = not LakeConfig.load(target.warehouse).exists()
    if checked:  # a new lake has everything to fetch: an unreachable host fails before it is created
        asyncio.run(_check(target, summary))
    wh = target.lake()
    run, make_jobs = plan_run(flow, params, wh)  # bad input raises here, before anything is recorded
    status, error = "ok", None
    try:
        with hold(wh, run, wait=wait, notify=notify, stopping=stopping):
            try:
                jobs = make_jobs(wh)
                if stopping is not None and stopping.is_set():
                    raise Interrupted
                if jobs and not checked:
                    asyncio.run(_check(target, summary))
                if progress is not None:
                    _plan_progress(progress, target, jobs, now, summary)
                if jobs:
                    fetch(target, batches(jobs), run, now, summary, progress)
                if flow == "daily":
                    heal(target, wh, run, summary, now)
            except Interrupted:
                status = "interrupted"
            except (RunAborted, KiwoomError) as exc:
                status, error = "failed", str(exc)
    except LeaseHeld:
        raise
    except BaseException as exc:  # a bug: the run is closed as failed, the error goes on
        finish(wh, run, summary, started, "failed", f"{type(exc).__name__}: {exc}")
        raise
    if status == "ok" and summary.failed:
        status = "failed"
    return finish(wh, run, summary, started, status, error)


def _plan_progress(
    progress: Progress, target: Target, jobs: list[Job], now: datetime | None, summary: Summary
) -> None:
    """The estimate and the limiter's rate; requests and rows from the summary as batches merge into
    it (the in-process fetcher follows its live client instead)."""
    progress.plan(jobs, target.settings().limits.total, now)
    base = summary.requests  # the reachability check's, if any: not the jobs'
    progress.follow(lambda: (summary.requests - base, summary.rows.total()))


async def _check(target: Target, summary: Summary) -> None:
    async with KiwoomClient(target.settings()) as client:
        try:
            await check_reachable(client)
        finally:
            summary.add_stats(client.stats)


def heal(target: Target, wh: Warehouse, run: Run, summary: Summary, now: datetime | None) -> None:
    """Heal today's unhealed stream gaps (ka10079 serves only the current day), if anything streams."""
    import polars as pl

    from flows.heal import heal_gaps

    day = cal.to_kst(now or datetime.now(cal.KST)).date()
    if (
        "stock_trades" not in wh.tables()
        or wh.stream_gaps(day).filter(pl.col("healed_run").is_null()).is_empty()
    ):
        return

    async def go() -> dict[str, Any]:
        async with KiwoomClient(target.settings()) as client:
            try:
                return (await heal_gaps(client, wh, day, run=run, now=now)).as_dict()
            finally:
                summary.add_stats(client.stats)

    try:
        summary.healed = asyncio.run(go())
    except Exception as exc:  # a symbol the tick chart contradicts: the others are healed, the run fails
        result = getattr(exc, "result", None)
        summary.healed = result.as_dict() if result is not None else {"day": str(day), "error": str(exc)}
        summary.failed.append(f"heal stream gaps {day}: {exc}")
    summary.rows["stock_trades"] += int(summary.healed.get("rows", 0))


def finish(
    wh: Warehouse, run: Run, summary: Summary, started: float, status: str, error: str | None = None
) -> dict[str, Any]:
    """Close the run in ``meta.runs``; rows are what the ledger says this run committed."""
    result = summary.as_dict(time.monotonic() - started)
    committed = wh.sql(
        "SELECT dataset, sum(rows)::BIGINT AS rows FROM meta.writes WHERE run_id = ? GROUP BY dataset",
        [run.id],
    )
    result["rows"] = {**{k: 0 for k in result["rows"]}, **dict(committed.iter_rows())}
    if error:
        result["error"] = error
    wh.record_run(run, status, result)
    return result | {"status": status, "run_id": run.id}


# ------------------------------------------------------------------ in-process, with Ctrl-C


def run_in_process(
    flow: str,
    params: dict[str, Any],
    *,
    wait: bool = False,
    notify: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """``execute`` in this process: batches concurrently on one event loop with one client.

    The first Ctrl-C cancels the fetch at its next await (a write in progress
    finishes: it is one transaction) and the run closes as ``interrupted``; a
    second Ctrl-C ends the process at once.
    """
    stop = _Stop(notify)
    with stop.installed():
        return execute(
            flow,
            params,
            stop.fetcher,
            wait=wait,
            notify=notify,
            progress=progress,
            stopping=stop.event,
        )


class _Stop:
    def __init__(self, notify: Callable[[str], None] | None) -> None:
        self.event = threading.Event()
        self.notify = notify
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.event.is_set():
            os._exit(130)  # the second Ctrl-C: at once (committed data is whole; nothing else is kept)
        self.event.set()
        if self.notify is not None:
            self.notify("stopping after the write in progress (Ctrl-C again to quit at once)")
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def fetcher(
        self,
        target: Target,
        work: list[list[Job]],
        run: Run,
        now: datetime | None,
        summary: Summary,
        progress: Progress | None,
    ) -> None:
        total = sum(len(b) for b in work)
        count = [0]

        def done(job: Job) -> None:
            count[0] += 1
            if progress is not None:
                progress(count[0], total, job.describe())

        async def main() -> None:
            self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
            if self.event.is_set():
                raise Interrupted
            wh = target.lake()
            async with KiwoomClient(target.settings()) as client:
                if progress is not None:  # read on the bar's timer: moves with each request sent
                    progress.follow(lambda: (client.stats.requests, summary.rows.total()))
                try:
                    # on the way out (the end, Ctrl-C, an abort) the queued chunks are committed
                    async with Committer(wh, run, settled(summary, done)) as committer:
                        await run_batches(work, lambda batch: fetch_jobs(client, wh, batch, committer, now))
                finally:
                    summary.add_stats(client.stats)

        if progress is not None:
            progress(0, total, "starting")
        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            raise Interrupted from None
        except BaseExceptionGroup as group:
            first = group.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        finally:
            self._loop = self._task = None
        if self.event.is_set():
            raise Interrupted
