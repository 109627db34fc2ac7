"""The simulator's synthetic market: calendar, universe, bars and flows, and their consistency."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

import pytest

from schemas.calendar import (
    HOLIDAYS,
    KST,
    SESSION_BARS,
    is_trading_day,
    last_trading_day_on_or_before,
    next_trading_day,
    previous_trading_day,
    session_minutes,
    trading_days,
)
from simulator.market import (
    INSTITUTION_TYPES,
    MINUTE_SCOPES,
    TICK_SCOPES,
    Bar,
    Market,
    on_grid,
    resample_minutes,
    resample_ticks,
    tick_size,
)
from simulator.universe import Universe, strip_venue

DAY = date(2025, 3, 14)  # a Friday
DAYS = (date(2016, 11, 10), date(2021, 6, 30), DAY)
CODES = ("005930", "000660", "247540", "373220", "001", "101", "201", "M04020000", "M04020100")


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe.default()


@pytest.fixture(scope="module")
def market(universe: Universe) -> Market:
    return Market(universe)


def synthetic_code(universe: Universe) -> str:
    return next(i.code for i in universe.stocks if i.code.startswith("9") and i.listed.year < 2010)


def aggregate(bars: list[Bar]) -> tuple[float, float, float, float, int, int]:
    return (
        bars[0].open, max(b.high for b in bars), min(b.low for b in bars), bars[-1].close,
        sum(b.volume for b in bars), sum(b.turnover for b in bars),
    )  # fmt: skip


def ohlcvt(bar: Bar) -> tuple[float, float, float, float, int, int]:
    return bar.open, bar.high, bar.low, bar.close, bar.volume, bar.turnover


# --- calendar ---------------------------------------------------------------------------


def test_weekends_and_holidays_are_not_trading_days() -> None:
    assert all(d.weekday() < 5 for d in HOLIDAYS)
    assert not is_trading_day(date(2025, 3, 15)) and not is_trading_day(date(2025, 3, 16))
    for d in (
        "2025-01-01",
        "2025-01-28",
        "2025-01-29",
        "2025-01-30",
        "2024-09-17",
        "2024-12-25",
        "2023-12-29",
        "2024-02-12",
        "2025-10-08",
    ):
        assert not is_trading_day(date.fromisoformat(d)), d
    assert is_trading_day(DAY) and is_trading_day(date(2025, 1, 2))
    days = trading_days(date(2025, 1, 1), date(2025, 1, 31))
    assert days == sorted(days) and days[0] == date(2025, 1, 2) and days[-1] == date(2025, 1, 31)
    assert date(2025, 1, 27) not in days and len(days) == 18
    assert trading_days(DAY, DAY) == [DAY]


def test_neighbouring_trading_days_skip_weekends_and_holidays() -> None:
    assert previous_trading_day(date(2025, 3, 17)) == DAY
    assert next_trading_day(DAY) == date(2025, 3, 17)
    assert next_trading_day(date(2025, 1, 24)) == date(2025, 1, 31)  # Seollal week
    assert last_trading_day_on_or_before(date(2025, 3, 16)) == DAY
    assert last_trading_day_on_or_before(DAY) == DAY


def test_session_minutes_are_390_end_labels_in_kst() -> None:
    labels = session_minutes(DAY)
    assert len(labels) == SESSION_BARS == 390
    assert labels[0] == datetime(2025, 3, 14, 9, 1, tzinfo=KST)
    assert labels[-1] == datetime(2025, 3, 14, 15, 30, tzinfo=KST)
    assert all(b - a == timedelta(minutes=1) for a, b in pairwise(labels))
    assert session_minutes(date(2025, 3, 15)) == []


@pytest.mark.parametrize(
    ("now", "count"),
    [
        (datetime(2025, 3, 14, 8, 30, tzinfo=KST), 0),
        (datetime(2025, 3, 14, 9, 0, 59, tzinfo=KST), 0),
        (datetime(2025, 3, 14, 9, 1, tzinfo=KST), 1),
        (datetime(2025, 3, 14, 13, 20, 30, tzinfo=KST), 260),
        (datetime(2025, 3, 14, 13, 20), 260),  # naive: KST
        (datetime(2025, 3, 14, 4, 20, 30, tzinfo=UTC), 260),  # 13:20:30 KST
        (datetime(2025, 3, 14, 18, 0, tzinfo=KST), 390),
        (datetime(2025, 3, 13, 14, 0, tzinfo=KST), 0),
        (datetime(2025, 3, 17, 9, 30, tzinfo=KST), 390),
    ],
)
def test_session_minutes_truncate_at_now(now: datetime, count: int) -> None:
    labels = session_minutes(DAY, now)
    assert labels == session_minutes(DAY)[:count]


# --- universe ---------------------------------------------------------------------------


def test_universe_has_the_real_names_and_sector_indices(universe: Universe) -> None:
    assert universe.get("005930").name == "삼성전자" and universe.get("005930").market == "KOSPI"
    assert universe.get("000660").name == "SK하이닉스"
    assert universe.get("247540").market == "KOSDAQ"
    assert universe.get("001").kind == "index" and universe.get("001").name == "종합(KOSPI)"
    assert universe.get("101").name == "종합(KOSDAQ)" and universe.get("201").name == "KOSPI200"
    assert {g.code for g in universe.gold} == {"M04020000", "M04020100"}
    assert len(universe.stocks) == 300 and len(universe.by_market("KOSPI")) == 200
    assert all(i.sector in universe for i in universe.stocks)
    synthetic = [i.code for i in universe.stocks if i.code.startswith("9")]
    assert len(synthetic) == 300 - 31 and all(len(c) == 6 and c.isdigit() for c in synthetic)
    assert len({i.name for i in universe.stocks}) == 300
    late = [i for i in universe.stocks if i.code.startswith("9") and i.listed.year >= 2019]
    assert 3 <= len(late) <= 30
    assert Universe.default() is universe


def test_unknown_codes_raise_key_error(universe: Universe, market: Market) -> None:
    assert "999999" not in universe and "005930_NX" not in universe
    for call in (
        lambda: universe.get("005930_NX"),
        lambda: market.daily("999999", DAY, DAY),
        lambda: market.daily_bar("999999", DAY),
        lambda: market.prev_close("999999", DAY),
        lambda: market.minutes("999999", DAY),
        lambda: market.ticks("999999", DAY),
        lambda: market.weekly("999999", DAY, DAY),
        lambda: market.investor_flows("999999", DAY),
        lambda: market.program_trading("999999", DAY),
        lambda: market.short_selling("999999", DAY),
    ):
        with pytest.raises(KeyError):
            call()
    assert strip_venue("005930_NX") == strip_venue("005930_AL") == strip_venue("005930") == "005930"


# --- daily bars ---------------------------------------------------------------------------


def test_two_fresh_markets_agree_and_the_seed_matters(universe: Universe) -> None:
    a, b, other = Market(universe), Market(universe), Market(universe, seed=8)
    code = synthetic_code(universe)
    for c in ("005930", "001", code):
        assert a.daily(c, date(2024, 1, 1), DAY) == b.daily(c, date(2024, 1, 1), DAY)
    assert a.minutes("005930", DAY) == b.minutes("005930", DAY)
    assert a.ticks("001", DAY) == b.ticks("001", DAY)
    assert a.investor_trades(code, DAY) == b.investor_trades(code, DAY)
    assert a.program_trading(code, DAY) == b.program_trading(code, DAY)
    assert a.daily("005930", DAY, DAY) != other.daily("005930", DAY, DAY)


_DIGEST = """
import hashlib
from datetime import date
from simulator.market import Market
from simulator.universe import Universe
m = Market(Universe.default())
d = date(2025, 3, 14)
parts = [m.daily("005930", date(2025, 1, 1), d), m.minutes("001", d)]
parts += [m.ticks("247540", d)[:50], m.investor_trades("000660", d), m.universe.stocks]
print(hashlib.sha256(repr(parts).encode()).hexdigest())
"""


def test_the_market_is_the_same_in_every_process(market: Market) -> None:
    """Seeds come from blake2b, not hash(), which differs per process."""
    d = DAY
    parts: list[object] = [market.daily("005930", date(2025, 1, 1), d), market.minutes("001", d)]
    parts += [market.ticks("247540", d)[:50], market.investor_trades("000660", d), market.universe.stocks]
    here = hashlib.sha256(repr(parts).encode()).hexdigest()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == here


def test_a_day_does_not_depend_on_epoch_or_what_was_asked_before(universe: Universe, market: Market) -> None:
    late = Market(universe, epoch=date(2020, 1, 2))
    assert late.daily("005930", date(2021, 1, 1), DAY) == market.daily("005930", date(2021, 1, 1), DAY)
    assert late.daily("005930", date(2015, 1, 1), date(2020, 1, 31))[0].day == date(2020, 1, 2)


def test_stock_prices_are_on_the_tick_grid(universe: Universe, market: Market) -> None:
    for code in ("005930", "000660", "207940", synthetic_code(universe), universe.stocks[-1].code):
        for bar in market.daily(code, date(2010, 1, 1), DAY):
            assert all(on_grid(p) for p in (bar.open, bar.high, bar.low, bar.close)), bar
        for bar in market.minutes(code, DAY):
            assert all(on_grid(p) for p in (bar.open, bar.high, bar.low, bar.close)), bar
    for bar in market.daily("M04020000", date(2020, 1, 1), DAY):
        assert all(p % 10 == 0 for p in (bar.open, bar.high, bar.low, bar.close))
    for bar in market.daily("001", date(2020, 1, 1), DAY):
        assert all(p == round(p, 2) for p in (bar.open, bar.high, bar.low, bar.close))


KRX_TICKS = [
    (1_999, 1), (2_000, 5), (4_995, 5), (5_000, 10), (19_990, 10), (20_000, 50), (49_950, 50), (50_000, 100),
    (199_900, 100), (200_000, 500), (499_500, 500), (500_000, 1_000), (1_234_000, 1_000),
]  # fmt: skip


@pytest.mark.parametrize(("price", "tick"), KRX_TICKS)
def test_tick_size_follows_the_krx_table(price: int, tick: int) -> None:
    assert tick_size(price) == tick
    assert on_grid(price) and not on_grid(price + tick / 2)


@pytest.mark.parametrize("code", CODES)
def test_daily_bars_are_trading_days_with_ordered_prices(market: Market, code: str) -> None:
    bars = market.daily(code, date(2015, 1, 1), date(2025, 12, 31))
    assert bars and all(is_trading_day(b.day) for b in bars)
    assert [b.day for b in bars] == sorted({b.day for b in bars})
    for b in bars:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high and b.low > 0, b
        assert b.ts is None and b.volume > 0 and b.turnover > 0
    assert all(market.prev_close(code, b.day) == a.close for a, b in pairwise(bars))
    assert all(abs(b.open / a.close - 1) < 0.02 for a, b in pairwise(bars))  # opens gap from the last close
    moves = [math.log(b.close / a.close) for a, b in pairwise(bars)]
    vol = math.sqrt(sum(m * m for m in moves) / len(moves))
    assert 0.004 < vol < 0.04


def test_volumes_are_plausible(market: Market) -> None:
    volumes = sorted(b.volume for b in market.daily("005930", date(2024, 1, 1), date(2024, 12, 31)))
    assert 5_000_000 < volumes[len(volumes) // 2] < 40_000_000
    bar = market.daily_bar("005930", DAY)
    assert bar is not None and bar.low * bar.volume <= bar.turnover <= bar.high * bar.volume


def test_listing_date_and_epoch_bound_the_series(market: Market) -> None:
    bars = market.daily("373220", date(2021, 1, 1), date(2022, 3, 31))
    assert bars[0].day == date(2022, 1, 27)
    assert market.daily_bar("373220", date(2022, 1, 26)) is None
    assert market.minutes("373220", date(2022, 1, 26)) == []
    assert market.investor_flows("373220", date(2022, 1, 26)) is None
    assert market.prev_close("373220", date(2022, 1, 27)) is None
    assert market.daily("005930", date(2005, 1, 1), date(2010, 1, 31))[0].day == date(2010, 1, 4)
    assert market.daily("005930", date(2025, 3, 15), date(2025, 3, 16)) == []
    assert market.daily_bar("005930", date(2025, 3, 15)) is None


# --- intraday -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("day", DAYS)
def test_minutes_reproduce_the_daily_bar_exactly(market: Market, code: str, day: date) -> None:
    daily = market.daily_bar(code, day)
    minutes = market.minutes(code, day)
    if daily is None:
        assert minutes == []
        return
    labels = session_minutes(day)
    assert [m.ts for m in minutes] == [*labels[:380], labels[-1]]  # no bars 15:21 .. 15:29: the auction
    assert minutes[-1].open == minutes[-1].high == minutes[-1].low == minutes[-1].close == daily.close
    assert aggregate(minutes) == ohlcvt(daily)
    for m in minutes:
        assert m.low <= min(m.open, m.close) <= max(m.open, m.close) <= m.high and m.volume >= 4
    assert all(a.close == b.open for a, b in pairwise(minutes))


def test_a_partial_session_is_a_prefix_of_the_full_day(market: Market) -> None:
    now = datetime(2025, 3, 14, 13, 20, 30, tzinfo=KST)
    full, partial = market.minutes("005930", DAY), market.minutes("005930", DAY, now)
    assert partial == full[:260]
    assert market.minutes("005930", DAY, datetime(2025, 3, 14, 8, 59, tzinfo=KST)) == []
    bar = market.daily_bar("005930", DAY, now)
    assert bar is not None and ohlcvt(bar) == aggregate(partial)
    bars = market.daily("005930", date(2025, 3, 1), date(2025, 3, 31), now)
    assert bars[-1] == bar and bars[-2] == market.daily_bar("005930", date(2025, 3, 13))
    assert market.daily("005930", date(2025, 3, 1), date(2025, 3, 31), datetime(2025, 3, 14, 8, 0))[
        -1
    ].day == (date(2025, 3, 13))
    ticks = market.ticks("005930", DAY, now)
    assert ticks and all(t.ts is not None and t.ts <= now for t in ticks)
    assert ticks == market.ticks("005930", DAY)[: len(ticks)]


@pytest.mark.parametrize("n", MINUTE_SCOPES)
def test_resampled_minutes_aggregate_to_the_daily_bar(market: Market, n: int) -> None:
    daily = market.daily_bar("000660", DAY)
    bars = resample_minutes(market.minutes("000660", DAY), n)
    groups = {(m - 1) // n for m in [*range(1, 381), 390]}  # 09:01 .. 15:20 and the 15:30 auction
    assert daily is not None and len(bars) == len(groups)
    assert aggregate(bars) == ohlcvt(daily)
    assert bars[-1].ts == datetime(2025, 3, 14, 15, 30, tzinfo=KST)
    if n == 5:
        assert bars[0].ts == datetime(2025, 3, 14, 9, 5, tzinfo=KST)
        assert ohlcvt(bars[1]) == aggregate(market.minutes("000660", DAY)[5:10])


def test_resampling_restarts_each_day_and_labels_the_last_minute(market: Market) -> None:
    day2 = next_trading_day(DAY)
    both = market.minutes("001", DAY) + market.minutes("001", day2)
    bars = resample_minutes(both, 60)
    assert len(bars) == 14 and [b.day for b in bars].count(day2) == 7
    partial = market.minutes("001", DAY, datetime(2025, 3, 14, 10, 7, tzinfo=KST))
    assert [b.ts.time() for b in resample_minutes(partial, 30) if b.ts] == [
        time(9, 30),
        time(10, 0),
        time(10, 7),
    ]


@pytest.mark.parametrize("code", ["005930", "247540", "001", "M04020100"])
def test_ticks_reproduce_each_minute(market: Market, code: str) -> None:
    minutes, ticks = market.minutes(code, DAY), market.ticks(code, DAY)
    by_minute: dict[datetime, list[Bar]] = defaultdict(list)
    for t in ticks:
        assert t.ts is not None and t.open == t.high == t.low == t.close and t.volume >= 1
        closing = t.ts.time() == time(15, 30)  # the closing auction's print is the 15:30 bar
        by_minute[t.ts if closing else t.ts.replace(second=0) + timedelta(minutes=1)].append(t)
    assert [t.ts for t in ticks] == sorted(t.ts for t in ticks if t.ts)
    assert list(by_minute) == [m.ts for m in minutes]
    for m in minutes:
        assert m.ts is not None
        group = by_minute[m.ts]
        assert 1 <= len(group) <= 6
        assert aggregate(group) == ohlcvt(m)
    daily = market.daily_bar(code, DAY)
    assert daily is not None
    for n in TICK_SCOPES:
        assert aggregate(resample_ticks(ticks, n)) == ohlcvt(daily)
    assert len(resample_ticks(ticks, 10)) == math.ceil(len(ticks) / 10)


# --- periods ------------------------------------------------------------------------------


@pytest.mark.parametrize("period", ["weekly", "monthly", "yearly"])
def test_periods_aggregate_the_daily_bars(market: Market, period: str) -> None:
    start, end = date(2021, 3, 10), date(2025, 3, 12)
    key = {
        "weekly": lambda d: d.isocalendar()[:2],
        "monthly": lambda d: (d.year, d.month),
        "yearly": lambda d: d.year,
    }[period]
    groups: dict[object, list[Bar]] = defaultdict(list)
    for b in market.daily("005930", date(2021, 1, 1), end):
        groups[key(b.day)].append(b)
    expected = [g for g in groups.values() if g[-1].day >= start]
    bars = getattr(market, period)("005930", start, end)
    assert [b.day for b in bars] == [g[0].day for g in expected]
    assert [ohlcvt(b) for b in bars] == [aggregate(g) for g in expected]
    assert bars[-1].day <= end and all(b.ts is None for b in bars)


# --- flows --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["005930", "247540", "001"])
@pytest.mark.parametrize("day", [date(2019, 5, 2), DAY])
def test_investor_nets_balance_and_trades_match(market: Market, code: str, day: date) -> None:
    nets, trades = market.investor_flows(code, day), market.investor_trades(code, day)
    bar = market.daily_bar(code, day)
    assert nets is not None and trades is not None and bar is not None
    top = ("individual", "foreign", "institution", "government", "other_corp", "domestic_foreign")
    assert sum(nets[k] for k in top) == 0
    assert nets["institution"] == sum(nets[k] for k in INSTITUTION_TYPES)
    assert all(abs(v) < 0.4 * bar.volume for v in nets.values())
    assert set(trades) == set(nets)
    for k, (buy, sell) in trades.items():
        assert buy - sell == nets[k] and 0 <= buy <= bar.volume and 0 <= sell <= bar.volume
    assert sum(trades[k][0] for k in top) == sum(trades[k][1] for k in top) == bar.volume


def test_program_trading_adds_up(market: Market) -> None:
    p, bar = market.program_trading("000660", DAY), market.daily_bar("000660", DAY)
    assert p is not None and bar is not None
    for unit in ("qty", "amount"):
        for side in ("buy", "sell"):
            assert p[f"{side}_{unit}"] == p[f"arb_{side}_{unit}"] + p[f"nonarb_{side}_{unit}"]
        assert p[f"net_{unit}"] == p[f"buy_{unit}"] - p[f"sell_{unit}"]
    assert p["buy_qty"] + p["sell_qty"] < bar.volume
    assert p["buy_amount"] == pytest.approx(p["buy_qty"] * bar.turnover / bar.volume, rel=0.01)
    assert market.program_trading("000660", date(2025, 3, 15)) is None


def test_lending_balance_follows_its_recurrence(market: Market) -> None:
    days = trading_days(date(2024, 11, 1), DAY)
    rows = [market.short_selling("058470", d) for d in days]
    assert all(r is not None for r in rows)
    for before, after, day in zip(rows, rows[1:], days[1:], strict=False):
        assert before is not None and after is not None
        bar = market.daily_bar("058470", day)
        assert bar is not None and 0 <= after["short_qty"] <= 0.15 * bar.volume
        assert after["lending_balance_qty"] == (
            before["lending_balance_qty"] + after["lending_new_qty"] - after["lending_repaid_qty"]
        )
        assert after["lending_balance_qty"] >= 0 and after["short_balance_qty"] >= 0
        assert abs(after["short_balance_qty"] - before["short_balance_qty"]) <= max(after["short_qty"], 1) * 3
    assert market.short_selling("058470", date(2025, 3, 15)) is None
    with pytest.raises(ValueError):
        market.short_selling("001", DAY)


def test_foreign_holding_moves_by_the_foreign_net(market: Market, universe: Universe) -> None:
    days = trading_days(date(2025, 2, 1), DAY)
    held = [market.foreign_holding("017670", d) for d in days]
    for before, after, day in zip(held, held[1:], days[1:], strict=False):
        assert before is not None and after is not None
        assert after["limit_qty"] == universe.get("017670").shares * 49 // 100  # a telecom: 49%
        assert 0 <= after["holding_qty"] <= after["limit_qty"]
        nets = market.investor_flows("017670", day)
        assert nets is not None
        if 0 < after["holding_qty"] < after["limit_qty"]:
            assert after["holding_qty"] - before["holding_qty"] == nets["foreign"]
        assert 0 <= after["ratio_bp"] <= 4_900
