"""The streaming worker: realtime 0B/0D frames into the warehouse, durable before fast.

``run_stream`` is a plain async function (``kwh stream`` and the Prefect
deployment call it):

1. open the tick log beside the lake (a torn tail is cut, with a warning) and
   commit whatever it holds that the lake has not (replay after a crash);
2. connect the realtime session and subscribe; the time the worker was not
   running during today's session becomes a gap record;
3. append every frame the session yields, and every gap it reports, to the log
   (group-committed with fsync by the log's flusher, at most ~50 ms apart);
4. a committer reads the log (never the socket) and commits micro-batches with
   their log position in one transaction (``warehouse.stream_commit``): a decoder
   thread prepares the next batch while a commit thread commits the last one, and merges
   the day's small files between commits every ``merge_every`` seconds, and expires the
   session's snapshots older than 10 minutes once a minute (``flows.stream_threads``);
5. on ``until``, SIGINT or SIGTERM: close the session, fsync, commit the rest,
   merge the day's small files, record the run, and return a summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from connectors import Gap, RawFrame, RealtimeSession, Settings
from flows.stream_threads import CommitLoop, Merges
from schemas.calendar import KST, is_trading_day
from warehouse import Run, Warehouse
from warehouse.stream_commit import StreamCommitter, gap_record
from warehouse.ticklog import TickLog

__all__ = ["StreamConfig", "StreamSummary", "log_folder", "run_stream", "stream_status", "write_status"]

log = logging.getLogger(__name__)
SESSION_OPEN = (9, 0)
SESSION_CLOSE = (15, 30)
STREAM_TABLES = ("stock_trades", "stock_orderbook")


@dataclass
class StreamConfig:
    symbols: Sequence[str]
    types: Sequence[str] = ("0B", "0D")
    until: datetime | None = None  # stop at this time (aware)
    stream: str = "realtime"  # the stream's name in meta.stream_positions
    log_dir: Path | None = None  # default: <lake>/stream/<stream>
    commit_interval: float = 0.25  # seconds between commits when frames keep coming
    merge_every: float = 5.0  # seconds between merges of the day's small files (0: at the end only)
    day: date | None = None  # a replayed session's date (the simulator's replay mode)


@dataclass
class StreamSummary:
    run_id: str
    status: str = "running"
    error: str | None = None
    seconds: float = 0.0
    replayed: int = 0  # log records committed at start, left by an earlier run
    session: dict[str, Any] = field(default_factory=dict)
    committer: dict[str, Any] = field(default_factory=dict)
    log_records: int = 0
    log_lag: int = 0  # records appended but not committed when the summary was taken
    torn_tail: str | None = None
    compacted: dict[str, int] = field(default_factory=dict)
    merges: dict[str, Any] = field(default_factory=dict)  # the merges of small files during the run

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def log_folder(wh: Warehouse, stream: str) -> Path:
    """Where a stream's tick log lives: beside the lake's files."""
    return Path(wh.config.root) / "stream" / stream


def _close_days(wh: Warehouse, run: Run) -> dict[str, int]:
    """The days this run wrote, each rewritten sorted by symbol and time; then small files merged.

    The compaction expires snapshots and deletes files older than a week only (the worker expired
    its own older snapshots as it went: ``Merges``), so a reader's open snapshot is never cut off.
    """
    sorted_rows = 0
    for name in STREAM_TABLES:
        if name in wh.tables():
            days = wh.sql(f"SELECT DISTINCT date FROM {name} WHERE run_id = ?", [run.id])["date"]
            sorted_rows += sum(wh.sort_day(name, d) for d in days)
    return {"rows_sorted": sorted_rows, **wh.compact(timedelta(days=7))}


def _last_stored(wh: Warehouse, day: date, column: str) -> datetime | None:
    last = None
    for name in ("stock_trades", "stock_orderbook"):
        if name in wh.tables():
            got = wh.sql(f"SELECT max({column}) AS t FROM {name} WHERE date = ?", [day])["t"][0]
            last = got if last is None or (got is not None and got > last) else last
    return last


def _restart_gap(wh: Warehouse, now: datetime, day: date | None) -> tuple[datetime, datetime | None] | None:
    """The part of today's session nobody recorded before this start: (from, to), or None.

    Live: from the last frame stored today (or the open) to now. A replayed session
    (``day``) runs on the simulator's clock, not ours: from the last trade stored for
    that day, left open; the heal fills it from the tick chart.
    """
    if day is not None:
        last = _last_stored(wh, day, "ts")
        return (last, None) if last is not None else None
    today = now.astimezone(KST).date()
    if not is_trading_day(today):
        return None
    opened = datetime(today.year, today.month, today.day, *SESSION_OPEN, tzinfo=KST)
    closed = datetime(today.year, today.month, today.day, *SESSION_CLOSE, tzinfo=KST)
    if not opened < now <= closed + timedelta(minutes=10):
        return None
    last = _last_stored(wh, today, "received_at")
    start = max(last, opened) if last is not None else opened
    return (start, now) if (now - start) > timedelta(seconds=2) else None


async def run_stream(
    settings: Settings,
    wh: Warehouse,
    cfg: StreamConfig,
    *,
    stop: asyncio.Event | None = None,
    session: RealtimeSession | None = None,
    progress: Callable[[StreamSummary], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(KST),
) -> StreamSummary:
    """Stream ``cfg.symbols`` into ``wh`` until ``cfg.until`` or ``stop``; see the module's docstring."""
    started = time.monotonic()
    run = Run.new("stream")
    summary = StreamSummary(run.id)
    stop = stop or asyncio.Event()
    folder = cfg.log_dir or log_folder(wh, cfg.stream)
    wh.record_run(run, "running", {"symbols": len(cfg.symbols), "types": list(cfg.types)})
    with TickLog(folder) as tick_log:
        if tick_log.recovered is not None:
            summary.torn_tail = str(tick_log.recovered)
        committer = StreamCommitter(wh, tick_log, cfg.stream, run, day=cfg.day)
        summary.replayed = await asyncio.to_thread(committer.drain)
        merges = Merges(wh, STREAM_TABLES, cfg.merge_every)
        loop = CommitLoop(committer, cfg.commit_interval, merges)
        loop.start()
        rt = session or RealtimeSession(settings)
        try:
            await _receive(rt, tick_log, wh, cfg, stop, summary, loop, progress, clock)
            summary.status = "completed"
        except Exception as exc:
            summary.status, summary.error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("stream stopped: %s", summary.error)
        finally:
            with contextlib.suppress(Exception):
                await rt.close()
            summary.session = rt.stats.as_dict()
            tick_log.sync()
            loop.halt.set()
            await asyncio.to_thread(loop.join)
            summary.merges = merges.stats()
            if loop.error is not None and summary.error is None:
                summary.status, summary.error = "failed", f"commit: {type(loop.error).__name__}: {loop.error}"
            await asyncio.to_thread(committer.drain)  # everything that reached the log
            if committer.stats.commits:
                summary.compacted = await asyncio.to_thread(_close_days, wh, run)
            summary.log_records = tick_log.next_seq
            summary.log_lag = tick_log.next_seq - committer.next_seq
            summary.committer = committer.stats.as_dict()
            summary.seconds = round(time.monotonic() - started, 3)
            wh.record_run(run, summary.status, summary.as_dict())
            write_status(folder, summary)  # what `kwh status` shows of a stopped stream
    return summary


async def _receive(
    rt: RealtimeSession,
    tick_log: TickLog,
    wh: Warehouse,
    cfg: StreamConfig,
    stop: asyncio.Event,
    summary: StreamSummary,
    loop: CommitLoop,
    progress: Callable[[StreamSummary], None] | None,
    clock: Callable[[], datetime],
) -> None:
    symbols = list(cfg.symbols)
    await rt.start()
    await rt.subscribe(symbols, list(cfg.types))
    missed = _restart_gap(wh, clock(), cfg.day)
    if missed is not None:
        start, end = missed
        tick_log.append(
            gap_record(_ns(start), _ns(end) if end else None, "worker not running", symbols), time.time_ns()
        )
    watcher = asyncio.create_task(_watch(rt, stop, cfg.until, loop, clock))
    last_report = 0.0
    try:
        async for event in rt:
            if isinstance(event, RawFrame):
                data = event.data.encode() if isinstance(event.data, str) else event.data
                tick_log.append(data, event.received_ns)
            elif isinstance(event, Gap):
                tick_log.append(
                    gap_record(event.start_ns, event.end_ns, event.reason, symbols), time.time_ns()
                )
            if progress is not None and time.monotonic() - last_report > 1.0:
                last_report = time.monotonic()
                summary.session = rt.stats.as_dict()
                summary.committer = loop.committer.stats.as_dict()
                summary.log_records = tick_log.next_seq
                summary.log_lag = tick_log.next_seq - loop.committer.next_seq
                progress(summary)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if loop.error is not None:
        raise RuntimeError(f"the committer failed: {loop.error}") from loop.error


def _ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1_000


async def _watch(
    rt: RealtimeSession,
    stop: asyncio.Event,
    until: datetime | None,
    loop: CommitLoop,
    clock: Callable[[], datetime],
) -> None:
    """Close the session on ``stop``, at ``until``, or when the committer fails."""
    while not stop.is_set() and loop.error is None and (until is None or clock() < until):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.2)
    await rt.close()


def write_status(folder: Path, summary: StreamSummary) -> None:
    """The running worker's counters, for ``kwh status`` (rewritten atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "status.json.tmp"
    tmp.write_text(json.dumps({**summary.as_dict(), "updated": datetime.now(KST).isoformat()}, default=str))
    tmp.replace(folder / "status.json")


def stream_status(wh: Warehouse) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per stream: committed position and, while a worker runs, its counters; unhealed gaps)."""
    rows = []
    positions = wh.stream_positions()
    for stream, segment, offset, _run, committed in positions.iter_rows():
        status_file = log_folder(wh, stream) / "status.json"
        live: dict[str, Any] = {}
        if status_file.exists():
            live = json.loads(status_file.read_text())
        updated = datetime.fromisoformat(live["updated"]) if "updated" in live else None
        running = (
            live.get("status") == "running"
            and updated is not None
            and (datetime.now(KST) - updated < timedelta(seconds=10))
        )
        session, committer = live.get("session", {}), live.get("committer", {})
        rows.append(
            {
                "stream": stream,
                "state": "running" if running else live.get("status", "stopped"),
                "committed_at": committed,
                "log_position": f"{segment}:{offset}",
                "frames": session.get("frames"),
                "entries": session.get("entries"),
                "reconnects": session.get("reconnects"),
                "log_lag": live.get("log_lag") if running else None,
                "commit_lag_s": committer.get("commit_lag_s") if running else None,
                "rows": json.dumps(committer.get("rows", {})) if committer else None,
            }
        )
    gaps = wh.stream_gaps().filter(pl.col("healed_run").is_null()) if positions.height else pl.DataFrame()
    return pl.DataFrame(rows), gaps
