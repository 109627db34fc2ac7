"""Deterministic synthetic market: daily, minute and tick bars, investor and trading flows.

Daily bars come first. A symbol's log price is a drifting, slowly cycling trend that
passes ``base_price`` at ``ANCHOR`` plus mean-reverting walks: its market's (shared by the
symbols of one market, so they move together) and its own. The walks are pinned at every
year end, so a year of bars is built (once, then cached) without the years before it, and
a day's bar does not depend on the epoch or on what was asked before. The series starts
at ``max(epoch, listed)``. Minutes are built from the daily bar and reproduce it exactly;
ticks are built from the minutes and reproduce each minute exactly; weekly/monthly/yearly
bars aggregate the daily ones.

Units: stock prices are integral won on the KRX tick grid, gold integral won per gram
(tick 10), indices points with 2 decimals (all held as float). Volume is shares (grams
for gold); turnover and amounts are won. Random draws are seeded by blake2b of the seed,
the code and the day, never by ``hash()``.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from statistics import NormalDist

from schemas.calendar import next_trading_day, previous_trading_day, session_minutes, to_kst, trading_days
from simulator.universe import Instrument, Universe

__all__ = [
    "ANCHOR",
    "INSTITUTION_TYPES",
    "INVESTORS",
    "MINUTE_SCOPES",
    "TICK_SCOPES",
    "Bar",
    "Market",
    "on_grid",
    "resample_minutes",
    "resample_ticks",
    "tick_size",
]

ANCHOR = date(2025, 1, 2)  # the trend passes each instrument's base_price here
MINUTE_SCOPES = (1, 3, 5, 10, 15, 30, 45, 60)
TICK_SCOPES = (1, 3, 5, 10, 30)
INSTITUTION_TYPES = (
    "financial_investment", "insurance", "investment_trust", "private_fund", "bank", "other_financial",
    "pension_fund",
)  # fmt: skip
INVESTORS: tuple[str, ...] = ("individual", "foreign", "institution", *INSTITUTION_TYPES)
INVESTORS += ("government", "other_corp", "domestic_foreign")
_PARTICIPATION = {  # share of the day's volume each group trades (both sides), before noise
    "foreign": 0.25, "financial_investment": 0.06, "insurance": 0.01, "investment_trust": 0.02,
    "private_fund": 0.015, "bank": 0.003, "other_financial": 0.002, "pension_fund": 0.02,
    "government": 0.002, "other_corp": 0.02, "domestic_foreign": 0.003,
}  # fmt: skip
_CONTINUOUS = 380  # minute bars of continuous trading, 09:01 .. 15:20
_N = _CONTINUOUS + 1  # and the closing call auction's single print, labelled 15:30
_KEEP = 0.5 ** (1 / 120)  # daily persistence of the walks: deviations halve in 120 trading days
_BASE_YEAR = 2000  # the walks start here, so a day's price does not depend on the epoch
_LRU = 256  # cached intraday days (minutes or ticks of one symbol and day)
_ZN = 4096  # standard normal draws come from this many quantiles (the table is faster than gauss())
_Z = [NormalDist().inv_cdf((j + 0.5) / _ZN) for j in range(_ZN)]


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar. ``ts`` is None for daily and longer bars, the end-minute label (KST) for
    minute bars and the trade time for ticks; ``turnover`` is won."""

    day: date
    ts: datetime | None
    open: float
    high: float
    low: float
    close: float
    volume: int
    turnover: int


_BOUNDS, _TICKS = (2_000, 5_000, 20_000, 50_000, 200_000, 500_000), (1, 5, 10, 50, 100, 500, 1_000)


def tick_size(price: float) -> int:
    """KRX stock tick size (won) at ``price``."""
    return _TICKS[bisect_right(_BOUNDS, price)]


def on_grid(price: float) -> bool:
    """True if ``price`` is a valid KRX stock price."""
    return price > 0 and price == int(price) and int(price) % tick_size(price) == 0


_Round = Callable[[float], float]


def _stock_grid() -> tuple[_Round, _Round, _Round]:
    # float arithmetic only (no round()/float() calls): these run several times per generated day
    def near(p: float) -> float:
        t = _TICKS[bisect_right(_BOUNDS, p)]
        return (p / t + 0.5) // 1 * t or 1.0

    def up(p: float) -> float:
        t = _TICKS[bisect_right(_BOUNDS, p)]
        return -(-p // t) * t

    def down(p: float) -> float:
        t = _TICKS[bisect_right(_BOUNDS, p)]
        return p // t * t or 1.0

    return near, up, down


def _step_grid(step: float, scale: int) -> tuple[_Round, _Round, _Round]:
    """A fixed grid: ``scale`` steps per unit (100 for 0.01) or a step of ``step`` units."""
    if scale > 1:
        return (
            lambda p: round(p, 2),
            lambda p: math.ceil(p * scale - 1e-6) / scale,
            lambda p: math.floor(p * scale + 1e-6) / scale,
        )
    return (
        lambda p: float(round(p / step) * step),
        lambda p: float(math.ceil(p / step) * step),
        lambda p: float(math.floor(p / step) * step),
    )


_GRIDS = {"stock": _stock_grid(), "index": _step_grid(0.01, 100), "gold": _step_grid(10, 1)}


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _allocate(total: int, weights: Sequence[float], floor: int = 0) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (each >= ``floor`` when
    possible) that sum exactly to ``total``; the remainder goes to the largest weight."""
    n = len(weights)
    base = floor if total >= floor * n else total // n
    rest, wsum = total - base * n, sum(weights)
    out = [base + int(rest * w / wsum) for w in weights]
    out[max(range(n), key=weights.__getitem__)] += total - sum(out)
    return out


def _aggregate(bars: Sequence[Bar], day: date, ts: datetime | None) -> Bar:
    return Bar(
        day, ts, bars[0].open, max(b.high for b in bars), min(b.low for b in bars), bars[-1].close,
        sum(b.volume for b in bars), sum(b.turnover for b in bars),
    )  # fmt: skip


def _minute_of_session(ts: datetime | None) -> int:
    if ts is None:
        raise ValueError("resample_minutes needs minute bars (ts set)")
    return ts.hour * 60 + ts.minute - 9 * 60


def resample_minutes(bars: Sequence[Bar], n: int) -> list[Bar]:
    """n-minute bars from ascending 1-minute bars, grouped from the session open
    (09:01-09:0n, ...) per day and labelled by the last minute present in the group."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out: list[Bar] = []
    group: list[Bar] = []
    key: tuple[date, int] | None = None
    for b in bars:
        k = (b.day, (_minute_of_session(b.ts) - 1) // n)
        if k != key and group:
            out.append(_aggregate(group, group[0].day, group[-1].ts))
            group = []
        key = k
        group.append(b)
    if group:
        out.append(_aggregate(group, group[0].day, group[-1].ts))
    return out


def resample_ticks(ticks: Sequence[Bar], n: int) -> list[Bar]:
    """Bars of ``n`` consecutive trades (restarting each day), labelled by the last trade."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out: list[Bar] = []
    group: list[Bar] = []
    for t in ticks:
        if group and (len(group) == n or t.day != group[0].day):
            out.append(_aggregate(group, group[0].day, group[-1].ts))
            group = []
        group.append(t)
    if group:
        out.append(_aggregate(group, group[0].day, group[-1].ts))
    return out


@functools.cache
def _year_days(year: int) -> tuple[date, ...]:
    return tuple(trading_days(date(year, 1, 1), date(year, 12, 31)))


@functools.cache
def _year_index(year: int) -> dict[date, int]:
    return {d: j for j, d in enumerate(_year_days(year))}


@functools.cache
def _year_times(year: int) -> tuple[float, ...]:
    """Years from ``ANCHOR`` of each trading day of ``year``."""
    return tuple((d.toordinal() - ANCHOR.toordinal()) / 365.25 for d in _year_days(year))


@functools.cache
def _bridge_weights(n: int) -> tuple[float, ...]:
    """How much of the end-point correction a unit OU bridge applies at step 1..n."""
    q = _KEEP * _KEEP
    return tuple(_KEEP ** (n - j) * (1 - q**j) / (1 - q**n) for j in range(1, n + 1))


class _Walks:
    """Unit-variance Ornstein-Uhlenbeck walks by key, pinned at each year's last trading day,
    so any year is built without the years before it."""

    def __init__(self, seed: int):
        self.seed = seed
        self._pins: dict[str, tuple[random.Random, list[float]]] = {}
        self._paths: dict[tuple[str, int], list[float]] = {}

    def pin(self, key: str, year: int) -> float:
        """The walk's value on the last trading day of ``year``."""
        if year < _BASE_YEAR - 1:
            raise ValueError(f"the market model starts in {_BASE_YEAR}")
        rng, pins = self._pins.setdefault(key, (random.Random(_seed(self.seed, key, "pins")), []))
        while len(pins) <= year - _BASE_YEAR + 1:
            a = _KEEP ** len(_year_days(_BASE_YEAR - 1 + len(pins))) if pins else 0.0
            pins.append(a * (pins[-1] if pins else 0.0) + math.sqrt(1 - a * a) * _Z[int(rng.random() * _ZN)])
        return pins[year - _BASE_YEAR + 1]

    def path(self, key: str, year: int, cache: bool = False) -> list[float]:
        """The walk over the trading days of ``year``: a bridge between the two year-end pins."""
        hit = self._paths.get((key, year))
        if hit is not None:
            return hit
        rand, z, s = random.Random(_seed(self.seed, key, year)).random, _Z, math.sqrt(1 - _KEEP * _KEEP)
        w, free = self.pin(key, year - 1), []
        for _ in range(len(_year_days(year))):
            w = _KEEP * w + s * z[int(rand() * _ZN)]
            free.append(w)
        end = self.pin(key, year)
        out = [f + (end - free[-1]) * b for f, b in zip(free, _bridge_weights(len(free)), strict=True)]
        out[-1] = end
        if cache:
            self._paths[(key, year)] = out
        return out


class _Chunk:
    """One symbol's daily bars over the trading days of one calendar year."""

    __slots__ = ("c", "days", "h", "l", "o", "prev", "t", "v")

    def __init__(self, days: tuple[date, ...], prev: float, cols: list[list[float]], vt: list[list[int]]):
        self.days, self.prev = days, prev  # prev: the model's close on the day before days[0]
        self.o, self.h, self.l, self.c = (array("d", col) for col in cols)
        self.v, self.t = (array("q", col) for col in vt)

    def prev_close(self, j: int) -> float:
        return self.c[j - 1] if j else self.prev


class _Symbol:
    """An instrument's walk parameters and its cached yearly chunks."""

    def __init__(self, inst: Instrument, first: date, seed: int):
        self.inst, self.first, self.key = inst, first, f"{inst.code}:idio"
        p = random.Random(_seed(seed, "GOLD" if inst.kind == "gold" else inst.code, "params"))
        self.factor, self.tp, self.spread = inst.market, 1.0, 1.0
        if inst.kind == "stock":
            sigma, rho = p.uniform(0.015, 0.028), p.uniform(0.3, 0.7)
            self.mu, self.amp = p.uniform(-0.02, 0.1), p.uniform(0.0, 0.25)
            lo = 0.0015 if inst.shares > 1e9 else 0.002  # daily turnover rate of the shares
            self.avg_volume = inst.shares * math.exp(
                p.uniform(math.log(lo), math.log(lo * (2 if lo < 0.002 else 10)))
            )
        elif inst.kind == "index":
            broad, kosdaq = inst.code in ("001", "101"), inst.code.startswith("1")
            sigma, rho = (0.01, 1.0) if broad else (0.01, 0.97) if inst.code == "201" else (0.012, 0.85)
            self.mu, self.amp, self.factor, self.spread = 0.04, 0.1, "KOSDAQ" if kosdaq else "KOSPI", 0.4
            self.avg_volume = inst.shares * (0.02 if kosdaq else 0.008)
            self.tp = (12_000 if kosdaq else 25_000) / inst.base_price  # won per share traded, per point
        else:  # both gold contracts follow one walk
            sigma, rho, self.mu, self.amp, self.factor, self.spread = 0.008, 1.0, 0.06, 0.05, "GOLD", 0.6
            self.avg_volume = 20_000 if "100g" in inst.name else 150_000
        self.sigma, self.omega, self.phase = (
            sigma,
            2 * math.pi / p.uniform(2.0, 7.0),
            p.uniform(0.0, 2 * math.pi),
        )
        self.level0 = math.log(inst.base_price) - self.amp * math.sin(
            self.phase
        )  # trend = base_price at ANCHOR
        scale = sigma / math.sqrt(1 - _KEEP * _KEEP)  # daily log-return vol sigma from the unit walks
        self.beta, self.idio = scale * rho, scale * math.sqrt(max(0.0, 1 - rho * rho))
        self.chunks: dict[int, _Chunk] = {}

    def log_price(self, y: float, m: float, e: float) -> float:
        """Log price ``y`` years from ANCHOR with market walk ``m`` and own walk ``e``
        (the same expression as in ``build``, so the float result is identical)."""
        return (
            self.level0
            + self.mu * y
            + self.amp * math.sin(self.omega * y + self.phase)
            + self.beta * m
            + self.idio * e
        )

    def build(self, year: int, walks: _Walks, seed: int) -> _Chunk:
        """The chunk of ``year``: closes from the walks, then opens, highs, lows and volumes."""
        inst, sig, stock = self.inst, self.sigma, self.inst.kind == "stock"
        near, up, down = _GRIDS[inst.kind]
        ys = _year_times(year)
        m = walks.path(self.factor, year, cache=True)
        e = walks.path(self.key, year) if self.idio else [0.0] * len(ys)
        prev_m, prev_e = walks.pin(self.factor, year - 1), walks.pin(self.key, year - 1) if self.idio else 0.0
        first_prev = near(math.exp(self.log_price(_year_times(year - 1)[-1], prev_m, prev_e)))
        # columns by comprehension: markedly faster than one loop over days in CPython
        mu, amp, omega, phase, beta, idio = self.mu, self.amp, self.omega, self.phase, self.beta, self.idio
        level0, exp, log, sin = self.level0, math.exp, math.log, math.sin
        c = [
            near(exp(level0 + mu * y + amp * sin(omega * y + phase) + beta * mj + idio * ej))
            for y, mj, ej in zip(ys, m, e, strict=True)
        ]
        ref = [first_prev, *c[:-1]]
        rand = random.Random(_seed(seed, inst.code, year, "daily")).random
        g, x = 0.6 * sig, 0.5 * sig
        o = [near(r * (1 + g * (rand() - 0.5))) for r in ref]
        h = [up((oj if oj > cj else cj) * (1 - x * log(1 - rand()))) for oj, cj in zip(o, c, strict=True)]
        lo = [down((cj if oj > cj else oj) * (1 + x * log(1 - rand()))) for oj, cj in zip(o, c, strict=True)]
        # stocks trade a steady amount of won: volume ~ base_price / price
        vol0 = self.avg_volume * (inst.base_price if stock else 1.0)
        a, b = 1 - self.spread / 2, self.spread
        v = [
            max(2_000, int(vol0 * (a + b * rand()) * (1 + 12 * abs(cj - rj) / rj) / (cj if stock else 1.0)))
            for cj, rj in zip(c, ref, strict=True)
        ]
        tp = self.tp / 3
        t = [round(vj * (hj + lj + cj) * tp) for vj, hj, lj, cj in zip(v, h, lo, c, strict=True)]
        return _Chunk(_year_days(year), first_prev, [o, h, lo, c], [v, t])


# balances (short, lending, foreign holding) run from here: a fixed start keeps them
# deterministic, and a recent one keeps a symbol's first query cheap
FLOWS_FROM = date(2018, 1, 2)


class _FlowSeries:
    """Per-symbol running balances from the first day of the series: short selling,
    securities lending and foreign holding (which moves by the foreign net buying)."""

    def __init__(self, inst: Instrument, seed: int):
        rng = self.rng = random.Random(_seed(seed, inst.code, "balances"))
        self.lend_target = inst.shares * rng.uniform(0.005, 0.04)
        self.short_target = self.lend_target * rng.uniform(0.2, 0.5)
        self.limit = inst.shares * 49 // 100 if inst.sector == "020" else inst.shares  # telecoms: 49%
        self.lend = int(self.lend_target * rng.uniform(0.7, 1.3))
        self.short = int(self.short_target * rng.uniform(0.7, 1.3))
        self.hold = int(self.limit * rng.uniform(0.1, 0.5))
        self.rows: dict[date, tuple[int, int, int, int, int, int]] = {}
        self.through: date | None = None

    def extend(self, days: list[tuple[date, int, int]]) -> None:
        """Add the days (day, volume, foreign net), ascending and after ``through``."""
        rng = self.rng
        for day, v, foreign_net in days:
            short_qty = int(v * 0.08 * rng.random())
            covered = max(0, int(short_qty * rng.uniform(0.6, 1.4) + (self.short - self.short_target) * 0.01))
            new = int(v * rng.uniform(0.01, 0.08))
            repaid = int(new * rng.uniform(0.6, 1.4) + (self.lend - self.lend_target) * 0.01)
            repaid = min(max(0, repaid), self.lend + new)
            self.lend += new - repaid
            self.short = min(self.lend, max(0, self.short + short_qty - covered))
            self.hold = min(self.limit, max(0, self.hold + foreign_net))
            self.rows[day] = (short_qty, self.short, new, repaid, self.lend, self.hold)
            self.through = day


class Market:
    """The synthetic market over a universe; all queries are deterministic in ``seed``.

    Unknown codes raise KeyError; days that are not trading days of the symbol's series
    (holidays, before ``max(epoch, listed)``) give ``[]`` or ``None``. Pass ``now`` to see
    the market as of that instant: later days are dropped and ``now``'s day is partial.
    """

    resample_minutes = staticmethod(resample_minutes)
    resample_ticks = staticmethod(resample_ticks)

    def __init__(self, universe: Universe, seed: int = 7, epoch: date = date(2010, 1, 4)) -> None:
        if epoch.year < _BASE_YEAR:
            raise ValueError(f"epoch must be in {_BASE_YEAR} or later")
        self.universe, self.seed, self.epoch = universe, seed, epoch
        self._walks = _Walks(seed)
        self._symbols: dict[str, _Symbol] = {}
        self._flows: dict[str, _FlowSeries] = {}
        self._intraday: OrderedDict[tuple[str, date, str], list[Bar]] = OrderedDict()
        self._lock = threading.RLock()

    # --- daily series -----------------------------------------------------------------
    def _symbol(self, code: str) -> _Symbol:
        s = self._symbols.get(code)
        if s is None:
            inst = self.universe.get(code)
            first = max(self.epoch, inst.listed)
            with self._lock:
                s = self._symbols.setdefault(
                    code, _Symbol(inst, next_trading_day(first - timedelta(days=1)), self.seed)
                )
        return s

    def _chunk(self, s: _Symbol, year: int) -> _Chunk:
        ch = s.chunks.get(year)
        if ch is None:
            with self._lock:
                ch = s.chunks.get(year) or s.chunks.setdefault(year, s.build(year, self._walks, self.seed))
        return ch

    def _locate(self, code: str, day: date) -> tuple[_Symbol, _Chunk, int] | None:
        s = self._symbol(code)
        j = _year_index(day.year).get(day)
        if j is None or day < s.first:
            return None
        return s, self._chunk(s, day.year), j

    def daily(self, code: str, start: date, end: date, now: datetime | None = None) -> list[Bar]:
        """Daily bars of the trading days in ``[start, end]``, ascending. With ``now``, days
        after it are dropped and its own day is the aggregate of the minutes so far (if any)."""
        s = self._symbol(code)
        if now is not None:
            now = to_kst(now)
            end = min(end, now.date())
        start = max(start, s.first)
        bars: list[Bar] = []
        for year in range(start.year, end.year + 1):
            ch = self._chunk(s, year)
            j0 = bisect_left(ch.days, start) if year == start.year else 0
            j1 = bisect_right(ch.days, end) if year == end.year else len(ch.days)
            o, h, lo, c, v, t = ch.o, ch.h, ch.l, ch.c, ch.v, ch.t
            bars += [Bar(ch.days[j], None, o[j], h[j], lo[j], c[j], v[j], t[j]) for j in range(j0, j1)]
        if now is not None and bars and bars[-1].day == now.date():
            minutes = self.minutes(code, now.date(), now)
            bars[-1:] = [_aggregate(minutes, now.date(), None)] if minutes else []
        return bars

    def daily_bar(self, code: str, day: date, now: datetime | None = None) -> Bar | None:
        """The bar of ``day`` (partial if ``now`` is during that session), or None."""
        bars = self.daily(code, day, day, now)
        return bars[0] if bars else None

    def prev_close(self, code: str, day: date) -> float | None:
        """Close of the last trading day strictly before ``day``, None if the series has none."""
        loc = self._locate(code, previous_trading_day(day))
        return None if loc is None else loc[1].c[loc[2]]

    def weekly(self, code: str, start: date, end: date, now: datetime | None = None) -> list[Bar]:
        """Weekly bars (Monday-Friday) labelled by their first trading day."""
        return self._periods(code, start, end, now, lambda d: d - timedelta(days=d.weekday()))

    def monthly(self, code: str, start: date, end: date, now: datetime | None = None) -> list[Bar]:
        """Monthly bars labelled by their first trading day."""
        return self._periods(code, start, end, now, lambda d: d.replace(day=1))

    def yearly(self, code: str, start: date, end: date, now: datetime | None = None) -> list[Bar]:
        """Yearly bars labelled by their first trading day."""
        return self._periods(code, start, end, now, lambda d: date(d.year, 1, 1))

    def _periods(
        self, code: str, start: date, end: date, now: datetime | None, key: Callable[[date], date]
    ) -> list[Bar]:
        """Periods with a trading day in ``[start, end]``, over all their days up to ``end``."""
        groups: list[list[Bar]] = []
        for b in self.daily(code, key(start), end, now):
            if groups and key(b.day) == key(groups[-1][0].day):
                groups[-1].append(b)
            else:
                groups.append([b])
        return [_aggregate(g, g[0].day, None) for g in groups if g[-1].day >= start]

    # --- intraday ---------------------------------------------------------------------
    def _cached(self, key: tuple[str, date, str], build: Callable[[], list[Bar]]) -> list[Bar]:
        with self._lock:
            hit = self._intraday.get(key)
            if hit is not None:
                self._intraday.move_to_end(key)
                return hit
        value = build()
        with self._lock:
            self._intraday[key] = value
            while len(self._intraday) > _LRU:
                self._intraday.popitem(last=False)
        return value

    def minutes(self, code: str, day: date, now: datetime | None = None) -> list[Bar]:
        """1-minute bars of ``day`` labelled by their end minute: continuous trading 09:01 ..
        15:20, then one bar at 15:30, the closing call auction's single print (no bars in
        between); with ``now`` the prefix of bars labelled ``<= now``. A full day reproduces
        the daily bar exactly."""
        loc = self._locate(code, day)
        if loc is None:
            return []
        full = self._cached((code, day, "m"), lambda: self._build_minutes(*loc, day))
        if now is None:
            return list(full)
        now = to_kst(now)
        return full[: bisect_right([b.ts for b in full if b.ts is not None], now)]

    def ticks(self, code: str, day: date, now: datetime | None = None) -> list[Bar]:
        """Trades of ``day`` (open=high=low=close=price, volume=size, ts with seconds); each
        minute's trades reproduce its OHLC, volume and turnover. With ``now``, trades ``<= now``."""
        minutes = self.minutes(code, day)
        if not minutes:
            return []
        full = self._cached((code, day, "t"), lambda: self._build_ticks(code, day, minutes))
        if now is None:
            return list(full)
        now = to_kst(now)
        return [t for t in full if t.ts is not None and t.ts <= now]

    def _build_minutes(self, s: _Symbol, ch: _Chunk, k: int, day: date) -> list[Bar]:
        near, up, down = _GRIDS[s.inst.kind]
        rng = random.Random(_seed(self.seed, s.inst.code, day, "minutes"))
        rand, z = rng.random, _Z
        o_, h_, l_, c_ = ch.o[k], ch.h[k], ch.l[k], ch.c[k]
        m_ = _CONTINUOUS
        scale = (h_ - l_) / math.sqrt(m_) * 0.8
        # a Brownian bridge through open (0), high and low (two seeded minutes) and close (the
        # end of continuous trading at 15:20); the 15:30 auction prints the close
        pins = sorted([(0, o_), *zip(rng.sample(range(1, m_), 2), (h_, l_), strict=True), (m_, c_)])
        path = [o_] * (m_ + 1)
        for (a, pa), (b, pb) in pairwise(pins):
            m, w, walk = b - a, 0.0, []
            for _ in range(m):
                w += scale * z[int(rand() * _ZN)]
                walk.append(w)
            for j in range(1, m):
                path[a + j] = near(min(h_, max(l_, pa + (pb - pa - walk[-1]) * j / m + walk[j - 1])))
            path[b] = pb
        e = scale * 0.3
        highs = [min(h_, up(max(path[j], path[j + 1]) + e * rand())) for j in range(m_)] + [c_]
        lows = [max(l_, down(min(path[j], path[j + 1]) - e * rand())) for j in range(m_)] + [c_]
        path.append(c_)  # the auction: open = high = low = close
        # U-shaped volume, the 15:30 closing auction heavy; at least 4 shares a minute
        exp = math.exp
        weights = [(1 + 2.5 * exp(-j / 25) + 1.5 * exp((j - _N) / 15)) * (0.5 + rand()) for j in range(_N)]
        weights[-1] *= 6
        volumes = _allocate(ch.v[k], weights, 4)
        turnovers = _allocate(
            ch.t[k], [volumes[j] * (path[j] + highs[j] + lows[j] + path[j + 1]) for j in range(_N)]
        )
        full = session_minutes(day)
        labels = [*full[:m_], full[-1]]  # nothing between 15:20 and 15:30: the closing auction
        return [
            Bar(day, labels[j], path[j], highs[j], lows[j], path[j + 1], volumes[j], turnovers[j])
            for j in range(_N)
        ]

    def _build_ticks(self, code: str, day: date, minutes: list[Bar]) -> list[Bar]:
        near = _GRIDS[self.universe.get(code).kind][0]
        rng = random.Random(_seed(self.seed, code, day, "ticks"))
        rand = rng.random
        out: list[Bar] = []
        for m in minutes:
            assert m.ts is not None
            if m is minutes[-1]:  # the closing auction: one trade at 15:30:00
                out.append(Bar(day, m.ts, m.close, m.close, m.close, m.close, m.volume, m.turnover))
                continue
            lo, hi = m.low, m.high
            middle = [p for p in ((hi, lo) if rand() < 0.5 else (lo, hi)) if p not in (m.open, m.close)]
            prices = [m.open, *middle, m.close]
            for _ in range(min(m.volume, 2 + int(rand() * 5)) - len(prices)):
                filler = min(hi, max(lo, near(lo + (hi - lo) * rand())))
                prices.insert(1 + int(rand() * (len(prices) - 1)), filler)
            sizes = _allocate(m.volume, [0.2 + rand() for _ in prices], 1)
            amounts = _allocate(m.turnover, [q * p for q, p in zip(sizes, prices, strict=True)])
            t0 = m.ts - timedelta(minutes=1)
            seconds = sorted(rng.sample(range(60), len(prices)))
            out += [
                Bar(day, t0 + timedelta(seconds=sec), p, p, p, p, q, a)
                for sec, p, q, a in zip(seconds, prices, sizes, amounts, strict=True)
            ]
        return out

    # --- investor and trading flows ---------------------------------------------------
    def _foreign(self, s: _Symbol, ch: _Chunk, k: int, day: date) -> tuple[random.Random, int, int]:
        """The day's first investor draw, the foreign net (foreigners buy up-days), with the
        generator for the others and the volume: the balances' long runs need only this."""
        rng = random.Random(_seed(self.seed, s.inst.code, day, "investors"))
        v, ret = ch.v[k], math.log(ch.c[k] / ch.prev_close(k))
        return rng, v, round(v * max(-0.15, min(0.15, rng.gauss(2 * ret, 0.06))))

    def _nets(self, s: _Symbol, ch: _Chunk, k: int, day: date) -> dict[str, int]:
        rng, v, foreign = self._foreign(s, ch, k, day)

        def part(mean: float, sd: float, cap: float) -> int:
            return round(v * max(-cap, min(cap, rng.gauss(mean, sd))))

        subs = {name: part(0.0, 0.012, 0.03) for name in INSTITUTION_TYPES}
        gov, corp, dom = part(0.0, 0.004, 0.01), part(0.0, 0.008, 0.02), part(0.0, 0.002, 0.005)
        inst = sum(subs.values())
        top = {"individual": -(foreign + inst + gov + corp + dom), "foreign": foreign, "institution": inst}
        return top | subs | {"government": gov, "other_corp": corp, "domestic_foreign": dom}

    def investor_flows(self, code: str, day: date) -> dict[str, int] | None:
        """Net buy quantity (shares) per investor type; the top-level types
        (individual, foreign, institution, government, other_corp, domestic_foreign) sum to 0
        and institution is the sum of its seven sub-types."""
        loc = self._locate(code, day)
        return None if loc is None else self._nets(*loc, day)

    def investor_trades(self, code: str, day: date) -> dict[str, tuple[int, int]] | None:
        """(buy, sell) quantity per investor type, buy - sell = the net of ``investor_flows``;
        over the top-level types both sides sum to the day's volume."""
        loc = self._locate(code, day)
        if loc is None:
            return None
        s, ch, k = loc
        nets, v = self._nets(s, ch, k, day), ch.v[k]
        rng = random.Random(_seed(self.seed, code, day, "trades"))
        base = {g: int(v * share * rng.uniform(0.7, 1.3)) for g, share in _PARTICIPATION.items()}
        leaves = [g for g in INVESTORS if g != "institution"]
        base["individual"] = v - sum(base.values()) - sum(max(nets[g], 0) for g in leaves)
        out = {g: (base[g] + max(nets[g], 0), base[g] + max(-nets[g], 0)) for g in leaves}
        buys, sells = (sum(out[g][side] for g in INSTITUTION_TYPES) for side in (0, 1))
        out["institution"] = (buys, sells)
        return {g: out[g] for g in INVESTORS}

    def program_trading(self, code: str, day: date) -> dict[str, int] | None:
        """Program trading quantities and amounts (won at the day's average price), split into
        arbitrage and non-arbitrage: ``{arb_,nonarb_,}{buy,sell,net}_{qty,amount}``."""
        loc = self._locate(code, day)
        if loc is None:
            return None
        ch, k = loc[1:]
        v, vwap = ch.v[k], ch.t[k] / ch.v[k]
        rng = random.Random(_seed(self.seed, code, day, "program"))
        out: dict[str, int] = {}
        for kind, (lo, hi) in (("arb", (0.0, 0.02)), ("nonarb", (0.03, 0.18))):
            for side in ("buy", "sell"):
                qty = out[f"{kind}_{side}_qty"] = int(v * rng.uniform(lo, hi))
                out[f"{kind}_{side}_amount"] = round(qty * vwap)
        for unit in ("qty", "amount"):
            for side in ("buy", "sell"):
                out[f"{side}_{unit}"] = out[f"arb_{side}_{unit}"] + out[f"nonarb_{side}_{unit}"]
            for prefix in ("", "arb_", "nonarb_"):
                out[f"{prefix}net_{unit}"] = out[f"{prefix}buy_{unit}"] - out[f"{prefix}sell_{unit}"]
        return out

    def _balances(self, code: str, day: date) -> tuple[_Chunk, int, tuple[int, ...], int] | None:
        """The day's bar position, balances row and foreign limit; stocks only."""
        if self.universe.get(code).kind != "stock":
            raise ValueError(f"{code}: short selling and foreign holding exist for stocks only")
        loc = self._locate(code, day)
        if loc is None or day < FLOWS_FROM:
            return None
        s, ch, k = loc
        with self._lock:
            f = self._flows.get(code) or self._flows.setdefault(code, _FlowSeries(s.inst, self.seed))
            if f.through is None or f.through < day:
                first = max(s.first, FLOWS_FROM)
                start, todo = first if f.through is None else next_trading_day(f.through), []
                for year in range(start.year, day.year + 1):
                    c = self._chunk(s, year)
                    todo += [
                        (d, c.v[j], self._foreign(s, c, j, d)[2])
                        for j, d in enumerate(c.days)
                        if start <= d <= day
                    ]
                f.extend(todo)
        return ch, k, f.rows[day], f.limit

    def short_selling(self, code: str, day: date) -> dict[str, int] | None:
        """Short sales of the day (<= 8% of volume) and the short and lending balances
        (lending_balance = previous + new - repaid); quantities in shares, amounts in won."""
        got = self._balances(code, day)
        if got is None:
            return None
        ch, k, (qty, short, new, repaid, lend, _), _ = got
        close = ch.c[k]
        return {
            "short_qty": qty, "short_amount": round(qty * ch.t[k] / ch.v[k]),
            "short_balance_qty": short, "short_balance_amount": round(short * close),
            "lending_new_qty": new, "lending_repaid_qty": repaid,
            "lending_balance_qty": lend, "lending_balance_amount": round(lend * close),
        }  # fmt: skip

    def foreign_holding(self, code: str, day: date) -> dict[str, int] | None:
        """Foreign holding: changes by the day's foreign net buying, bounded by the limit
        (49% for telecoms, else all shares); ratios in basis points."""
        got = self._balances(code, day)
        if got is None:
            return None
        held, limit, shares = got[2][5], got[3], self.universe.get(code).shares
        return {
            "holding_qty": held, "limit_qty": limit, "available_qty": limit - held, "shares": shares,
            "ratio_bp": round(held * 10_000 / shares), "exhaustion_bp": round(held * 10_000 / limit),
        }  # fmt: skip
