"""Benchmark: backfills at the API's pace, against the rate-limited simulator (issue 16).

    .venv/bin/python bench/backfill.py [--runs 3] [--big-runs 1] [--big 300] [--small 30]
                                       [--pertr-runs 2] [--quick] [--out FILE]

Two simulators run as subprocesses for the whole benchmark: ``kwh sim --rate 5`` and
``kwh sim --rate 5 --per-tr-rate 1`` (a TR alone gets about 1 request a second, as measured
live). Each run starts from a fresh warehouse; the client paces at 5/s (``KIWOOM_RATE``).

- **flow**: ``flows.runner.run_in_process("backfill", ...)`` in this process (what ``kwh
  backfill`` runs), daily bars (``stock_bars_daily``, ka10081) of N symbols over 2023-01-02 ..
  2025-12-30, N = ``--small`` (30) and ``--big`` (300). Its time is the run's ``seconds`` (plan,
  reachability check, fetch, writes, closing the run). Ideal: the pages it fetched / 5.
- **command**: the whole ``kwh backfill`` of the small job in a subprocess, from spawn to exit
  (Python start, imports, the in-process run, exit), against the same ideal.
- **per-TR**: five datasets on five TRs (daily, weekly and monthly bars, program trading,
  short selling) of 22 symbols over one week, one page each, with ``KIWOOM_PER_TR_RATE=1``
  against the per-TR simulator: requests the server answered per second, from the first
  request to the last (the limiter's send times in this process, less the refused ones).

Symbols: the first codes of the simulator's universe listed before the window, so every
one has a bar on every trading day. Medians over ``--runs``; ratios in the same run. The
machine is shared: the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - first: takes bench/ off sys.path (bench/warehouse.py hides the package)

ROOT = Path(__file__).resolve().parent.parent
KWH = [sys.executable, "-m", "flows.cli"]
RATE = 5.0
STOCKS = 330  # the simulator's universe: 300 of them listed before the window
START, END = date(2023, 1, 2), date(2025, 12, 30)
PER_TR_DATASETS = (
    "stock_bars_daily",
    "stock_bars_weekly",
    "stock_bars_monthly",
    "stock_program_trading_daily",
    "short_selling",
)
TARGETS = {"big": 1.05, "small": 1.10, "command": 1.15, "per_tr": 0.9 * RATE}


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def start_sim(tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    from simulator.server import free_port

    port = free_port()
    log = (tmp / f"sim-{port}.log").open("w")
    argv = [*KWH, "sim", "--port", str(port), "--rate", str(RATE), "--stocks", str(STOCKS), *extra]
    proc = subprocess.Popen(argv, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_sim/stats", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the simulator did not start: {(tmp / f'sim-{port}.log').read_text()[-2000:]}")


def symbols(n: int) -> list[str]:
    from simulator.universe import Universe

    listed = [s for s in Universe.default(STOCKS, 7).stocks if s.listed <= START]
    if len(listed) < n:
        raise SystemExit(f"only {len(listed)} stocks listed before {START}")
    return [s.code for s in listed[:n]]


def params(
    url: str, lake: Path, codes: list[str], datasets: list[str], start: date, end: date
) -> dict[str, Any]:
    return {
        "datasets": datasets,
        "symbols": ",".join(codes),
        "start": str(start),
        "end": str(end),
        "options": {},
        "base_url": url,
        "warehouse": str(lake),
    }


class Commits:
    """The grouped writer's commits and their seconds, from ``flows.writes.Committer``."""

    def __init__(self) -> None:
        from flows import writes

        self.commits, self.seconds = 0, 0.0
        original = writes.Committer.close
        outer = self

        async def close(self: writes.Committer) -> None:
            await original(self)
            outer.commits += self.commits
            outer.seconds += self.seconds

        writes.Committer.close = close  # type: ignore[method-assign]


def flow_run(url: str, tmp: Path, codes: list[str], commits: Commits) -> dict[str, Any]:
    from flows import runner

    lake = Path(tempfile.mkdtemp(dir=tmp))
    before = commits.commits, commits.seconds
    result = runner.run_in_process("backfill", params(url, lake, codes, ["stock_bars_daily"], START, END))
    shutil.rmtree(lake, ignore_errors=True)
    assert result["status"] == "ok", result
    ideal = result["pages"] / RATE
    return {
        "seconds": result["seconds"],
        "pages": result["pages"],
        "ideal": ideal,
        "ratio": result["seconds"] / ideal,
        "rejections": result["rejections"],
        "commits": commits.commits - before[0],
        "commit_s": commits.seconds - before[1],
    }


def command_run(url: str, tmp: Path, codes: list[str]) -> dict[str, Any]:
    lake = Path(tempfile.mkdtemp(dir=tmp))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIWOOM_", "PREFECT_"))}
    env |= {"KIWOOM_RATE": str(RATE), "KIWOOM_TOKEN_CACHE": str(tmp / "tokens-cmd"), "NO_COLOR": "1"}
    argv = [*KWH, "backfill", "-d", "stock_bars_daily", "--symbols", ",".join(codes),
            "--start", str(START), "--end", str(END),
            "--base-url", url, "--warehouse", str(lake)]  # fmt: skip
    t0 = time.monotonic()
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - t0
    shutil.rmtree(lake, ignore_errors=True)
    if out.returncode != 0:
        raise SystemExit(f"kwh backfill failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    pages = int(next(w for w in out.stdout.split(", ") if w.startswith("pages ")).split()[1])
    return {"seconds": seconds, "pages": pages, "ideal": pages / RATE, "ratio": seconds / (pages / RATE)}


def per_tr_run(url: str, tmp: Path, codes: list[str]) -> dict[str, Any]:
    from connectors import ratelimit
    from flows import runner

    sent: list[float] = []
    acquire = ratelimit.RateLimiter.acquire

    async def stamped(self: ratelimit.RateLimiter, api_id: str) -> float:
        waited = await acquire(self, api_id)
        sent.append(time.monotonic())
        return waited

    ratelimit.RateLimiter.acquire = stamped  # type: ignore[method-assign]
    os.environ["KIWOOM_PER_TR_RATE"] = "1"
    lake = Path(tempfile.mkdtemp(dir=tmp))
    try:
        p = params(url, lake, codes, list(PER_TR_DATASETS), date(2025, 12, 1), date(2025, 12, 5))
        result = runner.run_in_process("backfill", p)
    finally:
        ratelimit.RateLimiter.acquire = acquire  # type: ignore[method-assign]
        del os.environ["KIWOOM_PER_TR_RATE"]
        shutil.rmtree(lake, ignore_errors=True)
    assert result["status"] == "ok" and not result["failed"], result
    answered = len(sent) - result["rejections"]
    span = sent[-1] - sent[0]
    return {
        "requests": len(sent),
        "rejections": result["rejections"],
        "span": span,
        "rate": (answered - 1) / span,
        "flow": result["seconds"],
    }


def med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of the small flow, the command")
    ap.add_argument("--big-runs", type=int, default=1, help="runs of the big flow (2 min each)")
    ap.add_argument("--pertr-runs", type=int, default=2)
    ap.add_argument("--big", type=int, default=300)
    ap.add_argument("--small", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="1 run each, the big job 60 symbols; prints only")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.runs = args.big_runs = args.pertr_runs = 1
        args.big = 60
    out = args.out or (None if args.quick else ROOT / "bench" / "results" / "backfill.md")
    tmp = Path(tempfile.mkdtemp(prefix="bench_bf_"))
    os.environ["KIWOOM_TOKEN_CACHE"] = str(tmp / "tokens")
    os.environ["KIWOOM_RATE"] = str(RATE)
    os.environ.pop("KIWOOM_PER_TR_RATE", None)
    sims = []
    loads = [load()]
    try:
        sim, url = start_sim(tmp)
        sims.append(sim)
        pertr_sim, pertr_url = start_sim(tmp, "--per-tr-rate", "1")
        sims.append(pertr_sim)
        commits = Commits()
        small_codes, big_codes = symbols(args.small), symbols(args.big)
        small, command, big, per_tr = [], [], [], []
        for i in range(args.runs):
            small.append(flow_run(url, tmp, small_codes, commits))
            command.append(command_run(url, tmp, small_codes))
            print(
                f"run {i + 1}: small {small[-1]['ratio']:.3f}, command {command[-1]['ratio']:.3f}", flush=True
            )
        for i in range(args.pertr_runs):
            per_tr.append(per_tr_run(pertr_url, tmp, symbols(22)))
            print(f"per-TR run {i + 1}: {per_tr[-1]['rate']:.2f}/s", flush=True)
        for i in range(args.big_runs):
            big.append(flow_run(url, tmp, big_codes, commits))
            print(f"big run {i + 1}: {big[-1]['ratio']:.3f}", flush=True)
        loads.append(load())
    finally:
        for proc in sims:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(args, small, command, big, per_tr, loads)
    print(text)
    if out is not None:
        out.write_text(text)


def report(
    args: argparse.Namespace,
    small: list[dict[str, Any]],
    command: list[dict[str, Any]],
    big: list[dict[str, Any]],
    per_tr: list[dict[str, Any]],
    loads: list[str],
) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    rows = []
    for name, runs, target in (
        (f"flow, {args.big} symbols", big, TARGETS["big"]),
        (f"flow, {args.small} symbols", small, TARGETS["small"]),
        (f"whole `kwh backfill`, {args.small} symbols", command, TARGETS["command"]),
    ):
        if not runs:
            continue
        ratio = med(runs, "ratio")
        rows.append(
            f"| {name} | {len(runs)} | {med(runs, 'pages'):.0f} | {med(runs, 'ideal'):.1f} | "
            f"{med(runs, 'seconds'):.2f} | {ratio:.3f} | <= {target:.2f} | {verdict(ratio <= target)} |"
        )
    lines = [
        "# Backfill at the API's pace (bench/backfill.py)",
        "",
        f"commit {commit.stdout.strip()}, {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {loads[0]} before, {loads[-1]} after (the machine is shared)",
        "",
        f"Daily bars (ka10081) {START} .. {END}, client and simulator at {RATE:g}/s; ideal = pages / rate.",
        "",
        "| job | runs | pages | ideal s | median s | ratio | target | |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    if big or small:
        lines += [
            "Grouped writes (flows.writes), per run: commits and seconds spent committing (in the thread):",
            "",
        ]
        for name, runs in ((f"{args.small} symbols", small), (f"{args.big} symbols", big)):
            for r in runs:
                lines.append(
                    f"- {name}: {r['seconds']:.2f} s for {r['pages']} pages (ideal {r['ideal']:.1f} s), "
                    f"{r['commits']} commits taking {r['commit_s']:.2f} s, {r['rejections']} refusals"
                )
        lines.append("")
    if per_tr:
        rate = med(per_tr, "rate")
        lines += [
            f"Per-TR limits: five datasets on five TRs ({', '.join(PER_TR_DATASETS)}), 22 symbols, one page "
            f"each; the simulator at `--per-tr-rate 1` and {RATE:g}/s in total, the client with "
            "`KIWOOM_PER_TR_RATE=1`.",
            "",
            "| run | requests | refused (retried) | span s | answered/s |",
            "|---|---|---|---|---|",
            *(
                f"| {i + 1} | {r['requests']} | {r['rejections']} | {r['span']:.1f} | {r['rate']:.2f} |"
                for i, r in enumerate(per_tr)
            ),
            "",
            f"Median {rate:.2f} requests/s answered; target >= {TARGETS['per_tr']:.1f}: "
            f"{verdict(rate >= TARGETS['per_tr'])}.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
