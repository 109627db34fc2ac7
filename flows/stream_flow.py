"""The Prefect flow ``stream``: the streaming worker (``flows.stream.run_stream``) as a deployment.

A thin wrapper: it resolves the symbols, runs ``run_stream`` in this process
until ``until`` (it records its own row in ``meta.runs``), leaves the summary
as a Prefect table artifact and fails the flow run when the summary is not
"completed".

Cancellation. Prefect cancels a running flow run of a process worker by
sending the flow's process SIGTERM (then SIGKILL after a 30 s grace); the
engine's SIGTERM handler raises ``TerminationSignal`` in the main thread. The
worker therefore runs in a thread of its own with its own event loop, and the
main thread only waits for it: the signal lands in that wait, which asks
``run_stream`` to stop (the same graceful stop as Ctrl-C on ``kwh stream``:
close the session, fsync, commit what the log holds, record the run), waits up
to ``STOP_GRACE`` seconds for it, and re-raises the signal so Prefect records
the run as Cancelled (a cancel from the UI, API or CLI) or Crashed (a bare
SIGTERM). Prefect's ``on_cancellation`` hooks run only after that signal has
been handled (in the engine, or in the worker's process once the flow's
process is gone): too late to stop anything, so none is used.
A SIGKILL cannot be caught: the durable log is replayed by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time as clock
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.exceptions import TerminationSignal

from connectors import RealtimeSession, RetryPolicy, Settings
from flows.stream import StreamConfig, StreamSummary, log_folder, run_stream, write_status
from flows.symbols import resolve_symbols
from schemas.calendar import KST
from warehouse import Warehouse, dataset

__all__ = ["STOP_GRACE", "parse_until", "stream"]

TYPES = ("0B", "0D")
STOP_GRACE = 25.0  # seconds to stop cleanly after SIGTERM (Prefect kills after 30)
MAX_RECONNECTS = 30  # reconnect attempts in a row before the session gives up (as `kwh stream`)
LOG_EVERY = 60.0  # seconds between progress lines in the flow run's log


def parse_until(text: str, now: datetime) -> datetime:
    """``HH:MM`` (today in Korea) or an ISO time stamp (naive means Korea); it must lie ahead of ``now``."""
    try:
        if len(text.strip()) <= 5:
            at = datetime.combine(now.astimezone(KST).date(), time.fromisoformat(text.strip()), KST)
        else:
            at = datetime.fromisoformat(text.strip())
            at = at if at.tzinfo else at.replace(tzinfo=KST)
    except ValueError:
        raise ValueError(f"until {text!r} is neither HH:MM nor an ISO time stamp") from None
    if at <= now:
        raise ValueError(f"until {text} is already past ({now.astimezone(KST):%Y-%m-%d %H:%M:%S} in Korea)")
    return at


def _types(types: str | Sequence[str]) -> tuple[str, ...]:
    items = types.split(",") if isinstance(types, str) else list(types)
    wanted = tuple(dict.fromkeys(t.strip() for t in items if t.strip()))
    unknown = [t for t in wanted if t not in TYPES]
    if unknown or not wanted:
        raise ValueError(f"types {types!r}: the worker stores {', '.join(TYPES)}")
    return wanted


class _Worker(threading.Thread):
    """``run_stream`` on an event loop of its own; ``stop()`` asks it to stop from any thread.

    (Attribute names stay clear of ``threading.Thread``'s private ones such as ``_stop``.)"""

    def __init__(self, settings: Settings, wh: Warehouse, cfg: StreamConfig) -> None:
        super().__init__(name="stream-worker", daemon=True)
        self.settings, self.wh, self.cfg = settings, wh, cfg
        self.summary: StreamSummary | None = None
        self.error: BaseException | None = None
        self._loop_ready = threading.Event()
        self._done = threading.Event()  # waited on instead of join(): see wait()
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._halt: asyncio.Event | None = None
        self._last_log = clock.monotonic()
        self.logger = get_run_logger()

    def run(self) -> None:
        try:
            self.summary = asyncio.run(self._main())
        except BaseException as exc:  # reported by the flow
            self.error = exc
        finally:
            self._loop_ready.set()
            self._done.set()

    async def _main(self) -> StreamSummary:
        self._event_loop, self._halt = asyncio.get_running_loop(), asyncio.Event()
        self._loop_ready.set()
        session = RealtimeSession(
            self.settings, retry=RetryPolicy.from_settings(self.settings, max_retries=MAX_RECONNECTS)
        )
        folder = log_folder(self.wh, self.cfg.stream)
        summary = await run_stream(
            self.settings, self.wh, self.cfg, stop=self._halt, session=session, progress=self._progress
        )
        write_status(folder, summary)
        return summary

    def _progress(self, summary: StreamSummary) -> None:
        write_status(log_folder(self.wh, self.cfg.stream), summary)  # for `kwh status`
        if clock.monotonic() - self._last_log >= LOG_EVERY:
            self._last_log = clock.monotonic()
            s, c = summary.session, summary.committer
            self.logger.info(
                "streaming: %s entries received, %s log records, rows %s, %s reconnects",
                s.get("entries", 0),
                summary.log_records,
                c.get("rows", {}),
                s.get("reconnects", 0),
            )

    def stop(self) -> None:
        self._loop_ready.wait(5)
        if self._event_loop is not None and self._halt is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended: nothing to stop
                self._event_loop.call_soon_threadsafe(self._halt.set)

    def wait(self) -> None:
        """Until the worker ends. A signal (Prefect's SIGTERM bridge, Ctrl-C) is raised here, in the
        main thread: stop the worker cleanly, give it ``STOP_GRACE`` seconds, then re-raise.

        Not ``join()``: on Python 3.11 a ``join`` interrupted by a signal marks the thread as
        stopped (``_wait_for_tstate_lock`` releases the running thread's lock), so every later
        ``join`` returns at once; an ``Event`` survives the interruption."""
        try:
            while not self._done.wait(0.5):
                pass
        except BaseException:
            self.logger.warning("stop requested: committing what the log holds, then stopping")
            self.stop()
            self._finish(clock.monotonic() + STOP_GRACE)
            if self.summary is not None:
                _artifact(self.summary, len(self.cfg.symbols))
            raise

    def _finish(self, deadline: float) -> None:
        """Wait for the worker until ``deadline``. A later SIGTERM (the runner signals the flow's
        whole process group) does not cut the clean stop short; a second Ctrl-C does, and the
        SIGKILL after Prefect's grace ends everything (the log is durable, a restart replays)."""
        while not self._done.is_set() and clock.monotonic() < deadline:
            try:
                self._done.wait(min(0.5, max(deadline - clock.monotonic(), 0.0)))
            except TerminationSignal:
                continue


def _artifact(summary: StreamSummary, symbols: int) -> None:
    s, c = summary.session, summary.committer
    rows: list[dict[str, Any]] = [{"metric": "status", "value": summary.status}]
    rows += [{"metric": f"rows {name}", "value": n} for name, n in sorted(c.get("rows", {}).items())]
    rows += [
        {"metric": "symbols", "value": symbols},
        {"metric": "frames", "value": s.get("frames", 0)},
        {"metric": "entries", "value": s.get("entries", 0)},
        {"metric": "bytes", "value": s.get("bytes", 0)},
        {"metric": "reconnects", "value": s.get("reconnects", 0)},
        {"metric": "log records", "value": summary.log_records},
        {"metric": "replayed at start", "value": summary.replayed},
        {"metric": "commits", "value": c.get("commits", 0)},
        {"metric": "gap rows", "value": c.get("gaps", 0)},
        {"metric": "rejected frames", "value": c.get("rejected", 0)},
        {"metric": "duplicate trades", "value": c.get("duplicates", 0)},
        {"metric": "seconds", "value": summary.seconds},
    ]
    if summary.torn_tail:
        rows.append({"metric": "torn tail cut", "value": summary.torn_tail})
    if summary.error:
        rows.append({"metric": "error", "value": summary.error})
    try:
        create_table_artifact(
            key="stream-summary",
            table=rows,
            description=f"stream: run {summary.run_id}, {summary.status}",
        )
    except Exception as exc:
        get_run_logger().warning("could not create the summary artifact: %s", exc)


@flow(name="stream", log_prints=True)
def stream(
    symbols: list[str] | str = "kospi",
    types: list[str] | str = list(TYPES),  # noqa: B006 - Prefect parameters are values
    until: str = "15:40",
    day: str | None = None,
    base_url: str | None = None,
    host: str | None = None,
    warehouse: str | None = None,
) -> dict[str, Any]:
    """Record realtime trades (0B) and order book (0D) of ``symbols`` into the warehouse until ``until``.

    ``until`` is HH:MM in Korea (today) or an ISO time stamp; ``day`` is the session date of a
    replayed session (the simulator's replay mode). The run fails unless the worker completed.
    """
    logger = get_run_logger()
    wanted = _types(types)
    replay = date.fromisoformat(day) if day else None
    stop_at = parse_until(until, datetime.now(KST))
    settings = Settings.load(base_url=base_url, host=host)
    with Warehouse(warehouse=warehouse) as wh:
        codes = resolve_symbols(wh, dataset("stock_trades"), symbols)
        cfg = StreamConfig(codes, wanted, stop_at, day=replay)
        logger.info(
            "streaming %d symbols x %s into %s until %s",
            len(codes),
            ", ".join(wanted),
            wh.config.root,
            stop_at.isoformat(),
        )
        worker = _Worker(settings, wh, cfg)
        worker.start()
        worker.wait()
    if worker.summary is None:
        raise RuntimeError(f"the streaming worker did not finish: {worker.error!r}") from worker.error
    summary = worker.summary
    _artifact(summary, len(codes))
    if summary.status != "completed":
        raise RuntimeError(f"stream {summary.status}: {summary.error}")
    return summary.as_dict()
