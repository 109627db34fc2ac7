"""Benchmark: pacing against a server that enforces a rate limit.

    .venv/bin/python bench/ratelimit.py [--requests 300] [--runs 3] [--workers 8]

Two scenarios, each against the simulator on loopback (real HTTP, uvicorn in a
thread), with ``--workers`` concurrent tasks sharing one client and its limiter:

1. server limit 5/s, client configured for 5/s: expect zero rejections and an
   achieved rate of at least 95% of 5/s;
2. server limit 4/s, client configured for 5/s (the client is wrong about the
   terms): every request must still succeed, rejected ones retried, and the
   achieved rate at least 85% of 4/s.

Achieved rate = successful requests / seconds from the first request to the
last answer. Prints the median of ``--runs`` runs and writes
``bench/results/ratelimit.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from connectors import KiwoomClient, RateLimiter, RateLimits, Settings
from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer

BODY = {"stk_cd": "005930", "base_dt": "20251230", "upd_stkpc_tp": "1"}
CLOCK = datetime(2025, 12, 30, 16, 0, tzinfo=KST)


@dataclass
class Result:
    server_limit: float
    client_rate: float
    requests: int
    seconds: float
    rejections: int
    retries: int
    failures: int

    @property
    def rate(self) -> float:
        return (self.requests - self.failures) / self.seconds


async def _drive(base_url: str, client_rate: float, n: int, workers: int) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as cache:
        settings = Settings.load(base_url=base_url, env={}, env_file=None, token_cache=Path(cache))
        limiter = RateLimiter(RateLimits(total=client_rate))
        async with KiwoomClient(settings, limiter=limiter) as kw:
            await kw.ensure_token()  # the token is not part of the measured window
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(n):
                queue.put_nowait(i)
            failures = 0

            async def worker() -> None:
                nonlocal failures
                while not queue.empty():
                    queue.get_nowait()
                    try:
                        await kw.request("ka10081", BODY)
                    except Exception:  # counted: the bench reports failures, it does not hide them
                        failures += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(workers)))
            return time.perf_counter() - t0, kw.stats.retries, failures


def run_once(server_limit: float, client_rate: float, n: int, workers: int) -> Result:
    sim = Simulator(SimConfig(clock=lambda: CLOCK, rate_limit=server_limit, page_sizes={"daily": 100}))
    with SimServer(sim) as srv:
        seconds, retries, failures = asyncio.run(_drive(srv.base_url, client_rate, n, workers))
    return Result(server_limit, client_rate, n, seconds, sim.stats["rejections"], retries, failures)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # retries are counted in the table, not logged one by one
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    lines = [
        "# bench/ratelimit.py",
        "",
        f"{args.requests} ka10081 requests per run from {args.workers} concurrent tasks sharing one client, "
        f"simulator on loopback, median of {args.runs} runs, Python {platform.python_version()}.",
        "",
        "| server limit | client rate | achieved req/s (median) | of server limit | rejections | retries "
        "| failed | target | runs (req/s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ok = True
    for server_limit, client_rate, target in ((5.0, 5.0, 0.95), (4.0, 5.0, 0.85)):
        results = [run_once(server_limit, client_rate, args.requests, args.workers) for _ in range(args.runs)]
        med = statistics.median(r.rate for r in results)
        rejections = statistics.median(r.rejections for r in results)
        retries = statistics.median(r.retries for r in results)
        failed = sum(r.failures for r in results)
        share = med / server_limit
        met = share >= target and failed == 0 and (server_limit < client_rate or rejections == 0)
        ok &= met
        runs = ", ".join(f"{r.rate:.2f}" for r in results)
        lines.append(
            f"| {server_limit:g}/s | {client_rate:g}/s | {med:.2f} | {share:.1%} | {rejections:g} "
            f"| {retries:g} | {failed} | >= {target:.0%}{'' if met else ' MISSED'} | {runs} |"
        )
        print(lines[-1], flush=True)
    out = Path(__file__).with_name("results") / "ratelimit.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
