"""What the simulator streams: per subscribed item, the day's pre-rendered REAL entries, and the clock.

A ``Feed`` walks one item's trades of a day (``ws_ticks.tick_table``, cached
per symbol and day) and renders its 0B/0D entries a block at a time with
``ws_wire.render``, so streaming is slicing lists of ready strings and joining
them into frames: no per-entry Python beyond ``str.join``.

Clock modes (``WsConfig.mode``):

- ``clock``: the simulator's market clock (``Simulator.now()``: real KST unless
  overridden); an item streams the trades after the moment it was subscribed.
- ``replay``: a chosen trading day at ``speed`` x, from ``replay_from``; the
  replay clock starts at the first REG the server receives (or a restart via
  ``/_sim/ws``) and is shared by every connection, so a client that is away
  misses what happened meanwhile, as with the real server.
- ``load``: no clock; the day's entries as fast as the client reads, over and over,
  or at ``load_rate`` entries a second per connection (``LoadPacer``).
"""

from __future__ import annotations

import asyncio
import threading
import time as _time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

import polars as pl

from schemas.calendar import KST, is_trading_day, previous_trading_day
from simulator.market import Market
from simulator.universe import strip_venue
from simulator.ws_ticks import tick_table
from simulator.ws_wire import render

__all__ = ["BLOCK", "Feed", "LoadPacer", "ReplayClock", "TickCache", "WsConfig"]

_T = TypeVar("_T")
BLOCK = 512  # trades rendered at a time per item
STREAMED = ("0B", "0C", "0D")  # in this order within a trade
_OPEN, _CLOSE = 9 * 3600, 15 * 3600 + 30 * 60


@dataclass
class WsConfig:
    """The WebSocket side of the simulator."""

    ping_interval: float = 20.0  # seconds between the server's PINGs
    ping_timeout: float = 10.0  # no echo by then: SYSTEM R10002 and close
    login_timeout: float = 10.0  # no LOGIN by then: SYSTEM R10004 and close
    mode: str = "clock"  # "clock", "replay" or "load"
    replay_day: date | None = None  # replay/load: the day streamed (None: the last trading day before today)
    replay_from: time = time(9, 0)  # replay: where the market clock starts
    speed: float = 60.0  # replay: market seconds per real second
    entries_per_frame: int = 20  # at most this many entries in one REAL frame
    step: float = 0.05  # seconds between batches of frames (clock and replay)
    max_items: int = 100  # per REG request
    drop_rate: float = 0.0  # fault from the start: chance per REAL frame of dropping the connection
    load_rate: float = 0.0  # load: entries a second per connection (0: as fast as the client reads)


class LoadPacer:
    """A fixed offered load: after each frame, wait until the entries sent so far are due at ``rate``/s.

    Open loop: a receiver that falls behind gets the missed entries as fast as it reads.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started: float | None = None
        self.entries = 0

    async def sent(self, entries: int) -> None:
        now = _time.monotonic()
        if self.started is None:
            self.started = now
        self.entries += entries
        ahead = self.entries / self.rate - (now - self.started)
        if ahead > 0:
            await asyncio.sleep(ahead)


class TickCache:
    """Tick tables of recently streamed (symbol, day) and their rendered blocks, shared by connections."""

    def __init__(self, market: Market, seed: int, size: int = 128, blocks: int = 128) -> None:
        self.market, self.seed, self.size, self.blocks = market, seed, size, blocks
        self._tables: OrderedDict[tuple[str, date], pl.DataFrame] = OrderedDict()
        self._blocks: OrderedDict[tuple[str, date, int, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def block(self, item: str, day: date, block: int, key: str, build: Callable[[], _T]) -> _T:
        """Rendered entries of one block (or what is made of them), shared by connections (a load
        run renders a day once)."""
        k = (item, day, block, key)
        with self._lock:
            hit = self._blocks.get(k)
            if hit is not None:
                self._blocks.move_to_end(k)
                return hit
        entries = build()
        with self._lock:
            self._blocks[k] = entries
            while len(self._blocks) > self.blocks:
                self._blocks.popitem(last=False)
        return entries

    def drop(self, item: str, day: date, block: int, key: str) -> None:
        with self._lock:
            self._blocks.pop((item, day, block, key), None)

    def get(self, code: str, day: date) -> pl.DataFrame:
        key = (code, day)
        with self._lock:
            hit = self._tables.get(key)
            if hit is not None:
                self._tables.move_to_end(key)
                return hit
        table = tick_table(self.market, code, day, self.seed)
        with self._lock:
            self._tables[key] = table
            while len(self._tables) > self.size:
                self._tables.popitem(last=False)
        return table


class ReplayClock:
    """The market time of a replayed day: ``replay_from`` + speed x the real time since start."""

    def __init__(self) -> None:
        self.started: float | None = None

    def start(self, force: bool = False) -> None:
        if self.started is None or force:
            self.started = _time.monotonic()

    def now(self, cfg: WsConfig) -> datetime | None:
        day = cfg.replay_day or default_day()
        if self.started is None:
            return None
        elapsed = (_time.monotonic() - self.started) * cfg.speed
        return datetime.combine(day, cfg.replay_from, KST) + timedelta(seconds=elapsed)


def default_day() -> date:
    """The last full trading day before today in Korea."""
    return previous_trading_day(datetime.now(KST).date())


def _seconds(t: datetime) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


class Feed:
    """One item's stream for one day: which of its trades are due, as rendered entries."""

    def __init__(self, cache: TickCache, item: str, day: date, start: datetime | None) -> None:
        self.cache, self.item, self.day = cache, item, day
        self.code = strip_venue(item)
        self.types: set[str] = set()
        self.loops = 0  # load mode: passes over the day
        self._table: pl.DataFrame | None = None
        self._secs: list[int] = []
        self._block = -1
        self._rendered: dict[str, list[str]] = {}
        self._moved: tuple[int, str, int, list[str]] = (-1, "", 0, [])  # load mode: the block of this pass
        self.cursor = 0
        self._start = start  # trades at or before this are history: not streamed

    @property
    def streams(self) -> bool:
        """Only stocks of the universe trade; other codes are accepted and stay silent."""
        try:
            stock = self.cache.market.universe.get(self.code).kind == "stock"
        except KeyError:
            return False
        return stock and bool(self.types & set(STREAMED))

    def _after_close(self) -> bool:
        """Subscribed after today's close (and not loaded yet): nothing more will trade."""
        start = self._start
        return self._table is None and start is not None and _seconds(start) > _CLOSE + 60

    def _load(self) -> None:
        if self._table is None:
            ok = is_trading_day(self.day)
            self._table = self.cache.get(self.code, self.day) if ok else pl.DataFrame()
            self._secs = self._table["sec"].to_list() if self._table.height else []
            if self._start is not None and self._start.date() == self.day:
                self.cursor = bisect_right(self._secs, _seconds(self._start))

    def due(self, now: datetime | None, limit: int) -> tuple[list[str], dict[str, int]]:
        """Entries of the trades up to ``now`` (None: the next ``limit`` trades, looping), and
        how many of each type. Trades are whole: a 0B and its 0D go out together."""
        if now is not None and (now.date() != self.day or _seconds(now) < _OPEN or self._after_close()):
            return [], {}  # nothing trades: nothing to build
        self._load()
        if not self._secs:
            return [], {}
        if now is None and self.cursor >= len(self._secs):
            self.cursor, self.loops = 0, self.loops + 1
        end = len(self._secs) if now is None else bisect_right(self._secs, _seconds(now))
        end = min(end, self.cursor + limit, (self.cursor // BLOCK + 1) * BLOCK)
        if end <= self.cursor:
            return [], {}
        block = self.cursor // BLOCK
        a, b = self.cursor % BLOCK, end - self.cursor + self.cursor % BLOCK
        self.cursor = end
        key = self._key()
        counts = {k: b - a for k in STREAMED if k in self.types}
        if not self.loops:
            return self._render_block(block)[key][a:b], counts
        # load mode, the day again as if it went on: each pass adds the day's volume to FID 13,
        # so every trade has a cumulative volume of its own (a trade's key), as in a real session
        if self._moved[:3] != (block, key, self.loops):
            assert self._table is not None
            offset = self.loops * int(self._table["cum_volume"][-1])
            cut = self.cache.block(self.item, self.day, block, f"{key}#cut", lambda: self._cut(block, key))
            self._moved = (block, key, self.loops, moved_volume(cut, offset))
        return self._moved[3][a:b], counts

    def _cut(self, block: int, key: str) -> pl.DataFrame:
        """A block cut for later passes; its rendered entries leave the shared cache (only the cut is
        used from the second pass on), so the cache holds one form of each block."""
        cut = cut_volume(self._render_block(block)[key])
        self.cache.drop(self.item, self.day, block, key)
        return cut

    def _key(self) -> str:
        return ",".join(k for k in STREAMED if k in self.types)

    def _render_block(self, block: int) -> dict[str, list[str]]:
        key = self._key()
        if block != self._block or key not in self._rendered:
            assert self._table is not None
            table = self._table
            self._rendered = {
                key: self.cache.block(
                    self.item, self.day, block, key, lambda: _render(table, self.item, block, key)
                )
            }
            self._block = block
        return self._rendered


def _render(table: pl.DataFrame, item: str, block: int, key: str) -> list[str]:
    part = table.slice(block * BLOCK, BLOCK)
    kinds = key.split(",")
    if len(kinds) == 1:
        return render(part, item, key)
    # a trade, its best quotes and its book, as one string of several entries
    parts = pl.DataFrame({k: render(part, item, k) for k in kinds})
    return parts.select(pl.concat_str(kinds, separator=",")).to_series().to_list()


_FID13 = '"13":"'  # cumulative volume, in 0B and in 0D


def cut_volume(entries: list[str]) -> pl.DataFrame:
    """Rendered entries cut at their FID 13 values: text ``t0``, then per FID 13 its value ``v<i>``
    and the text after it ``t<i>`` (cut once per block; ``moved_volume`` puts them together)."""
    n = entries[0].count(_FID13) if entries else 0  # the same in every entry of a block
    names = [f"p{i}" for i in range(n + 1)]
    cols = {"t0": pl.col("p0")}
    for i, name in enumerate(names[1:], start=1):
        cols[f"v{i}"] = pl.col(name).str.extract(r"^(\d+)", 1).cast(pl.Int64)
        cols[f"t{i}"] = pl.col(name).str.replace(r"^\d+", "")
    frame = pl.DataFrame({"e": entries}, schema={"e": pl.String})
    split = pl.col("e").str.splitn(_FID13, n + 1).struct.rename_fields(names)
    return frame.select(split.alias("p")).unnest("p").select(**cols)


def moved_volume(cut: pl.DataFrame, offset: int) -> list[str]:
    """``cut_volume``'s entries put together again with ``offset`` added to every FID 13 value."""
    parts = [pl.col("t0")]
    for i in range(1, (cut.width + 1) // 2):
        parts += [pl.lit(_FID13), (pl.col(f"v{i}") + offset).cast(pl.String), pl.col(f"t{i}")]
    return cut.select(pl.concat_str(parts)).to_series().to_list()
