"""Benchmark: a 3-year daily-bar backfill as a user runs it, against the rate-limited simulator.

    .venv/bin/python bench/backfill.py [--runs 3] [--symbols 100] [--quick] [--no-trace]
                                       [--prefect-server] [--tmp DIR]

The simulator runs as a subprocess (``kwh sim --port <free> --rate 5 --stocks 300``) for the
whole benchmark. Each run starts from a fresh warehouse in ``--tmp``: ``kwh universe`` fills
the stock list (not timed), the simulator's counters are reset (``POST /_sim/reset``), then

    kwh backfill --dataset stock_bars_daily --symbols <codes> --start 2023-01-02 --end 2025-12-30
                 --base-url <simulator> --warehouse <fresh dir>

runs in a subprocess and is timed from spawn to exit (the whole command: Python start,
imports, Prefect's ephemeral server, the flow, shutdown). The flow's own duration is the
``seconds`` of its summary in ``meta.runs`` (the printed summary line says the same).

The ideal is the minimum number of pages / the rate: the pages are what the simulator served
for ka10081 in the run (``GET /_sim/stats``) and, computed independently, for each symbol
``floor(trading days in the window / rows per daily page) + 1`` (``schemas.calendar``,
``simulator.app.PAGE_SIZES``). The issue's target: the backfill within 10% of that.

Symbols: the first ``--symbols`` codes of ``stock_list`` (KOSPI and KOSDAQ, by code) listed
on or before ``--start``, so that every one has a bar on every trading day of the window, or
``--codes``. After each run the warehouse must hold exactly symbols x trading days rows, one per
(symbol, trading day) (checked, not timed).

Unless ``--no-trace``, one more run (not in the medians) runs the same command through this
file with timestamps taken in the process (limiter reservations, HTTP requests, warehouse
writes and lock waits, coverage checks, Prefect phases), to say where the time goes.

``--prefect-server`` also times ``--runs`` runs with ``PREFECT_API_URL`` pointing at a
``prefect server start`` launched beforehand (its own PREFECT_HOME in ``--tmp``): the command
without the ephemeral server's start and stop.

Writes ``bench/results/backfill.md`` (``--quick``: 10 symbols, 1 run, prints only unless
``--out`` is given). Scratch data in ``--tmp`` (default /tmp/bench_bf), removed at the end.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

# Run as a script, this file's folder is first on sys.path and bench/warehouse.py hides the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

ROOT = Path(__file__).resolve().parent.parent
KWH = Path(sys.executable).with_name("kwh")
DATASET, API_ID = "stock_bars_daily", "ka10081"
SUMMARY = re.compile(
    r"requests (\d+), pages (\d+), rejections (\d+), retries (\d+), errors (\d+), ([\d.]+) s"
)


# --------------------------------------------------------------------------- traced child
# ``python bench/backfill.py --trace-child FILE backfill ...`` runs ``kwh backfill ...`` in
# this process with timestamps around the functions below; the parent analyses FILE.


def _trace_child(out: str, argv: list[str]) -> None:
    mono = time.monotonic
    anchor = (time.time(), mono())
    ev: dict[str, list[Any]] = defaultdict(list)
    rec_lock = threading.Lock()

    def rec(kind: str, *values: Any) -> None:
        with rec_lock:
            ev[kind].append([threading.get_ident(), *values])

    # flows.run_cmds quiets Prefect's logging before prefect is imported, as `kwh` does
    from connectors import client as client_mod
    from connectors import ratelimit
    from flows import cli, ingest, pipeline, run_cmds
    from warehouse import store

    orig_reserve = ratelimit.RateLimiter.reserve
    reserve_lock = threading.Lock()

    def reserve(self: Any, api_id: str) -> float:
        with reserve_lock:  # reads the total tier's state around the reservation: one at a time
            bucket = self._total
            now, tat0 = self._clock(), bucket.tat if bucket else 0.0
            at = orig_reserve(self, api_id)
            interval = bucket.tat - at if bucket else 0.0
        rec("reserve", api_id, now, tat0, at, interval)
        return at

    ratelimit.RateLimiter.reserve = reserve  # type: ignore[method-assign]

    orig_once = client_mod.KiwoomClient._once

    async def once(self: Any, api_id: str, *args: Any) -> Any:
        t0 = mono()
        try:
            page = await orig_once(self, api_id, *args)
        except Exception as exc:
            rec("http", api_id, t0, mono(), type(exc).__name__)
            raise
        rec("http", api_id, t0, mono(), "ok")
        return page

    client_mod.KiwoomClient._once = once  # type: ignore[method-assign,assignment]

    class TracedRLock:
        """The warehouse's RLock, recording the wait and hold of each outermost acquisition."""

        def __init__(self) -> None:
            self._lock = threading.RLock()
            self._local = threading.local()

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            t0 = mono()
            ok = self._lock.acquire(blocking, timeout)
            if ok:
                depth = getattr(self._local, "depth", 0)
                if depth == 0:
                    names: list[
                        str
                    ] = []  # the locked method's name (from the _locked wrapper), then the callers
                    frame = sys._getframe(1)
                    while frame is not None and len(names) < 16:
                        method = frame.f_locals.get("method") if frame.f_code.co_name == "wrapper" else None
                        names.append(getattr(method, "__name__", frame.f_code.co_name))
                        frame = frame.f_back  # type: ignore[assignment]
                    self._local.t0, self._local.t1, self._local.names = t0, mono(), names
                self._local.depth = depth + 1
            return ok

        def release(self) -> None:
            self._local.depth -= 1
            if self._local.depth == 0:
                rec("lock", self._local.t0, self._local.t1, mono(), _lock_label(self._local.names))
            self._lock.release()

        def __enter__(self) -> bool:
            return self.acquire()

        def __exit__(self, *exc: object) -> None:
            self.release()

    orig_init = store.Warehouse.__init__

    def wh_init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_init(self, *args, **kwargs)
        self._lock = TracedRLock()

    store.Warehouse.__init__ = wh_init  # type: ignore[method-assign]

    def timed(module: Any, name: str, kind: str, extra: Any = None) -> None:
        fn = getattr(module, name)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = mono()
            out = fn(*args, **kwargs)
            rec(kind, t0, mono(), *(extra(args, out) if extra else ()))
            return out

        setattr(module, name, wrapper)

    def timed_async(module: Any, name: str, kind: str, extra: Any) -> None:
        fn = getattr(module, name)

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = mono()
            out = await fn(*args, **kwargs)
            rec(kind, t0, mono(), *extra(args, out))
            return out

        setattr(module, name, wrapper)

    timed(run_cmds, "_run_flow", "run_flow")
    timed(pipeline, "build_jobs", "build_jobs", lambda a, out: [len(out)])
    timed(pipeline, "_still_missing", "still_missing")
    timed(pipeline, "_finish", "finish", lambda a, out: [out["seconds"]])
    timed(ingest, "normalize_pages", "normalize", lambda a, out: [out.height])
    timed(store.Warehouse, "write", "write", lambda a, out: [out.rows])
    timed_async(pipeline, "_run_jobs", "batch", lambda a, out: [len(a[1])])
    timed_async(pipeline, "run_job", "job", lambda a, out: [a[2].symbol, out.pages, out.rows])

    def dump() -> None:
        with rec_lock:
            Path(out).write_text(json.dumps({"anchor": anchor, "exit": mono(), **ev}))

    atexit.register(dump)
    rec("ready", mono())
    sys.argv = ["kwh", *argv]
    cli.app()


def _lock_label(names: list[str]) -> str:
    """What held the warehouse lock, from the stack at its acquisition."""
    if "write" in names:
        return "write"
    if "_still_missing" in names:
        return "coverage check in the task"
    if "build_jobs" in names:
        return "planning"
    if "record_run" in names:
        return "ledger"
    return next((n for n in names if n not in ("__enter__", "acquire", "wrapper")), "?")


# --------------------------------------------------------------------------- the simulator


def _get(url: str, method: str = "GET") -> dict[str, Any]:
    req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return dict(json.loads(resp.read()))


class Sim:
    """``kwh sim`` in a subprocess on a free port."""

    def __init__(self, rate: float, stocks: int, log: Path) -> None:
        from simulator.server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rate, self.stocks = rate, stocks
        cmd = [str(KWH), "sim", "--port", str(self.port), "--rate", f"{rate:g}", "--stocks", str(stocks)]
        self._log = log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=log.parent)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.stats()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not start; see {log}") from None
                time.sleep(0.1)

    def stats(self) -> dict[str, Any]:
        return _get(f"{self.url}/_sim/stats")

    def reset(self) -> None:
        _get(f"{self.url}/_sim/reset", "POST")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class PrefectServer:
    """``prefect server start`` in a subprocess with its own PREFECT_HOME: a server already running."""

    def __init__(self, home: Path) -> None:
        from simulator.server import free_port

        port = free_port()
        self.env = {"PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
        env = os.environ | self.env | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL")
        self._log = (home.parent / "prefect-server.log").open("w")
        self.proc = subprocess.Popen(
            [str(KWH.with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home.parent,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.env['PREFECT_API_URL']}/health", timeout=5):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Prefect server did not start; see prefect-server.log") from None
                time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


# --------------------------------------------------------------------------- one run


def child_env(tmp: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the kwh commands: no KIWOOM_* of the caller's, the rate said aloud."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIWOOM_", "KWH_"))}
    env |= {"KIWOOM_RATE": "5", "KIWOOM_TOKEN_CACHE": str(tmp / "tokens"), "COLUMNS": "200"}
    return env | (extra or {})


def kwh(
    args: list[str], tmp: Path, trace: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, float, str]:
    """Run a kwh command from ``tmp`` (no .env there); (spawn wall time, exit wall time, seconds, output)."""
    cmd = [str(KWH), *args]
    if trace is not None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--trace-child", str(trace), *args]
    t_wall, t0 = time.time(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp, env=child_env(tmp, env), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"kwh {args[0]} exited {proc.returncode}:\n{out[-3000:]}")
    return t_wall, t_wall + seconds, seconds, out


def choose_symbols(lake: Path, n: int, start: date) -> tuple[list[str], dict[str, date], int]:
    """The first ``n`` KOSPI/KOSDAQ codes listed on or before ``start``; their listing days; codes skipped."""
    from warehouse import connect

    con = connect(read_only=True, warehouse=lake)
    try:
        rows = con.execute(
            "SELECT symbol, listing_date FROM stock_list WHERE mrkt_tp IN ('0', '10') ORDER BY symbol"
        ).fetchall()
    finally:
        con.close()
    listed = {code: day for code, day in rows}
    ok = [code for code, day in rows if day is not None and day <= start]
    if len(ok) < n:
        raise SystemExit(f"only {len(ok)} codes in stock_list listed on or before {start}")
    skipped = sum(1 for code, day in rows if code < ok[n - 1] and not (day is not None and day <= start))
    return ok[:n], listed, skipped


def page_rows() -> int:
    """Rows per ka10081 page in the simulator's default config (``kwh sim`` uses it)."""
    from simulator.app import PAGE_SIZES
    from simulator.rows import CHARTS

    return PAGE_SIZES[CHARTS[API_ID][1]]


def rejection_price(limit: float, second_after: int | None = None) -> tuple[float, int]:
    """Seconds a 1700 costs the flow at ``limit``/s, by ``connectors.ratelimit``'s own bucket arithmetic.

    The wasted slot, plus each following slot's excess interval while the rate recovers (one slot
    per success); ``second_after``: a second rejection after that many successes. Returns the
    seconds and the slots booked below the limit.
    """
    from connectors.ratelimit import RateLimits, _Bucket

    bucket = _Bucket("total", limit, RateLimits(total=limit))
    nominal = bucket.interval
    cost, slots = nominal, 0
    bucket.rejected()
    while bucket.rate < bucket.limit:
        cost += bucket.interval - nominal
        bucket.succeeded()
        slots += 1
        if slots == second_after:
            cost += nominal
            bucket.rejected()
    return cost, slots


def expected_pages(symbols: list[str], listed: dict[str, date], start: date, end: date) -> tuple[int, int]:
    """(pages, trading days) from the calendar and the simulator's daily page size, per symbol.

    The chart pages newest first from ``base_dt = end``; the client stops after the page whose
    oldest row is before ``start`` (or when the server has no more rows).
    """
    import inspect

    from schemas.calendar import trading_days
    from simulator.market import Market

    page = page_rows()
    epoch = inspect.signature(Market.__init__).parameters["epoch"].default
    days = len(trading_days(start, end))
    total = 0
    for code in symbols:
        first = max(epoch, listed.get(code, epoch))
        in_window = len(trading_days(max(start, first), end))
        older = first < start  # rows before the window exist: a page must reach one of them
        total += in_window // page + 1 if older else max(1, math.ceil(in_window / page))
    return total, days


def first_days(symbols: list[str], listed: dict[str, date], start: date) -> dict[str, date]:
    """Each symbol's first day with a bar in the window: the start, or its listing when later."""
    import inspect

    from simulator.market import Market

    epoch = inspect.signature(Market.__init__).parameters["epoch"].default
    return {code: max(start, epoch, listed.get(code, start)) for code in symbols}


def check_lake(lake: Path, first: dict[str, date], end: date) -> dict[str, Any]:
    """Exactly one bar per symbol and trading day from its first day to ``end``, nothing else."""
    from schemas.calendar import trading_days
    from warehouse import connect

    con = connect(read_only=True, warehouse=lake)
    try:
        rows, keys = con.execute(
            f"SELECT count(*), count(DISTINCT (symbol, date)) FROM {DATASET}"
        ).fetchone() or (0, 0)
        per_symbol = {
            sym: (n, lo, hi)
            for sym, n, lo, hi in con.execute(
                f"SELECT symbol, count(*), min(date), max(date) FROM {DATASET} GROUP BY symbol"
            ).fetchall()
        }
        dates = [r[0] for r in con.execute(f"SELECT DISTINCT date FROM {DATASET}").fetchall()]
        summary = con.execute(
            "SELECT summary FROM meta.runs WHERE flow = 'backfill' ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    days = {code: trading_days(day, end) for code, day in first.items()}
    want = sum(len(d) for d in days.values())
    problems = []
    if rows != want or keys != want:
        problems.append(f"{rows:,} rows ({keys:,} distinct keys), expected {want:,}")
    if set(per_symbol) != set(first):
        problems.append(f"{len(per_symbol)} symbols, expected {len(first)}")
    wrong = [c for c, d in days.items() if per_symbol.get(c) != (len(d), d[0], d[-1])]
    if wrong:
        problems.append(f"{len(wrong)} symbols lack or have extra days, e.g. {wrong[0]}")
    calendar = set(trading_days(min(first.values()), end))
    if not set(dates) <= calendar:
        problems.append("rows on days that are not trading days of the window")
    if problems:
        raise SystemExit(f"warehouse check failed in {lake}: " + "; ".join(problems))
    assert summary is not None, "no backfill run in meta.runs"
    return {"rows": rows, "summary": json.loads(summary[0])}


def run_once(
    args: argparse.Namespace,
    sim: Sim,
    tmp: Path,
    i: int,
    symbols: list[str],
    trace: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    lake = tmp / f"lake{i}"
    kwh(["universe", "--base-url", sim.url, "--warehouse", str(lake)], tmp, env=env)  # not timed
    sim.reset()
    backfill = [
        "backfill", "--dataset", DATASET, "--symbols", ",".join(symbols),
        "--start", str(args.start), "--end", str(args.end),
        "--base-url", sim.url, "--warehouse", str(lake),
    ]  # fmt: skip
    t_spawn, t_exit, seconds, out = kwh(backfill, tmp, trace, env)
    stats = sim.stats()
    printed = SUMMARY.search(out)
    if printed is None:
        raise RuntimeError(f"no summary line in the output of kwh backfill:\n{out[-3000:]}")
    checked = check_lake(lake, args.first_days, args.end)
    shutil.rmtree(lake)
    flow = checked["summary"]
    r: dict[str, Any] = {
        "command": seconds,
        "flow": float(flow["seconds"]),
        "printed": float(printed.group(6)),
        "served": stats.get("pages", 0),
        "tr_requests": stats.get(API_ID, 0),
        "rejections": stats.get("rejections", 0),
        "tokens": stats.get("au10001", 0),
        "tokens_issued": stats.get("tokens_issued", 0),
        "client_requests": flow["requests"],
        "retries": flow["retries"],
        "rows": checked["rows"],
        "t_spawn": t_spawn,
        "t_exit": t_exit,
    }
    if abs(r["printed"] - r["flow"]) > 0.051:
        raise SystemExit(f"printed summary {r['printed']} s, meta.runs {r['flow']} s")
    if stats.get("requests", 0) != r["tr_requests"] or r["served"] != flow["pages"]:
        raise SystemExit(f"the simulator's counters {stats} disagree with the flow's summary {flow}")
    return r


# --------------------------------------------------------------------------- the traced run


def analyse(trace: dict[str, Any], run: dict[str, Any], rate: float, margin: float) -> dict[str, Any]:
    """Where the seconds of the traced run went (times in the child's monotonic clock)."""
    wall0, mono0 = trace["anchor"]

    def at(wall: float) -> float:
        return wall - wall0 + mono0

    spawn, exit_ = at(run["t_spawn"]), at(run["t_exit"])
    ((_, rf0, rf1),) = trace["run_flow"]
    ((_, fin0, _, fin_seconds),) = trace["finish"]
    flow0 = fin0 - fin_seconds  # the flow body's own clock starts this long before _finish
    builds = trace["build_jobs"]
    plan0, plan1 = builds[-1][1], builds[-1][2]  # the flow's planning (the first call is the command's)
    # (slot time, time asked, idle gap before it, interval booked after it, thread)
    res = sorted((r[4], r[2], max(0.0, r[2] - r[3]), r[5], r[0]) for r in trace["reserve"] if r[1] == API_ID)
    http = sorted((h[2], h[3], h[4], h[0]) for h in trace["http"] if h[1] == API_ID)
    ok = [h for h in http if h[2] == "ok"]
    batches = sorted((b[1], b[2], b[0]) for b in trace["batch"])
    writes, locks, still = trace["write"], trace["lock"], trace.get("still_missing", [])
    nominal = 1.0 / (rate * (1.0 - margin))

    first_slot, last_slot = res[0][0], res[-1][0]
    last_answer = max(h[1] for h in ok)
    n_req, n_pages = len(res), len(ok)
    rejected = [i for i, h in enumerate(http) if h[2] == "RateLimited"]
    idle = sum(r[2] for r in res[1:])  # the limiter found no request waiting: the time it stood unused
    slowdown = sum(r[3] - nominal for r in res[:-1])  # slots booked at a rate lowered by rejections
    ideal = n_pages / rate
    pre = first_slot - flow0
    excess = {
        "open": plan0 - flow0,
        "plan": plan1 - plan0,
        "tasks": first_slot - plan1,
        "margin": n_pages * (nominal - 1.0 / rate),
        "wasted": len(rejected) * nominal,
        "slowdown": slowdown,
        "idle": idle,
    }
    excess["rest"] = fin_seconds - ideal - sum(excess.values())
    firsts: dict[int, float] = {}
    for r in res:
        firsts.setdefault(r[4], r[0])
    lock_wait: dict[str, float] = defaultdict(float)
    lock_hold: dict[str, float] = defaultdict(float)
    lock_n: dict[str, int] = defaultdict(int)
    for _, t0, t1, t2, label in locks:
        lock_wait[label] += t1 - t0
        lock_hold[label] += t2 - t1
        lock_n[label] += 1
    hold_in_fetch = sum(max(0.0, min(t2, last_answer) - max(t1, first_slot)) for _, _, t1, t2, _ in locks)
    lat = sorted(h[1] - h[0] for h in ok)
    w_dur = sorted(w[2] - w[1] for w in writes)
    # each rejection: was the client on schedule (5 requests before it at least 1 s earlier), and
    # how long did the slowest of those 5 wait for its answer (a busy server admits the next late)
    why = []
    for i in rejected:
        if i >= 5:
            spacing = http[i][0] - http[i - 5][0]
            slowest = max(h[1] - h[0] for h in http[i - 5 : i])
            why.append((http[i][0] - flow0, spacing, slowest))
    return {
        "startup": rf0 - spawn,
        "prefect_start": flow0 - rf0,
        "flow": fin_seconds,
        "after_flow": rf1 - fin0,
        "exit": exit_ - rf1,
        "command": exit_ - spawn,
        "cli_plan": builds[0][2] - builds[0][1] if len(builds) > 1 else 0.0,
        "pre": pre,
        "fetch": last_answer - first_slot,
        "post": fin0 - last_answer,
        "last_latency": last_answer - last_slot,
        "excess": excess,
        "ideal": ideal,
        "requests": n_req,
        "pages": n_pages,
        "rejected": len(rejected),
        "why": why,
        "nominal": nominal,
        "idle_gaps": sum(1 for r in res[1:] if r[2] > 0),
        "all_started": max(firsts.values()) - flow0,
        "first_done_min": min(b[1] for b in batches) - flow0,
        "last_done": max(b[1] for b in batches) - flow0,
        "batches": len(batches),
        "still_n": len(still),
        "still_sum": sum(x[2] - x[1] for x in still),
        "latency_med": statistics.median(lat),
        "latency_p95": lat[int(0.95 * (len(lat) - 1))],
        "latency_max": lat[-1],
        "writes": len(writes),
        "write_med": statistics.median(w_dur),
        "write_sum": sum(w_dur),
        "normalize_sum": sum(n[2] - n[1] for n in trace.get("normalize", [])),
        "lock_wait": dict(lock_wait),
        "lock_hold": dict(lock_hold),
        "lock_n": dict(lock_n),
        "hold_in_fetch": hold_in_fetch,
    }


# --------------------------------------------------------------------------- report


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        gib = int(mem.split()[1]) / 2**20
    except (OSError, StopIteration):
        gib = 0.0
    return f"{os.cpu_count()} cores ({cpu}), {gib:.0f} GiB RAM"


CODE = ("connectors", "flows", "schemas", "simulator", "warehouse", "pyproject.toml", "requirements.lock")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def git_state() -> tuple[str, str]:
    """(full hash, description): the commit under test and uncommitted changes to the code under test."""
    try:
        head = _git("rev-parse", "HEAD").strip()
        dirty = [
            line[3:]
            for line in _git("status", "--porcelain", "--untracked-files=no", "--", *CODE).split("\n")
        ]
    except (OSError, subprocess.CalledProcessError):
        return "", "unknown"
    changed = [name for name in dirty if name.strip()]
    return head, head[:7] + (f" with uncommitted changes to {', '.join(changed)}" if changed else "")


def code_moved(since: str) -> list[str]:
    """Files of the code under test that commits since ``since`` changed."""
    if not since:
        return []
    try:
        return _git("diff", "--name-only", f"{since}..HEAD", "--", *CODE).split()
    except (OSError, subprocess.CalledProcessError):
        return []


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("prefect", "duckdb", "polars", "httpx", "uvicorn"))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--trace-child":
        _trace_child(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--codes", default=None, help="comma-separated codes instead of the first --symbols")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 2))
    ap.add_argument("--end", type=date.fromisoformat, default=date(2025, 12, 30))
    ap.add_argument("--rate", type=float, default=5.0, help="the simulator's limit (the client's is 5)")
    ap.add_argument("--stocks", type=int, default=300, help="stocks in the simulator's universe")
    ap.add_argument("--target", type=float, default=0.10, help="allowed excess over the ideal")
    ap.add_argument("--quick", action="store_true", help="10 symbols, 1 run; prints only")
    ap.add_argument("--no-trace", action="store_true", help="skip the traced run")
    ap.add_argument("--save-trace", type=Path, default=None, help="keep the traced run's raw stamps (JSON)")
    ap.add_argument(
        "--prefect-server",
        action="store_true",
        help="also time --runs runs against a Prefect server started beforehand (PREFECT_API_URL)",
    )
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/bench_bf"), help="scratch folder (removed)")
    ap.add_argument("--out", type=Path, default=None, help="results file (default bench/results/backfill.md)")
    args = ap.parse_args()
    if args.quick:
        args.symbols, args.runs = min(args.symbols, 10), 1
    out = args.out or (None if args.quick else Path(__file__).parent / "results" / "backfill.md")
    from connectors.ratelimit import RateLimits
    from connectors.settings import Settings

    client = Settings.load(base_url="http://127.0.0.1:1", env={"KIWOOM_RATE": "5"}, env_file=None).limits
    margin = client.margin if client.total else RateLimits().margin
    client_rate = client.total or 0.0

    args.tmp.mkdir(parents=True, exist_ok=True)
    tmp = args.tmp / f"run-{os.getpid()}"
    tmp.mkdir()
    load0 = os.getloadavg()
    git0 = git_state()
    t_all = time.perf_counter()
    sim = Sim(args.rate, args.stocks, tmp / "sim.log")
    try:
        kwh(["universe", "--base-url", sim.url, "--warehouse", str(tmp / "universe")], tmp)
        symbols, listed, skipped = choose_symbols(tmp / "universe", args.symbols, args.start)
        if args.codes:
            symbols = [c.strip() for c in args.codes.split(",") if c.strip()]
        shutil.rmtree(tmp / "universe")
        args.first_days = first_days(symbols, listed, args.start)
        pages, days = expected_pages(symbols, listed, args.start, args.end)
        print(f"{len(symbols)} symbols x {days} trading days: {pages} pages expected", flush=True)
        results = []
        for i in range(args.runs):
            r = run_once(args, sim, tmp, i, symbols)
            results.append(r)
            print(
                f"run {i + 1}/{args.runs}: command {r['command']:.1f} s, flow {r['flow']:.1f} s, "
                f"served {r['served']} pages, {r['rejections']} rejections",
                flush=True,
            )
        traced = None
        if not args.no_trace:
            trace_file = tmp / "trace.json"
            r = run_once(args, sim, tmp, args.runs, symbols, trace=trace_file)
            traced = (r, analyse(json.loads(trace_file.read_text()), r, client_rate, margin))
            if args.save_trace:
                shutil.copy(trace_file, args.save_trace)
            print(f"traced run: command {r['command']:.1f} s, flow {r['flow']:.1f} s", flush=True)
        with_server: list[dict[str, Any]] = []
        if args.prefect_server:
            (tmp / "prefect_home").mkdir()
            server = PrefectServer(tmp / "prefect_home")
            try:
                for i in range(args.runs):
                    r = run_once(args, sim, tmp, args.runs + 1 + i, symbols, env=server.env)
                    with_server.append(r)
                    print(
                        f"with a Prefect server, run {i + 1}/{args.runs}: command {r['command']:.1f} s, "
                        f"flow {r['flow']:.1f} s, {r['rejections']} rejections",
                        flush=True,
                    )
            finally:
                server.stop()
    finally:
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            args.tmp.rmdir()  # only when empty: another run's scratch stays
    total = time.perf_counter() - t_all
    load1 = os.getloadavg()
    moved = code_moved(git0[0])
    args.git = git0[1] + (f" (then changed during the benchmark: {', '.join(moved)}; rerun)" if moved else "")
    text = report(
        args,
        symbols,
        skipped,
        pages,
        days,
        results,
        traced,
        client_rate,
        margin,
        total,
        load0,
        load1,
        with_server,
    )
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")


def report(
    args: argparse.Namespace,
    symbols: list[str],
    skipped: int,
    pages: int,
    days: int,
    results: list[dict[str, Any]],
    traced: tuple[dict[str, Any], dict[str, Any]] | None,
    client_rate: float,
    margin: float,
    total: float,
    load0: tuple[float, ...],
    load1: tuple[float, ...],
    with_server: list[dict[str, Any]],
) -> str:
    def med(key: str, runs: list[dict[str, Any]] = results) -> float:
        return statistics.median(r[key] for r in runs)

    served = int(med("served"))
    ideal = served / args.rate
    limit = 1 + args.target
    floor = served / (client_rate * (1 - margin))

    def verdict(seconds: float) -> str:
        return "meets" if seconds / ideal <= limit else "MISSED"

    def row(what: str, key: str, runs: list[dict[str, Any]] = results) -> str:
        s = med(key, runs)
        per_run = ", ".join(f"{r[key]:.1f}" for r in runs)
        return f"| {what} | {s:.1f} | {s / ideal:.2f} | {verdict(s)} | {per_run} |"

    def rejections(runs: list[dict[str, Any]]) -> str:
        return ", ".join(str(r["rejections"]) for r in runs)

    page = page_rows()
    one, two = rejection_price(client_rate), rejection_price(client_rate, second_after=1)
    prefect = (
        "the Prefect server at `PREFECT_API_URL`"
        if os.environ.get("PREFECT_API_URL")
        else "Prefect's ephemeral API server, which the command starts and stops"
    )
    cores = os.cpu_count() or 1
    busy = (
        [
            f"The load average was above {cores} ({load0[0]:.1f} at the start, {load1[0]:.1f} at the end, "
            f"on {cores} cores): other processes shared the CPUs, which stretches the CPU-bound parts "
            "(Prefect's start, planning, writes) and makes the simulator's answers late, which causes "
            "rate-limit rejections (below).",
            "",
        ]
        if max(load0[0], load1[0]) > cores
        else []
    )
    fetch = traced[1]["fetch"] if traced else None
    headroom = ideal * limit - med("flow")
    server_rows = (
        [
            row(
                "whole command, with a Prefect server already running (`PREFECT_API_URL`)",
                "command",
                with_server,
            ),
            row("the flow's own duration, with a Prefect server already running", "flow", with_server),
        ]
        if with_server
        else []
    )
    lines = [
        "# bench/backfill.py",
        "",
        f"`kwh backfill --dataset {DATASET} --symbols <{len(symbols)} codes> --start {args.start} "
        f"--end {args.end} --base-url <simulator> --warehouse <fresh dir>` as a user runs it, against "
        f"`kwh sim --rate {args.rate:g} --stocks {args.stocks}` (a subprocess on loopback), with the client "
        f"at its default {client_rate:g} requests/s (`KIWOOM_RATE=5`, limiter margin {margin:.0%}) and "
        f"{prefect}, at commit {args.git}. {len(symbols)} symbols ({symbols[0]}..{symbols[-1]}: the "
        "first KOSPI/KOSDAQ codes of "
        f"`stock_list` listed on or before {args.start}; {skipped} later listings skipped) x {days} "
        f"trading days = {len(symbols) * days:,} bars. Median of {args.runs} runs, each into a fresh "
        "warehouse after an untimed `kwh universe` (which also leaves a token in the cache). "
        f"Python {platform.python_version()}, {versions()}; {machine()}, {platform.system()} "
        f"{platform.release()}. Load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end; the "
        f"whole benchmark took {total / 60:.1f} min.",
        "",
        *busy,
        f"Ideal: {served} pages / {args.rate:g} per s = **{ideal:.1f} s**. The simulator served {served} "
        f"ka10081 pages per run (`/_sim/stats`, median; runs: {', '.join(str(r['served']) for r in results)}"
        "); "
        f"computed independently: {pages} pages (per symbol floor({days} / {page}) + 1 = {days // page + 1}: "
        f"{page} rows per daily page in the simulator's config, newest first, until a page reaches a day "
        f"before the start). Target: within {args.target:.0%} of the ideal, <= {ideal * limit:.1f} s. The "
        f"client's own floor, its {margin:.0%} safety margin under the limit included, is {served} / "
        f"({client_rate:g} x {1 - margin:.2f}) = {floor:.1f} s ({floor / ideal:.2f}x the ideal).",
        "",
        f"| measure | median s | / ideal | target <= {limit:.2f}x | runs (s) |",
        "|---|---|---|---|---|",
        row("whole command: `kwh backfill` from spawn to exit", "command"),
        row("the flow's own duration (`meta.runs` summary `seconds`)", "flow"),
        *(
            [
                "| fetching only: the flow's first request to its last answer (the traced run) "
                f"| {fetch:.1f} | {fetch / ideal:.2f} | {verdict(fetch)} | {fetch:.1f} |"
            ]
            if fetch is not None
            else []
        ),
        *server_rows,
        "",
        f"Within {args.target:.0%} of the ideal: the whole command {verdict(med('command'))} "
        f"({med('command') / ideal:.2f}x); the flow {verdict(med('flow'))} ({med('flow') / ideal:.2f}x, "
        + (
            f"{headroom:.1f} s to spare, about {headroom / one[0]:.1f} isolated rate-limit rejections' worth)"
            if headroom >= 0
            else f"{-headroom:.1f} s over the target)"
        )
        + (f"; fetching alone {verdict(fetch)} ({fetch / ideal:.2f}x, one traced run)" if fetch else "")
        + (
            "; with a Prefect server already running the whole command "
            f"{verdict(med('command', with_server))} "
            f"({med('command', with_server) / ideal:.2f}x)"
            if with_server
            else ""
        )
        + ".",
        "",
        "Checked every run (not timed): the warehouse holds exactly "
        + (
            f"{len(symbols)} symbols x {days} trading days = {len(symbols) * days:,} rows, one per symbol "
            "and trading day of the window"
            if results[0]["rows"] == len(symbols) * days
            else f"{results[0]['rows']:,} rows, one per symbol and trading day from the start (or the "
            "symbol's listing) to the end"
        )
        + "; the flow's "
        "summary (pages, and its printed line) agrees with the simulator's counters. Rate-limit "
        f"rejections (1700) per run, each retried: {rejections(results)}"
        + (f" (with the Prefect server: {rejections(with_server)})" if with_server else "")
        + f"; token requests per run: {', '.join(str(r['tokens']) for r in results)}.",
        "",
        "What a rejection costs, by the limiter's own arithmetic (`connectors.ratelimit`, at "
        f"{client_rate:g}/s): an isolated one {one[0]:.2f} s (its wasted slot, then {one[1]} slots "
        "booked at 80% of the rate and back up); a second one right after the first "
        f"(after 1 success) {two[0]:.2f} s for both, as it lowers the ceiling the rate recovers to "
        f"quickly ({two[1]} slots below the limit). The flow's seconds per run: "
        + ", ".join(f"{r['flow']:.1f} s with {r['rejections']}" for r in results)
        + " rejection(s).",
        "",
        "What the numbers mean:",
        "",
        "- **whole command**: wall time from spawning `kwh backfill` to its exit: Python start and "
        "imports, the command's own planning (it builds the jobs once before Prefect starts, to fail "
        "early on bad symbols), Prefect's start (the ephemeral API server unless `PREFECT_API_URL` names "
        "a running one), the flow run, Prefect's finalization and shutdown, the printed summary.",
        "- **flow's own duration**: `time.monotonic()` from the first line of the `backfill` flow to "
        "its summary (`meta.runs.summary.seconds`, also the last number of the printed summary line): "
        "planning from coverage, the tasks (10 symbols each, run in Prefect's thread pool, one client "
        "each, one limiter for the process), fetching and writing.",
        f"- **/ ideal**: the measure over the ideal; the target is met at <= {limit:.2f}.",
        *(
            [
                "- **with a Prefect server already running**: the same runs with `PREFECT_API_URL` pointing "
                "at a `prefect server start` launched by the benchmark beforehand (its own `PREFECT_HOME` "
                "in the scratch folder), as under a deployment or a long-lived server."
            ]
            if with_server
            else []
        ),
    ]
    if traced is not None:
        lines += traced_section(args, traced, ideal, len(symbols), margin, prefect)
    lines.append("")
    return "\n".join(lines)


def traced_section(
    args: argparse.Namespace,
    traced: tuple[dict[str, Any], dict[str, Any]],
    ideal: float,
    n_symbols: int,
    margin: float,
    prefect: str,
) -> list[str]:
    r, a = traced
    lw, lh, ln = a["lock_wait"], a["lock_hold"], a["lock_n"]
    ex = a["excess"]

    def lock(label: str) -> str:
        return f"{ln.get(label, 0)} x, held {lh.get(label, 0.0):.2f} s, waited for {lw.get(label, 0.0):.2f} s"

    def share(x: float) -> str:
        return f"{x / a['ideal']:+.1%}"

    why = "; ".join(
        f"at {t:.1f} s into the flow, sent {spacing:.3f} s after the fifth request before it "
        f"({'on schedule' if spacing >= 1.0 else 'too early'}), while the slowest of those five waited "
        f"{slow * 1000:.0f} ms for its answer"
        for t, spacing, slow in a["why"]
    )
    return [
        "",
        "## Where the time goes (one traced run)",
        "",
        f"One more run (not in the medians: command {r['command']:.1f} s, flow {r['flow']:.1f} s, "
        f"{r['rejections']} rejection(s)) ran the same command through `bench/backfill.py --trace-child`, "
        "which wraps a few functions with `time.monotonic()` stamps (the limiter's reservations, each "
        "HTTP request, `Warehouse.write` and the warehouse lock, the coverage checks, `_run_flow` and "
        "`_finish`) and then calls `kwh`'s own entry point.",
        "",
        "The whole command:",
        "",
        "| phase | s | / ideal |",
        "|---|---|---|",
        "| Python start, imports, the command's own planning before Prefect starts "
        f"(`build_jobs` {a['cli_plan']:.2f} s) | {a['startup']:.1f} | |",
        f"| Prefect: `_run_flow` to the flow's first line ({prefect.split(',')[0]}, the flow run) | "
        f"{a['prefect_start']:.1f} | |",
        f"| the flow (its summary's `seconds`) | {a['flow']:.1f} | {a['flow'] / ideal:.2f} |",
        f"| - of which before the first request | {a['pre']:.1f} | |",
        f"| - of which **fetching**: first request's slot to last answer | {a['fetch']:.1f} | "
        f"{a['fetch'] / ideal:.2f} |",
        f"| - of which after the last answer (last write, tasks ending) | {a['post']:.1f} | |",
        f"| Prefect after the flow: ledger, artifact, flow-run finalization | {a['after_flow']:.1f} | |",
        f"| exit: summary printed, Prefect's server stopped, interpreter exit | {a['exit']:.1f} | |",
        f"| whole command | {a['command']:.1f} | {a['command'] / ideal:.2f} |",
        "",
        f"The flow's {a['flow'] - a['ideal']:.1f} s over the ideal ({a['ideal']:.1f} s for its "
        f"{a['pages']} pages), exactly:",
        "",
        "| part of the flow's excess | s | of the ideal |",
        "|---|---|---|",
        "| before the first request: flow start, opening the lake and its `running` ledger row | "
        f"{ex['open']:.2f} | {share(ex['open'])} |",
        f"| before the first request: planning (`build_jobs`, coverage of {n_symbols} "
        f"symbols one query at a time) | {ex['plan']:.2f} | {share(ex['plan'])} |",
        (
            f"| before the first request: {a['batches']} tasks submitted; the first sends after its coverage "
            f"re-check (`_still_missing` per job, {a['still_n']} in all, {a['still_sum']:.1f} s summed, "
            f"queued on the one warehouse lock) | {ex['tasks']:.2f} | {share(ex['tasks'])} |"
            if a["still_n"]
            else f"| before the first request: {a['batches']} tasks submitted through Prefect, the first "
            "one's event loop, client and first reservation (no coverage re-check on a first attempt) | "
            f"{ex['tasks']:.2f} | {share(ex['tasks'])} |"
        ),
        f"| the limiter's {margin:.0%} margin: {a['pages']} pages at {a['nominal'] * 1000:.1f} ms instead "
        f"of {1000 / args.rate:.0f} ms | {ex['margin']:.2f} | {share(ex['margin'])} |",
        f"| {a['rejected']} request(s) rejected by the simulator (1700): the wasted slot(s) | "
        f"{ex['wasted']:.2f} | {share(ex['wasted'])} |",
        "| slower pacing after the rejection(s) (80% of the rate, then back up) | "
        f"{ex['slowdown']:.2f} | {share(ex['slowdown'])} |",
        f"| limiter idle, no request waiting ({a['idle_gaps']} gaps) | {ex['idle']:.2f} | "
        f"{share(ex['idle'])} |",
        "| the rest: the last answer, the last write, the tasks' end, less the one interval the ideal "
        f"counts after the last page | {ex['rest']:.2f} | {share(ex['rest'])} |",
        f"| **the flow over the ideal** | {a['flow'] - a['ideal']:.2f} | {share(a['flow'] - a['ideal'])} |",
        "",
        "Details:",
        "",
        f"- the tasks: all {a['batches']} had sent their first request {a['all_started']:.1f} s into the "
        f"flow; the first finished at {a['first_done_min']:.1f} s, the last at {a['last_done']:.1f} s. "
        + (
            f"With {a['batches']} tasks fetching at once the limiter seldom waits for a request "
            f"({ex['idle']:.1f} s idle), so neither the round trip nor the writes between symbols are on "
            "the critical path;"
            if a["batches"] > 1
            else "One task fetches its symbols one after another: the limiter stands idle whenever the "
            "round trip, normalizing and the write between two symbols take longer than one interval;"
        ),
        f"- HTTP round trip of a page on loopback: median {a['latency_med'] * 1000:.0f} ms, p95 "
        f"{a['latency_p95'] * 1000:.0f} ms, max {a['latency_max'] * 1000:.0f} ms; {a['writes']} writes "
        f"(one per symbol), median {a['write_med'] * 1000:.0f} ms, {a['write_sum']:.1f} s summed; "
        f"normalizing pages {a['normalize_sum']:.1f} s summed;",
        f"- the warehouse lock (one DuckDB connection for the process): writes {lock('write')}; "
        + (f"coverage re-checks in the tasks {lock('coverage check in the task')}; " if a["still_n"] else "")
        + f"planning {lock('planning')}; held {a['hold_in_fetch']:.1f} s of the {a['fetch']:.1f} s "
        "fetch span;",
        (
            f"- the rejection(s): {why}. The client kept its spacing; the simulator counts a request in "
            "its one-second window when its handler starts, and a handler starts late when the event loop "
            "is still building an earlier page (page building is synchronous there) or the process waits "
            "for a CPU: a delay above the margin's 31 ms over five requests squeezes two admissions into "
            "less than a second. A rejection "
            "costs its slot, and the limiter then books slots at 80% of its rate and recovers at 5% of "
            "the limit per success only up to 95% of the rate it had when rejected (its new ceiling), "
            "then probes upwards at 0.4% per success: a second rejection during the recovery lowers the "
            "ceiling itself below 5/s, and some 40-60 requests go out slower."
            if why
            else "- no rejection in this run."
        ),
        "",
        "Where the flow's excess could be cut (suggestions; nothing here is changed by the benchmark):",
        "",
        f"- rejections ({ex['wasted'] + ex['slowdown']:.2f} s in this run): let an isolated 1700 cost "
        "only its retry (slow the tier, or lower its ceiling, only on a second rejection within a few "
        "seconds), and in the simulator build pages off the event loop (`asyncio.to_thread`) or stamp "
        "admissions on arrival, so its own CPU stalls stop producing rejections the client did not cause;",
        f"- before the first request ({a['pre']:.2f} s): "
        + (
            "`fetch_batch` re-checks coverage for every job before fetching (`_still_missing`, needed "
            "only when Prefect retries the task); "
            if a["still_n"]
            else ""
        )
        + "`plan` asks coverage one symbol at a time (one query for all symbols would do); the flow "
        "opens the lake again right after the command closed it (the command could hand its open "
        "`Warehouse` to the flow's per-process cache);",
        f"- the margin ({ex['margin']:.2f} s): fixed at 3% of the ideal; it is the client's defence "
        "against jitter and stays, but it leaves 7% for everything else.",
    ]


if __name__ == "__main__":
    main()
