"""Flows over a market, over a period and through the session, from the per-stock figures of the market.

``simulator.market`` gives each stock's day: investor trades, program trading, short
selling and lending. This module adds what several stocks or several minutes make:

- program trading of a market (KOSPI or KOSDAQ): the sum of its stocks' day figures;
  through the session a seeded cumulative profile per series (arbitrage/non-arbitrage,
  buy/sell) that follows the market index's minute volumes and ends at the day's totals,
  so the last minute is the day and a partial day is a prefix;
- arbitrage balances (KOSPI): buy- and sell-arbitrage positions that build over each
  KOSPI200 futures cycle from the day's arbitrage trades and are mostly unwound at expiry
  (the second Thursday of March, June, September and December);
- the KOSPI200 level (index ``201``) and the basis (futures minus spot: carry to expiry
  plus noise), by minute; a day's basis is its last minute's;
- stock lending of the whole market: the sums of its stocks' lending figures;
- one stock's investor and program flows through the session (cumulative (buy, sell)
  through each minute, ending at the day's figures) and over a window of days.

Quantities are shares and amounts won, as in ``simulator.market``, except where a
function says it rounds to the units KRX reports market-wide figures in (millions of
won, thousands of shares). Everything is deterministic in the market's seed and cached
per market (``flows(market)``).
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from schemas import calendar as cal
from simulator.market import INSTITUTION_TYPES, INVESTORS, Market, _seed

__all__ = [
    "KOSPI200",
    "MARKET_INDEX",
    "PROGRAM_SERIES",
    "Flows",
    "InvestorWindow",
    "expiry_on_or_after",
    "flows",
    "program_totals",
]

KOSPI200 = "201"
MARKET_INDEX = {"KOSPI": "001", "KOSDAQ": "101"}  # whose minute volumes shape the market's session
PROGRAM_SERIES = ("arb_buy", "arb_sell", "nonarb_buy", "nonarb_sell")
_BASE_KEYS = tuple(f"{s}_{u}" for s in PROGRAM_SERIES for u in ("qty", "amount"))
_LEAVES = tuple(g for g in INVESTORS if g != "institution")
_NETS = ("arb_net", "nonarb_net", "all_net")
_LRU = 64  # cached session profiles (one symbol or market and day each)
_OPEN_SHARE = 0.55  # of the day's arbitrage buys that open buy-arbitrage positions (the rest close sell ones)
_CARRY = 0.03  # a year's cost of carry in the theoretical basis


def program_totals(base: dict[str, int]) -> dict[str, int]:
    """``base`` ({arb_,nonarb_}{buy,sell}_{qty,amount}) with the totals and nets that
    ``Market.program_trading`` gives: {,arb_,nonarb_}{buy,sell,net}_{qty,amount}."""
    out = {k: base[k] for k in _BASE_KEYS}
    for unit in ("qty", "amount"):
        for side in ("buy", "sell"):
            out[f"{side}_{unit}"] = out[f"arb_{side}_{unit}"] + out[f"nonarb_{side}_{unit}"]
        for prefix in ("", "arb_", "nonarb_"):
            out[f"{prefix}net_{unit}"] = out[f"{prefix}buy_{unit}"] - out[f"{prefix}sell_{unit}"]
    return out


def _quarterly_expiry(year: int, month: int) -> date:
    first = date(year, month, 1)
    second_thursday = first + timedelta(days=(3 - first.weekday()) % 7 + 7)
    return cal.last_trading_day_on_or_before(second_thursday)


def expiry_on_or_after(day: date) -> date:
    """The KOSPI200 futures expiry on or after ``day`` (second Thursday of Mar/Jun/Sep/Dec,
    the trading day before it when that is a holiday)."""
    year, month = day.year, (day.month + 2) // 3 * 3
    expiry = _quarterly_expiry(year, month)
    if expiry < day:
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
        expiry = _quarterly_expiry(year, month)
    return expiry


@dataclass(frozen=True)
class InvestorWindow:
    """One stock's investors over the trading days of a window: the net quantity per
    investor type from the first day through each day, and per (investor, "buy"|"sell")
    the quantity-weighted average of the days' VWAPs (None if it never traded that side)."""

    cumulative: dict[date, dict[str, int]]
    avg_price: dict[tuple[str, str], float | None]


class Flows:
    """Market-wide, windowed and intraday flows of one ``Market`` (use ``flows(market)``)."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self._lock = threading.Lock()
        self._codes: dict[str, tuple[str, ...]] = {}
        self._days: dict[tuple[Any, ...], Any] = {}  # small per-day results, kept
        self._lru: OrderedDict[tuple[Any, ...], Any] = OrderedDict()  # sessions and windows, bounded

    # --- caching ------------------------------------------------------------------------
    def _kept(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        if key in self._days:
            return self._days[key]
        value = build()
        with self._lock:
            return self._days.setdefault(key, value)

    def _recent(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._lru:
                self._lru.move_to_end(key)
                return self._lru[key]
        value = build()
        with self._lock:
            self._lru[key] = value
            while len(self._lru) > _LRU:
                self._lru.popitem(last=False)
        return value

    def stock_codes(self, which: str) -> tuple[str, ...]:
        """Codes of the universe's stocks of ``which`` ("KOSPI", "KOSDAQ" or "ALL")."""
        codes = self._codes.get(which)
        if codes is None:
            stocks = self.market.universe.stocks
            codes = tuple(i.code for i in stocks if which == "ALL" or i.market == which)
            self._codes[which] = codes
        return codes

    def _profiles(self, code: str, day: date, tag: str, n: int) -> list[list[float]]:
        """``n`` cumulative shares of the day through each minute of ``code``'s session,
        each ending at exactly 1: the minute volumes weighted by seeded noise."""

        def build() -> list[list[float]]:
            volumes = [b.volume for b in self.market.minutes(code, day)]
            rand = random.Random(_seed(self.market.seed, code, day, tag, "profile")).random
            out = []
            for _ in range(n):
                acc, cum = 0.0, []
                for v in volumes:
                    acc += v * (0.2 + 1.6 * rand())
                    cum.append(acc)
                out.append([c / acc for c in cum[:-1]] + [1.0] if cum else [])
            return out

        return self._recent(("profile", code, day, tag, n), build)  # type: ignore[no-any-return]

    # --- program trading of a market --------------------------------------------------------
    def program_day(self, which: str, day: date) -> dict[str, int] | None:
        """The day's program trading of market ``which`` (sum over its stocks, full day,
        keys as ``Market.program_trading``); None when none of its stocks has the day."""

        def build() -> dict[str, int] | None:
            total, seen = dict.fromkeys(_BASE_KEYS, 0), False
            for code in self.stock_codes(which):
                p = self.market.program_trading(code, day)
                if p is not None:
                    seen = True
                    for k in _BASE_KEYS:
                        total[k] += p[k]
            return program_totals(total) if seen else None

        return self._kept(("program", which, day), build)  # type: ignore[no-any-return]

    def program_session(self, which: str, day: date, ticks: bool = False) -> list[tuple[datetime, int, dict]]:
        """Program trading of ``which`` through each minute (or each trade of the market
        index, with ``ticks``) of the full session of ``day``, ascending, as (time, minute
        index, cumulative figures); the last entry is ``program_day``."""

        def build() -> list[tuple[datetime, int, dict]]:
            total = self.program_day(which, day)
            index = MARKET_INDEX[which]
            minutes = self.market.minutes(index, day)
            if total is None or not minutes:
                return []
            prof = self._profiles(index, day, "program", len(PROGRAM_SERIES))

            def at(share: Callable[[list[float]], float]) -> dict[str, int]:
                base = {}
                for s, p in zip(PROGRAM_SERIES, prof, strict=True):
                    f = share(p)
                    base[f"{s}_qty"] = round(total[f"{s}_qty"] * f)
                    base[f"{s}_amount"] = round(total[f"{s}_amount"] * f)
                return program_totals(base)

            if not ticks:
                return [(b.ts, i, at(lambda p, i=i: p[i])) for i, b in enumerate(minutes)]  # type: ignore[misc]
            out: list[tuple[datetime, int, dict]] = []
            trades = iter(self.market.ticks(index, day))
            for i, b in enumerate(minutes):  # a minute's trades share its step in proportion to their sizes
                done = 0
                while done < b.volume:
                    t = next(trades)
                    done += t.volume
                    frac = done / b.volume

                    def share(p: list[float], i: int = i, frac: float = frac) -> float:
                        before = p[i - 1] if i else 0.0
                        return p[i] if frac >= 1 else before + (p[i] - before) * frac

                    out.append((t.ts, i, at(share)))  # type: ignore[arg-type]
            return out

        return self._recent(("program_session", which, day, ticks), build)  # type: ignore[no-any-return]

    def program_until(self, which: str, day: date, now: datetime | None) -> dict[str, int] | None:
        """``program_day``, or during ``day``'s session the figures through ``now``."""
        full = self.program_day(which, day)
        if full is None or now is None or cal.to_kst(now).date() != day:
            return full
        now = cal.to_kst(now)
        done = [fig for ts, _, fig in self.program_session(which, day) if ts <= now]
        return done[-1] if done else program_totals(dict.fromkeys(_BASE_KEYS, 0))

    def program_year_to_date(
        self, which: str, day: date, now: datetime | None, amount: bool
    ) -> dict[str, int]:
        """Net program buying of ``which`` on ``day`` (through ``now`` during its session)
        and since the year's first trading day through ``day``: ``{arb,nonarb,all}_net`` and
        ``..._net_acc``, in millions of won (``amount``) or thousands of shares; each day is
        rounded (from its rounded sides) before it is added up, so a day's cumulative is the
        previous one plus the day."""
        today = self._nets(self.program_until(which, day, now), amount)
        before = cal.previous_trading_day(day)
        acc = self._year_prefix(which, amount, before) if before.year == day.year else {}
        out = {k: today.get(k, 0) for k in _NETS} if today else {}
        return out | {f"{k}_acc": acc.get(k, 0) + today.get(k, 0) for k in _NETS}

    @staticmethod
    def _nets(fig: dict[str, int] | None, amount: bool) -> dict[str, int]:
        if fig is None:
            return {}
        unit, div = ("amount", 1_000_000) if amount else ("qty", 1_000)
        arb, nonarb = (
            round(fig[f"{kind}_buy_{unit}"] / div) - round(fig[f"{kind}_sell_{unit}"] / div)
            for kind in ("arb", "nonarb")
        )  # from the rounded sides, as the day's rows show them
        return {"arb_net": arb, "nonarb_net": nonarb, "all_net": arb + nonarb}

    def _year_prefix(self, which: str, amount: bool, day: date) -> dict[str, int]:
        """Full days' rounded nets summed from the year's first trading day through ``day``."""
        with self._lock:
            table: dict[date, dict[str, int]] = self._days.setdefault(("ytd", which, day.year, amount), {})
        if day not in table:
            run = dict.fromkeys(_NETS, 0)
            for d in cal.trading_days(date(day.year, 1, 1), day):
                if d in table:
                    run = table[d]
                    continue
                nets = self._nets(self.program_day(which, d), amount)
                run = {k: run[k] + nets.get(k, 0) for k in _NETS}
                table[d] = run
        return table.get(day, {})

    # --- arbitrage balances ------------------------------------------------------------------
    def arbitrage_balance(self, day: date, now: datetime | None = None) -> dict[str, int] | None:
        """Buy- and sell-arbitrage balances of KOSPI at the end of ``day`` (through ``now``
        during its session): ``{buy,sell}_qty`` in shares, ``{buy,sell}_amount`` in won,
        whole millions; None without program trading that day."""
        if self.program_day("KOSPI", day) is None:
            return None
        expiry = expiry_on_or_after(day)
        start = cal.next_trading_day(expiry_on_or_after(expiry - timedelta(days=100)))  # after the last one
        cycle = self._kept(("arbitrage", start), lambda: self._arbitrage_cycle(start, expiry))
        if now is None or cal.to_kst(now).date() != day:
            return cycle.get(day)  # type: ignore[no-any-return]
        before = cycle.get(cal.previous_trading_day(day)) if day > start else None
        return self._arbitrage_step(before or self._arbitrage_start(start), day, expiry, now)

    def _arbitrage_start(self, start: date) -> dict[str, float]:
        rng = random.Random(_seed(self.market.seed, start, "arbitrage"))
        first = self.program_day("KOSPI", start) or dict.fromkeys(_BASE_KEYS, 0)
        return {
            f"{side}_{unit}": first[f"arb_{side}_{unit}"] * rng.uniform(2.0, 8.0)
            for side in ("buy", "sell")
            for unit in ("qty", "amount")
        }

    def _arbitrage_step(
        self, bal: dict[str, float], day: date, expiry: date, now: datetime | None = None
    ) -> dict[str, int]:
        p = self.program_until("KOSPI", day, now) or dict.fromkeys(_BASE_KEYS, 0)
        out: dict[str, float] = {}
        for unit in ("qty", "amount"):
            buy, sell = p[f"arb_buy_{unit}"], p[f"arb_sell_{unit}"]
            opened = {"buy": _OPEN_SHARE * buy - (1 - _OPEN_SHARE) * sell}
            opened["sell"] = _OPEN_SHARE * sell - (1 - _OPEN_SHARE) * buy
            for side in ("buy", "sell"):
                out[f"{side}_{unit}"] = max(0.0, bal[f"{side}_{unit}"] + opened[side])
        if day == expiry and (now is None or cal.to_kst(now).time() >= cal.SESSION_CLOSE):
            keep = random.Random(_seed(self.market.seed, expiry, "rollover")).uniform(0.15, 0.45)
            out = {k: v * keep for k, v in out.items()}  # positions unwound at expiry, the rest rolled
        return {k: round(v) if k.endswith("qty") else round(v / 1e6) * 1_000_000 for k, v in out.items()}

    def _arbitrage_cycle(self, start: date, expiry: date) -> dict[date, dict[str, int]]:
        out: dict[date, dict[str, int]] = {}
        bal: dict[str, float] = self._arbitrage_start(start)
        for d in cal.trading_days(start, expiry):
            if self.program_day("KOSPI", d) is None:
                continue
            out[d] = self._arbitrage_step(bal, d, expiry)
            bal = {k: float(v) for k, v in out[d].items()}
        return out

    # --- KOSPI200 and the basis ------------------------------------------------------------
    def _basis_terms(self, day: date) -> tuple[float, float, random.Random]:
        """The day's carry (per point of the index), its basis offset, and the generator
        of its minutes' deviations."""
        rng = random.Random(_seed(self.market.seed, day, "basis"))
        return _CARRY * (expiry_on_or_after(day) - day).days / 365, 0.6 * rng.gauss(0, 1), rng

    def kospi200_session(self, day: date) -> list[tuple[float, float]]:
        """(KOSPI200 level, basis) at each minute of ``day``'s session; the deviation of the
        basis from carry and offset wanders through the day and is nil at the close."""

        def build() -> list[tuple[float, float]]:
            minutes = self.market.minutes(KOSPI200, day)
            carry, offset, rng = self._basis_terms(day)
            walk, w = [], 0.0
            for _ in minutes:
                w = 0.97 * w + 0.15 * rng.gauss(0, 1)
                walk.append(w)
            n = len(walk)
            return [
                (b.close, round(b.close * carry + offset + walk[i] - walk[-1] * (i + 1) / n, 2))
                for i, b in enumerate(minutes)
            ]

        return self._recent(("kospi200", day), build)  # type: ignore[no-any-return]

    def kospi200(self, day: date, now: datetime | None = None) -> tuple[float, float] | None:
        """(level, basis) at the close of ``day`` (its last minute's), or at ``now`` during
        its session."""
        if now is not None and cal.to_kst(now).date() == day:
            session = self.kospi200_session(day)[: len(self.market.minutes(KOSPI200, day, now))]
            return session[-1] if session else None
        bar = self.market.daily_bar(KOSPI200, day)
        if bar is None:
            return None
        carry, offset, _ = self._basis_terms(day)
        return bar.close, round(bar.close * carry + offset, 2)

    # --- stock lending ----------------------------------------------------------------------
    def lending_day(self, day: date) -> dict[str, int] | None:
        """Lending of all stocks on ``day``: ``new_qty``, ``repaid_qty``, ``balance_qty``
        (shares) and ``balance_amount`` (won); None when no stock has lending figures."""

        def build() -> dict[str, int] | None:
            keys = ("new_qty", "repaid_qty", "balance_qty", "balance_amount")
            total, seen = dict.fromkeys(keys, 0), False
            for code in self.stock_codes("ALL"):
                s = self.market.short_selling(code, day)
                if s is not None:
                    seen = True
                    for k in keys:
                        total[k] += s[f"lending_{k}"]
            return total if seen else None

        return self._kept(("lending", day), build)  # type: ignore[no-any-return]

    def lending_window(self, which: str, start: date, end: date) -> list[tuple[str, dict[str, int]]]:
        """Per stock of ``which`` with lending figures in ``[start, end]``: new and repaid
        shares over the window, the balance (shares) and its amount (won) on its last day."""
        out = []
        days = cal.trading_days(start, end)
        for code in self.stock_codes(which):
            rows = [s for d in days if (s := self.market.short_selling(code, d)) is not None]
            if rows:
                out.append(
                    (
                        code,
                        {
                            "new_qty": sum(s["lending_new_qty"] for s in rows),
                            "repaid_qty": sum(s["lending_repaid_qty"] for s in rows),
                            "balance_qty": rows[-1]["lending_balance_qty"],
                            "balance_amount": rows[-1]["lending_balance_amount"],
                        },
                    )
                )
        return out

    # --- one stock through the session and over a window ---------------------------------
    def investors_session(self, code: str, day: date) -> list[dict[str, tuple[int, int]]]:
        """(buy, sell) quantity per investor type through each minute of ``day``; the last
        minute is ``Market.investor_trades``, and institution sums its sub-types."""

        def build() -> list[dict[str, tuple[int, int]]]:
            trades = self.market.investor_trades(code, day)
            if trades is None:
                return []
            prof = self._profiles(code, day, "investors", 2 * len(_LEAVES))
            out = []
            for i in range(len(prof[0])):
                row = {
                    g: (round(trades[g][0] * prof[2 * k][i]), round(trades[g][1] * prof[2 * k + 1][i]))
                    for k, g in enumerate(_LEAVES)
                }
                buys, sells = (sum(row[g][side] for g in INSTITUTION_TYPES) for side in (0, 1))
                row["institution"] = (buys, sells)
                out.append(row)
            return out

        return self._recent(("investors", code, day), build)  # type: ignore[no-any-return]

    def program_stock_session(self, code: str, day: date) -> list[dict[str, int]]:
        """A stock's program trading through each minute of ``day`` (keys as
        ``Market.program_trading``); the last minute is the day's figures."""

        def build() -> list[dict[str, int]]:
            total = self.market.program_trading(code, day)
            if total is None:
                return []
            prof = self._profiles(code, day, "program", len(PROGRAM_SERIES))
            out = []
            for i in range(len(prof[0])):
                base = {}
                for s, p in zip(PROGRAM_SERIES, prof, strict=True):
                    base[f"{s}_qty"] = round(total[f"{s}_qty"] * p[i])
                    base[f"{s}_amount"] = round(total[f"{s}_amount"] * p[i])
                out.append(program_totals(base))
            return out

        return self._recent(("program_stock", code, day), build)  # type: ignore[no-any-return]

    def investor_window(self, code: str, start: date, end: date) -> InvestorWindow:
        """Net buying per investor type cumulated from ``start`` through each trading day to
        ``end``, and the investors' estimated average buy and sell prices over the window."""

        def build() -> InvestorWindow:
            acc = dict.fromkeys(INVESTORS, 0)
            cumulative: dict[date, dict[str, int]] = {}
            paid: dict[tuple[str, str], list[float]] = {}
            for d in cal.trading_days(start, end):
                trades, bar = self.market.investor_trades(code, d), self.market.daily_bar(code, d)
                if trades is None or bar is None:
                    continue
                vwap = bar.turnover / bar.volume
                for g, (buy, sell) in trades.items():
                    acc[g] += buy - sell
                    for side, q in (("buy", buy), ("sell", sell)):
                        got = paid.setdefault((g, side), [0.0, 0.0])
                        got[0] += q * vwap
                        got[1] += q
                cumulative[d] = dict(acc)
            avg = {k: (v[0] / v[1] if v[1] else None) for k, v in paid.items()}
            return InvestorWindow(cumulative, avg)

        return self._recent(("investor_window", code, start, end), build)  # type: ignore[no-any-return]


_FLOWS: WeakKeyDictionary[Market, Flows] = WeakKeyDictionary()
_FLOWS_LOCK = threading.Lock()


def flows(market: Market) -> Flows:
    """The flows of ``market`` (one cached instance per market)."""
    got = _FLOWS.get(market)
    if got is None:
        with _FLOWS_LOCK:
            got = _FLOWS.get(market) or _FLOWS.setdefault(market, Flows(market))
    return got
