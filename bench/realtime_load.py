"""Realtime load: how many 0B/0D entries a second the simulator sends and the session hands out.

The simulator runs in load mode (a trading day's pre-rendered entries, as fast
as the client reads, over and over) in a child process, so the two ends do not
share one interpreter; the session reads for ``--seconds`` and reports entries,
frames and bytes a second. Run: ``.venv/bin/python bench/realtime_load.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from datetime import date

from connectors import RealtimeSession, Settings
from simulator.app import SimConfig
from simulator.server import free_port, serve
from simulator.ws_feed import WsConfig


def _serve(port: int, entries: int) -> None:
    ws = WsConfig(mode="load", replay_day=date(2025, 12, 29), entries_per_frame=entries, ping_interval=30)
    serve(SimConfig(rate_limit=None, ws=ws), port=port)


async def _read(
    base_url: str, items: list[str], types: list[str], seconds: float, warmup: float
) -> dict[str, float]:
    settings = Settings.load(base_url=base_url, env={}, env_file=None, token_cache=None)
    async with RealtimeSession(settings) as rt:
        await rt.subscribe(items, types)
        warm = time.perf_counter()
        async for _ in rt:  # the first passes render the day's blocks (cached after)
            if time.perf_counter() - warm >= warmup:
                break
        start, entries0, bytes0 = time.perf_counter(), rt.stats.entries, rt.stats.bytes
        async for _ in rt:
            if time.perf_counter() - start >= seconds:
                break
        took = time.perf_counter() - start
        return {
            "entries_per_s": (rt.stats.entries - entries0) / took,
            "mb_per_s": (rt.stats.bytes - bytes0) / took / 1e6,
            "frames": rt.stats.frames,
            "backpressure": rt.stats.backpressure,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--types", default="0B,0D")
    parser.add_argument("--per-frame", type=int, default=50, help="trades per REAL frame")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds read before measuring")
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, args.per_frame), daemon=True
    )
    server.start()
    try:
        time.sleep(3)
        from simulator.universe import Universe

        items = [s.code for s in Universe.default(300, 7).stocks[: args.items]]
        result = asyncio.run(
            _read(f"http://127.0.0.1:{port}", items, args.types.split(","), args.seconds, args.warmup)
        )
        print(
            f"{args.items} items, {args.types}, {args.per_frame} trades/frame: "
            + ", ".join(f"{k} {v:,.1f}" for k, v in result.items())
        )
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
