"""Benchmark: the streaming worker (``flows.stream.run_stream``) against the simulator in load mode.

    .venv/bin/python bench/stream.py [--runs 3] [--seconds 60] [--latency-seconds 60] [--quick]
                                     [--items 20] [--per-frame 20] [--rate 10000] [--long SECONDS]

The simulator runs in its own process (``WsConfig(mode="load")``: the 2025-12-29
ticks of ``--items`` stocks as 0B+0D entries, ``--per-frame`` trades a REAL frame,
over and over, each pass adding the day's volume to the cumulative volume so that no trade
key repeats); a second one paces the same feed at ``--rate`` entries a second
(``WsConfig.load_rate``). Every measurement runs in a fresh child process, so the
worker shares its interpreter with neither the simulator nor this script. Each
run measures, after ``--warmup`` seconds:

1. socket: ``RealtimeSession`` reading and discarding (the ceiling of any consumer);
2. log: the session's frames appended to a ``TickLog`` (group commit, fsync every
   50 ms), as the worker does, without a committer: socket -> durable log;
3. worker: ``run_stream`` unpaced, for ``--seconds``: entries a second into the log
   and into committed rows (the committer's counters, sampled every second);
4. parse floors: the committer's decoder (``decode_realtime``, the stored fields) and
   ``normalize_realtime`` (every field) alone on the first ``--profile-records`` log
   records of run 2, in the committer's batches (its ``max_records``/``max_bytes``); and the
   committer alone (``StreamCommitter.drain`` over the same records into a fresh lake,
   no socket), timed per phase: decode, the log_seq/received join, row building,
   ``Warehouse.commit``, the rest (log reading, dedup);
5. latency: ``run_stream`` at a fixed offered load of ``--rate`` entries/s for
   ``--latency-seconds``: per entry, the moment ``Warehouse.commit`` returned minus
   the entry's receive time (``received_at``, taken by the session when the frame
   arrived). After that return the DuckLake snapshot is committed, so a reader
   that starts a query then sees the rows: this is receive -> queryable without a
   reader's polling interval added to it. RSS of the worker process is sampled
   every 0.5 s (peak = VmHWM) and its slope fitted over the second half of the run.

``--long SECONDS`` adds one paced run that long (the issue's 10 minutes: 600) for
memory: its RSS is reported once a minute. Each number reported is the median over
``--runs`` runs; ratios are against the socket alone and the parse floor measured in the same run. Writes
``bench/results/stream.md`` (``--quick``: a short run that only prints, unless
``--out`` is given).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, this file's folder is first on sys.path and bench/warehouse.py hides the package.
# (Not ``import _common`` as the other scripts: the spawned children get the path without bench/.)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

DAY = date(2025, 12, 29)
TYPES = ["0B", "0D"]
BATCH = 20_000  # StreamCommitter's max_records
MAX_BYTES = 64 << 20  # and its max_bytes

# --------------------------------------------------------------------------- helpers (child side)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class _RssSampler(threading.Thread):
    def __init__(self, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.every, self.samples = every, []  # type: ignore[var-annotated]
        self.t0 = time.perf_counter()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.samples.append((time.perf_counter() - self.t0, _status_kb("VmRSS") / 1024))


class _Timer:
    """Accumulated seconds and calls of wrapped functions."""

    def __init__(self) -> None:
        self.s: dict[str, float] = {}
        self.n: dict[str, int] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.s[name] = self.s.get(name, 0.0) + time.perf_counter() - t
                self.n[name] = self.n.get(name, 0) + 1

        return timed


_LAT_BINS = 120_000  # ms


def _quantile_ms(hist: Any, q: float) -> float:
    """The ``q`` quantile of a 1 ms latency histogram: the upper edge of the bin that reaches it."""
    total = int(hist.sum())
    if not total:
        return float("nan")
    return float(np.searchsorted(np.cumsum(hist), q * total, side="left") + 1)


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def _settings(url: str) -> Any:
    from connectors import Settings

    return Settings.load(base_url=url, env={}, env_file=None, token_cache=None)


def _items(n: int) -> list[str]:
    from simulator.universe import Universe

    return [s.code for s in Universe.default(300, 7).stocks[:n]]


def _serve(port: int, per_frame: int, rate: float) -> None:
    from simulator.app import SimConfig
    from simulator.server import serve
    from simulator.ws_feed import WsConfig

    ws = WsConfig(mode="load", replay_day=DAY, entries_per_frame=per_frame, ping_interval=30, load_rate=rate)
    serve(SimConfig(rate_limit=None, ws=ws), port=port)


# --------------------------------------------------------------------------- the measurements


def socket_only(url: str, items: int, warmup: float, seconds: float) -> dict[str, float]:
    """The session reading and discarding: entries/s."""
    from connectors import RealtimeSession

    async def go() -> dict[str, float]:
        async with RealtimeSession(_settings(url)) as rt:
            await rt.subscribe(_items(items), TYPES)
            t0 = time.perf_counter()
            async for _ in rt:
                if time.perf_counter() - t0 >= warmup:
                    break
            start, e0, b0 = time.perf_counter(), rt.stats.entries, rt.stats.bytes
            async for _ in rt:
                if time.perf_counter() - start >= seconds:
                    break
            took = time.perf_counter() - start
            return {"entries_s": (rt.stats.entries - e0) / took, "mb_s": (rt.stats.bytes - b0) / took / 1e6}

    return asyncio.run(go())


def log_only(url: str, items: int, warmup: float, seconds: float, log_dir: str) -> dict[str, float]:
    """Socket -> ``TickLog.append`` (the worker's receive loop without a committer): durable entries/s."""
    from connectors import RawFrame, RealtimeSession
    from warehouse.ticklog import TickLog

    timer = _Timer()
    os.fsync = timer.wrap("fsync", os.fsync)  # the log's flusher thread calls os.fsync

    async def go() -> dict[str, float]:
        with TickLog(log_dir) as tl:
            async with RealtimeSession(_settings(url)) as rt:
                await rt.subscribe(_items(items), TYPES)
                t0 = time.perf_counter()
                start = e0 = None
                async for ev in rt:
                    if isinstance(ev, RawFrame):
                        data = ev.data.encode() if isinstance(ev.data, str) else ev.data
                        tl.append(data, ev.received_ns)
                    now = time.perf_counter()
                    if start is None and now - t0 >= warmup:
                        start, e0 = now, rt.stats.entries
                        c0, s0 = timer.n.get("fsync", 0), timer.s.get("fsync", 0)
                    elif start is not None and now - start >= seconds:
                        break
                entries = rt.stats.entries - e0
                tl.sync()  # everything appended is durable
                took = time.perf_counter() - start
            return {
                "entries_s": entries / took,
                "fsyncs_s": (timer.n.get("fsync", 0) - c0) / took,
                "fsync_ms": 1000 * (timer.s.get("fsync", 0) - s0) / max(1, timer.n.get("fsync", 0) - c0),
                "records": tl.next_seq,
            }

    return asyncio.run(go())


def committer_alone(log_dir: str, lake: str, records: int) -> dict[str, Any]:
    """The parse floors and the committer alone on the first ``records`` records of a filled log."""
    import warehouse.commit as commit_mod
    import warehouse.store as store
    import warehouse.stream_commit as sc
    import warehouse.writer as writer
    from schemas.realtime import normalize_realtime
    from schemas.realtime_fast import decode_realtime
    from warehouse import Run, Warehouse, dataset
    from warehouse.stream_datasets import SOURCE_COLUMNS
    from warehouse.ticklog import TickLog, read_records

    recs = []
    for rec in read_records(log_dir):
        recs.append(rec)
        if len(recs) >= records:
            break
    stop = recs[-1].next
    # the committer's batches: up to BATCH records and MAX_BYTES of frames
    batches, size = [[]], 0  # type: ignore[var-annotated]
    for rec in recs:
        if len(batches[-1]) >= BATCH or size >= MAX_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(rec)
        size += len(rec.payload)
    # the parse floors: the decoder the committer uses (stored fields), and normalize_realtime (all)
    floors = {}
    for name, fn in (
        ("decode", lambda p, q: decode_realtime(p, columns=SOURCE_COLUMNS, seqs=q, day=DAY)),
        ("normalize", lambda p, q: normalize_realtime(p, seqs=q, day=DAY)),
    ):
        entries, took, cpu = 0, 0.0, 0.0
        for part in batches:
            t, c = time.perf_counter(), time.process_time()
            out = fn([r.payload for r in part], [r.seq for r in part])
            took += time.perf_counter() - t
            cpu += time.process_time() - c
            entries += sum(f.height for f in out.values())
        floors[name] = entries / took
        floors[f"{name}_cpu"] = entries / cpu  # per CPU-second of the process (all its threads)
        del out
    payload_mb = sum(len(r.payload) for r in recs) / 1e6
    del recs, batches
    # the committer, phase by phase
    timer = _Timer()
    sc.decode_realtime = timer.wrap("decode", sc.decode_realtime)
    sc._DATASET = {k: (name, timer.wrap("rows", fn)) for k, (name, fn) in sc._DATASET.items()}
    orig_nb = sc.StreamCommitter._normalize_batch
    sc.StreamCommitter._normalize_batch = timer.wrap("decode+join", orig_nb)  # type: ignore[method-assign]
    orig_commit = Warehouse.commit
    Warehouse.commit = timer.wrap("commit", orig_commit)  # type: ignore[method-assign]
    # inside the commit: conform + sort to Arrow, the DELETE of the batch's keys, the INSERT
    store.prepare = timer.wrap("commit: prepare", store.prepare)
    writer._delete_keys = timer.wrap("commit: delete keys", writer._delete_keys)
    commit_mod.put_rows = timer.wrap("commit: delete+insert", commit_mod.put_rows)
    try:
        with Warehouse(warehouse=lake) as wh, TickLog(log_dir, sync_interval=None) as tl:
            for name in ("stock_trades", "stock_orderbook"):
                wh.ensure(dataset(name))  # not timed: the first commit would create them
            committer = sc.StreamCommitter(wh, tl, "bench", Run.new("bench"), day=DAY)
            t, c = time.perf_counter(), time.process_time()
            committer.drain(stop)
            total = time.perf_counter() - t
            cpu = time.process_time() - c
            stats = committer.stats
            rows = wh.sql("SELECT count(*) AS n FROM stock_orderbook")["n"][0]
    finally:
        sc.StreamCommitter._normalize_batch = orig_nb  # type: ignore[method-assign]
        Warehouse.commit = orig_commit  # type: ignore[method-assign]
    s = timer.s
    phases = {
        "decode": s["decode"],
        "join": s["decode+join"] - s["decode"],
        "rows": s["rows"],
        "commit": s["commit"],
        "rest": total - s["decode+join"] - s["rows"] - s["commit"],
    }
    inside = {
        "prepare (conform, sort, to Arrow)": s["commit: prepare"],
        "keyed DELETE (trades at or under a stored key only)": s.get("commit: delete keys", 0.0),
        "INSERT (Parquet file)": s["commit: delete+insert"] - s.get("commit: delete keys", 0.0),
        "ledger, position, catalog COMMIT": s["commit"] - s["commit: prepare"] - s["commit: delete+insert"],
    }
    return {
        "parse_entries_s": floors["decode"],
        "normalize_entries_s": floors["normalize"],
        "entries": stats.entries,
        "payload_mb": payload_mb,
        "committer_entries_s": stats.entries / total,
        "parse_cpu_entries_s": floors["decode_cpu"],
        "normalize_cpu_entries_s": floors["normalize_cpu"],
        "committer_cpu_entries_s": stats.entries / cpu,
        "commits": stats.commits,
        "commit_ms": 1000 * s["commit"] / max(1, timer.n["commit"]),
        "phases": phases,
        "inside": inside,
        "total": total,
        "book_rows": int(rows),
    }


def worker(
    url: str,
    items: int,
    warmup: float,
    seconds: float,
    root: str,
    *,
    latency: bool,
) -> dict[str, Any]:
    """``run_stream`` for ``warmup + seconds``: rates into the log and into committed rows, per-entry
    commit latency, RSS. Returns without the graceful stop's drain (an unpaced run's backlog)."""

    from flows import stream_threads
    from flows.stream import StreamConfig, run_stream
    from warehouse import Warehouse

    # per-entry latency in 1 ms bins up to _LAT_BINS ms (the last bin holds the rest), counted from the
    # first commit after the warm-up: a fixed array, so measuring does not grow the worker's memory
    hist = np.zeros(_LAT_BINS, dtype=np.int64)
    by_minute: dict[int, float] = {}  # minute after the warm-up: the worst latency of its commits
    t0 = time.perf_counter()
    orig_commit = Warehouse.commit

    def commit(self: Any, c: Any) -> Any:
        result = orig_commit(self, c)
        done_us = time.time_ns() // 1000
        at = time.perf_counter() - t0
        if at < warmup:
            return result
        for r in c.rows:
            if "received_at" in r.frame.columns and r.frame.height:
                ms = (done_us - r.frame["received_at"].dt.epoch("us").to_numpy()) / 1000.0
                minute = int((at - warmup) // 60)
                by_minute[minute] = max(by_minute.get(minute, 0.0), float(ms.max()))
                hist[:] += np.bincount(np.clip(ms, 0, _LAT_BINS - 1).astype(np.int64), minlength=_LAT_BINS)
        return result

    Warehouse.commit = commit  # type: ignore[method-assign]
    merges: list[Any] = []
    orig_merges_init = stream_threads.Merges.__init__

    def merges_init(self: Any, *a: Any, **kw: Any) -> None:
        orig_merges_init(self, *a, **kw)
        merges.append(self)

    stream_threads.Merges.__init__ = merges_init  # type: ignore[method-assign]
    samples: list[tuple[float, int, int, int, int, float]] = []
    rss = _RssSampler()
    rss.t0 = t0
    rss.start()

    def progress(s: Any) -> None:
        samples.append(
            (
                time.perf_counter() - t0,
                s.session.get("entries", 0),
                s.log_records,
                s.committer.get("entries", 0),
                s.committer.get("commits", 0),
                time.process_time(),
            )
        )

    async def go() -> None:
        stop = asyncio.Event()
        cfg = StreamConfig(_items(items), TYPES, day=DAY, log_dir=Path(root) / "log")
        wh = Warehouse(warehouse=Path(root) / "lake")
        task = asyncio.create_task(run_stream(_settings(url), wh, cfg, stop=stop, progress=progress))
        await asyncio.sleep(warmup + seconds)
        if task.done():
            raise RuntimeError(f"the worker stopped: {task.result()}")

    # not asyncio.run: its cancelling of the worker would run the graceful stop, whose drain of a
    # backlog is not part of the measurement (the child exits without it)
    asyncio.new_event_loop().run_until_complete(go())
    end = time.perf_counter() - t0
    rss.halt.set()

    def at(when: float) -> tuple[float, int, int, int, int, float]:
        return min(samples, key=lambda x: abs(x[0] - when))

    a, b = at(warmup), at(end)
    took = b[0] - a[0]
    committed = (b[3] - a[3]) / took
    # commits of a backlog are big and seconds apart: rate between the first and the last commit seen
    # in the window (sampled each second), not over the window's edges
    steps = [x for prev, x in pairwise(samples) if x[4] > prev[4] and x[0] >= warmup]
    if len(steps) >= 3:
        committed = (steps[-1][3] - steps[0][3]) / (steps[-1][0] - steps[0][0])
    out: dict[str, Any] = {
        "log_entries_s": (b[1] - a[1]) / took,
        "committed_entries_s": committed,
        "commits_in_window": len(steps),
        "commits_s": (b[4] - a[4]) / took,
        "log_records": b[2],
        "rss_peak_mb": _status_kb("VmHWM") / 1024,
        # the merges of small files between commits (``flows.stream_threads.Merges``)
        **{f"merge_{k}": v for k, v in (merges[0].stats() if merges else {}).items() if k != "last_error"},
        "cpu_cores": (b[5] - a[5]) / took,  # the worker process's CPU use, in cores
        # entries received but not committed: flat when the committer keeps up with the offered load
        "backlog_start": a[1] - a[3],
        "backlog_end": b[1] - b[3],
        "backlog_growth_s": ((b[1] - b[3]) - (a[1] - a[3])) / took,
    }
    series = [(t, m) for t, m in rss.samples if t >= warmup]
    if series:
        half = [(t, m) for t, m in series if t >= (warmup + end) / 2] or series
        slope = _slope(half) * 60 if len(half) > 2 else 0.0
        out |= {
            "rss_start_mb": series[0][1],
            "rss_mid_mb": series[len(series) // 2][1],
            "rss_end_mb": series[-1][1],
            "rss_max_mb": max(m for _, m in series),
            "rss_slope_mb_min": float(slope),
            "rss_series": [(round(t - warmup), round(m)) for t, m in series[::120]],  # a minute apart
        }
    if latency:
        total = int(hist.sum())
        out |= {
            "p50_ms": _quantile_ms(hist, 0.5),
            "p99_ms": _quantile_ms(hist, 0.99),
            "max_ms": max(by_minute.values(), default=float("nan")),
            "latency_entries": total,
            "max_ms_by_minute": [round(by_minute[m]) for m in sorted(by_minute)],
        }
    return out


# --------------------------------------------------------------------------- parent side


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except BaseException as exc:  # reported to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
        os._exit(0)  # no graceful stop, no drain of an unpaced run's backlog


def in_child(fn: Callable[..., Any], *args: Any, timeout: float = 1800, **kwargs: Any) -> Any:
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(send, fn, args, kwargs))
    p.start()
    send.close()
    if not recv.poll(timeout):
        p.kill()
        raise RuntimeError(f"{fn.__name__}: no answer in {timeout:g} s")
    try:
        status, value = recv.recv()
    except EOFError:
        raise RuntimeError(f"{fn.__name__}: the child died (exit code {p.exitcode})") from None
    p.join(30)
    if status != "ok":
        raise RuntimeError(f"{fn.__name__}: {value}")
    return value


def _start_sim(port: int, per_frame: int, rate: float) -> Any:
    p = mp.get_context("spawn").Process(target=_serve, args=(port, per_frame, rate), daemon=True)
    p.start()
    return p


def _wait_up(url: str) -> None:
    import httpx

    for _ in range(200):
        try:
            httpx.get(url + "/_sim/ws", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"no simulator at {url}")


def med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds of each throughput run")
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--per-frame", type=int, default=20, help="trades per REAL frame (x2 entries)")
    parser.add_argument("--rate", type=float, default=10_000.0, help="offered entries/s of the latency run")
    parser.add_argument(
        "--sustain", type=float, default=50_000.0, help="offered entries/s of the sustained run (0: none)"
    )
    parser.add_argument("--profile-records", type=int, default=5_000, help="log records for the parse floor")
    parser.add_argument("--long", type=float, default=0.0, help="seconds of one extra paced run (memory)")
    parser.add_argument("--quick", action="store_true", help="1 run of 10 s each; prints only")
    parser.add_argument("--tmp", default=None, help="folder for logs and lakes (default: a temp folder)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds, args.latency_seconds, args.warmup = 1, 10.0, 10.0, 3.0
        args.profile_records = min(args.profile_records, 500)
    default = None if args.quick or not args.runs else str(Path(__file__).parent / "results" / "stream.md")
    out = args.out or default

    from simulator.server import free_port

    ports = free_port(), free_port(), free_port()
    rates = (0.0, args.rate, args.sustain)
    sims = [
        _start_sim(port, args.per_frame, rate)
        for port, rate in zip(ports, rates, strict=True)
        if rate or port == ports[0]
    ]
    fast, paced, sustained = (f"http://127.0.0.1:{p}" for p in ports)
    runs: list[dict[str, Any]] = []
    long_run: dict[str, Any] | None = None
    try:
        for url, rate in zip((fast, paced, sustained), rates, strict=True):
            if rate or url == fast:
                _wait_up(url)
        for i in range(args.runs):
            base = tempfile.mkdtemp(prefix="kwh-bench-stream-", dir=args.tmp)
            try:
                r: dict[str, Any] = {}
                r["socket"] = in_child(socket_only, fast, args.items, args.warmup, args.seconds)
                print(f"run {i + 1} socket: {r['socket']}", flush=True)
                r["log"] = in_child(log_only, fast, args.items, args.warmup, args.seconds, f"{base}/log")
                print(f"run {i + 1} log: {r['log']}", flush=True)
                r["alone"] = in_child(committer_alone, f"{base}/log", f"{base}/lake1", args.profile_records)
                print(f"run {i + 1} parse/committer: {r['alone']}", flush=True)
                shutil.rmtree(base)
                os.makedirs(base)
                r["worker"] = in_child(
                    worker, fast, args.items, args.warmup, args.seconds, base, latency=False
                )
                print(f"run {i + 1} worker: {r['worker']}", flush=True)
                shutil.rmtree(base)
                os.makedirs(base)
                secs = args.latency_seconds
                r["paced"] = in_child(worker, paced, args.items, args.warmup, secs, base, latency=True)
                print(f"run {i + 1} paced: {r['paced']}", flush=True)
                if args.sustain:
                    shutil.rmtree(base)
                    os.makedirs(base)
                    r["sustained"] = in_child(
                        worker, sustained, args.items, args.warmup, args.seconds, base, latency=False
                    )
                    print(f"run {i + 1} sustained: {r['sustained']}", flush=True)
                runs.append(r)
            finally:
                shutil.rmtree(base, ignore_errors=True)
        if args.long:
            base = tempfile.mkdtemp(prefix="kwh-bench-stream-", dir=args.tmp)
            try:
                long_run = in_child(
                    worker,
                    paced,
                    args.items,
                    args.warmup,
                    args.long,
                    base,
                    latency=True,
                    timeout=args.warmup + args.long + 600,
                )
                print(f"long paced run: {long_run}", flush=True)
            finally:
                shutil.rmtree(base, ignore_errors=True)
    finally:
        for p in sims:
            p.terminate()
            p.join()
    text = report(args, runs, long_run)
    print(text)
    if out:
        Path(out).write_text(text)
        print(f"written: {out}")


def report(args: argparse.Namespace, runs: list[dict[str, Any]], long_run: dict[str, Any] | None) -> str:
    def m(part: str, key: str) -> float:
        return statistics.median(r[part][key] for r in runs)

    def per_run(part: str, key: str, fmt: str = "{:,.0f}") -> str:
        return " / ".join(fmt.format(r[part][key]) for r in runs)

    if not runs:  # --runs 0: the long run alone
        return "\n".join(_header(args) + _long_lines(args, long_run)) + "\n"
    sock, parse = m("socket", "entries_s"), m("alone", "parse_entries_s")
    rows = [
        ("socket alone (session reads, discards)", "socket", "entries_s"),
        ("socket -> durable log (TickLog, fsync every 50 ms), no committer", "log", "entries_s"),
        ("worker: socket -> durable log, committer running", "worker", "log_entries_s"),
        ("worker: socket -> committed rows (sustained)", "worker", "committed_entries_s"),
        (
            "parse floor: decode_realtime (stored fields) alone, the committer's batches",
            "alone",
            "parse_entries_s",
        ),
        ("normalize_realtime (every field) alone, the same batches", "alone", "normalize_entries_s"),
        ("committer alone: log -> committed rows, no socket", "alone", "committer_entries_s"),
    ]
    lines = [
        *_header(args),
        "## Throughput (entries/s)",
        "",
        "| path | median | per run | vs socket | vs parse floor |",
        "|---|---|---|---|---|",
    ]
    for label, part, key in rows:
        v = m(part, key)
        lines.append(f"| {label} | {v:,.0f} | {per_run(part, key)} | {v / sock:.3f}x | {v / parse:.2f}x |")
    if args.sustain:
        lines += [
            "",
            f"Sustained: the simulator paced at {args.sustain:,.0f} entries/s offered "
            f"(`WsConfig(load_rate=...)`), {args.seconds:g} s measured after {args.warmup:g} s; the "
            "committer keeps up when what was received but not yet committed (the backlog) stays flat.",
            "",
            "| measure | median | per run |",
            "|---|---|---|",
        ]
        for label, key, fmt in [
            ("received entries/s", "log_entries_s", "{:,.0f}"),
            ("committed entries/s", "committed_entries_s", "{:,.0f}"),
            ("backlog at the start of the window (entries)", "backlog_start", "{:,.0f}"),
            ("backlog at the end (entries)", "backlog_end", "{:,.0f}"),
            ("backlog growth (entries/s)", "backlog_growth_s", "{:+,.0f}"),
            ("worker CPU (cores)", "cpu_cores", "{:.2f}"),
        ]:
            lines.append(
                f"| {label} | {fmt.format(m('sustained', key))} | {per_run('sustained', key, fmt)} |"
            )
    ph = {k: statistics.median(r["alone"]["phases"][k] for r in runs) for k in runs[0]["alone"]["phases"]}
    total = sum(ph.values())
    lines += [
        "",
        f"Log fsyncs: {m('log', 'fsyncs_s'):.1f}/s, {m('log', 'fsync_ms'):.1f} ms each (median).",
        "",
        "Entries per CPU-second of the measuring process (all its threads; less bent by the other jobs on "
        "the machine than the wall-clock rates):",
        "",
        "| path | median | per run |",
        "|---|---|---|",
    ]
    for label, key in [
        ("decode_realtime (stored fields)", "parse_cpu_entries_s"),
        ("normalize_realtime (every field)", "normalize_cpu_entries_s"),
        ("committer alone: log -> committed rows", "committer_cpu_entries_s"),
    ]:
        if all(key in r["alone"] for r in runs):
            lines.append(f"| {label} | {m('alone', key):,.0f} | {per_run('alone', key)} |")
    if all("cpu_cores" in r["worker"] for r in runs):
        lines.append(
            f"\nThe unpaced worker process used {m('worker', 'cpu_cores'):.2f} cores (per run "
            f"{per_run('worker', 'cpu_cores', '{:.2f}')}); the paced one {m('paced', 'cpu_cores'):.2f}."
        )
    lines += [
        "",
        "## Where the committer's time goes",
        "",
        f"The committer alone over the first {args.profile_records:,} log records "
        f"({m('alone', 'entries'):,.0f} entries, {m('alone', 'payload_mb'):,.0f} MB of frames), "
        f"{m('alone', 'commits'):.0f} commits of up to {BATCH:,} records or {MAX_BYTES >> 20} MB; median "
        "seconds per phase:",
        "",
        "| phase | s | share | us per entry |",
        "|---|---|---|---|",
    ]
    entries = m("alone", "entries")
    for k, v in ph.items():
        lines.append(f"| {k} | {v:.2f} | {v / total:.0%} | {1e6 * v / entries:.1f} |")
    inside = {k: statistics.median(r["alone"]["inside"][k] for r in runs) for k in runs[0]["alone"]["inside"]}
    lines += ["", "Inside the commit:", "", "| part | s | share of the commit |", "|---|---|---|"]
    for k, v in inside.items():
        lines.append(f"| {k} | {v:.2f} | {v / ph['commit']:.0%} |")
    lines += [
        "",
        "## Latency at a fixed offered load and memory",
        "",
        f"Offered load {args.rate:,.0f} entries/s (`WsConfig(load_rate=...)`), {args.latency_seconds:g} s "
        "measured; latency per entry = `Warehouse.commit` returned - `received_at`.",
        "",
        "| measure | median | per run |",
        "|---|---|---|",
    ]
    for label, key, fmt in [
        ("committed entries/s", "committed_entries_s", "{:,.0f}"),
        ("p50 receive -> queryable (ms)", "p50_ms", "{:,.0f}"),
        ("p99 receive -> queryable (ms)", "p99_ms", "{:,.0f}"),
        ("max (ms)", "max_ms", "{:,.0f}"),
        ("worker peak RSS (MB)", "rss_peak_mb", "{:,.0f}"),
        ("RSS slope, second half (MB/min)", "rss_slope_mb_min", "{:+.1f}"),
    ]:
        lines.append(f"| {label} | {fmt.format(m('paced', key))} | {per_run('paced', key, fmt)} |")
    lines += [
        "",
        f"Unpaced worker: peak RSS {m('worker', 'rss_peak_mb'):,.0f} MB (per run "
        f"{per_run('worker', 'rss_peak_mb')}), slope {m('worker', 'rss_slope_mb_min'):+.1f} MB/min.",
    ]
    lines += _long_lines(args, long_run)
    return "\n".join(lines) + "\n"


def _header(args: argparse.Namespace) -> list[str]:
    load = os.getloadavg()
    runs = (
        f"{args.runs} runs, {args.seconds:g} s measured"
        if args.runs
        else f"the long run alone, {args.long:g} s measured"
    )
    return [
        "# bench/stream.py",
        "",
        f"`{' '.join(['.venv/bin/python', 'bench/stream.py', *sys.argv[1:]])}`: {runs}"
        f" after {args.warmup:g} s warm-up; {args.items} stocks x 0B+0D, "
        f"{args.per_frame} trades ({2 * args.per_frame} entries) a REAL frame; the simulator in load "
        "mode in its own process on loopback. Python "
        f"{platform.python_version()}, {os.cpu_count()} cores shared with other jobs (load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end), {platform.machine()}.",
        "",
    ]


def _long_lines(args: argparse.Namespace, long_run: dict[str, Any] | None) -> list[str]:
    if not long_run:
        return []
    lr = {k: f"{v:,.0f}" for k, v in long_run.items() if isinstance(v, int | float)}
    return [
        "",
        f"Long paced run ({args.long:g} s): committed {lr['committed_entries_s']} entries/s, "
        f"p50 {lr['p50_ms']} ms, p99 {lr['p99_ms']} ms, max {lr['max_ms']} ms; RSS start "
        f"{lr['rss_start_mb']} MB, middle {lr['rss_mid_mb']} MB, end {lr['rss_end_mb']} MB, "
        f"peak {lr['rss_peak_mb']} MB, slope {long_run['rss_slope_mb_min']:+.1f} MB/min over the "
        f"second half; {lr.get('merge_merges', '0')} merges of small files between the commits "
        f"({lr.get('merge_files_merged', '0')} files; the longest "
        f"{long_run.get('merge_longest_s', 0):.2f} s).",
        "",
        "RSS over the long run (s after warm-up: MB): "
        + ", ".join(f"{t}: {mb:,}" for t, mb in long_run.get("rss_series", []))
        + "\n\nWorst receive -> queryable per minute (ms): "
        + ", ".join(f"{ms:,}" for ms in long_run.get("max_ms_by_minute", [])),
    ]


if __name__ == "__main__":
    main()
