"""KRX trading calendar: trading days and the 1-minute session grid, in Korea time (KST).

The holiday table is an approximation of the KRX calendar for 2010-2027: the public
holidays (lunar ones from a table), substitute holidays by the rules in force each year,
Labour Day, election days, announced temporary holidays and the year-end closing (the
last weekday of December). Shortened sessions (the year's first day and the CSAT day open
an hour late) are not modelled: every trading day runs 09:00-15:30.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "HOLIDAYS",
    "KST",
    "SESSION_BARS",
    "SESSION_CLOSE",
    "SESSION_OPEN",
    "TZ_NAME",
    "is_trading_day",
    "last_trading_day_on_or_before",
    "next_trading_day",
    "previous_trading_day",
    "session_minutes",
    "to_kst",
    "trading_days",
]

TZ_NAME = "Asia/Seoul"  # the one time zone: the Korean market's; its name for Polars and SQL
KST = ZoneInfo(TZ_NAME)
SESSION_OPEN = time(9, 0)
SESSION_CLOSE = time(15, 30)
SESSION_BARS = 390  # 09:01 .. 15:30, each bar labelled by its end minute

_FIRST_YEAR, _LAST_YEAR = 2010, 2027

# Lunar holidays (the day itself; Seollal and Chuseok are closed the day before and after too).
_SEOLLAL = {
    2010: (2, 14), 2011: (2, 3), 2012: (1, 23), 2013: (2, 10), 2014: (1, 31), 2015: (2, 19),
    2016: (2, 8), 2017: (1, 28), 2018: (2, 16), 2019: (2, 5), 2020: (1, 25), 2021: (2, 12),
    2022: (2, 1), 2023: (1, 22), 2024: (2, 10), 2025: (1, 29), 2026: (2, 17), 2027: (2, 7),
}  # fmt: skip
_CHUSEOK = {
    2010: (9, 22), 2011: (9, 12), 2012: (9, 30), 2013: (9, 19), 2014: (9, 8), 2015: (9, 27),
    2016: (9, 15), 2017: (10, 4), 2018: (9, 24), 2019: (9, 13), 2020: (10, 1), 2021: (9, 21),
    2022: (9, 10), 2023: (9, 29), 2024: (9, 17), 2025: (10, 6), 2026: (9, 25), 2027: (9, 15),
}  # fmt: skip
_BUDDHA = {
    2010: (5, 21), 2011: (5, 10), 2012: (5, 28), 2013: (5, 17), 2014: (5, 6), 2015: (5, 25),
    2016: (5, 14), 2017: (5, 3), 2018: (5, 22), 2019: (5, 12), 2020: (4, 30), 2021: (5, 19),
    2022: (5, 8), 2023: (5, 27), 2024: (5, 15), 2025: (5, 5), 2026: (5, 24), 2027: (5, 13),
}  # fmt: skip
# Election days and one-off temporary holidays.
_EXTRA = (
    "2010-06-02", "2012-04-11", "2012-12-19", "2014-06-04", "2015-08-14", "2016-04-13",
    "2016-05-06", "2017-05-09", "2017-10-02", "2018-06-13", "2020-04-15", "2020-08-17",
    "2022-03-09", "2022-06-01", "2023-10-02", "2024-04-10", "2024-10-01", "2025-01-27",
    "2025-06-03", "2026-06-03",
)  # fmt: skip


def _next_free(d: date, taken: set[date]) -> date:
    """The first weekday after ``d`` that is not already a holiday."""
    d += timedelta(days=1)
    while d.weekday() >= 5 or d in taken:
        d += timedelta(days=1)
    return d


def _year_holidays(y: int) -> set[date]:
    fixed = [date(y, 1, 1), date(y, 3, 1), date(y, 5, 1), date(y, 5, 5), date(y, 6, 6), date(y, 8, 15)]
    fixed += [date(y, 10, 3), date(y, 12, 25)] + ([date(y, 10, 9)] if y >= 2013 else [])
    buddha = date(y, *_BUDDHA[y])
    blocks = [[date(y, *m) + timedelta(days=k) for k in (-1, 0, 1)] for m in (_SEOLLAL[y], _CHUSEOK[y])]
    days = {*fixed, buddha, *blocks[0], *blocks[1]}
    days |= {date.fromisoformat(s) for s in _EXTRA if s.startswith(str(y))}
    if y >= 2014:  # substitute holidays
        others = {*fixed, buddha}
        for block in blocks:
            if any(d.weekday() == 6 or d in others for d in block):
                days.add(_next_free(block[-1], days))
        children = date(y, 5, 5)
        if children.weekday() >= 5 or children == buddha:
            days.add(_next_free(children, days))
        weekend_rule = [(2021, date(y, m, d)) for m, d in ((3, 1), (8, 15), (10, 3), (10, 9))]
        weekend_rule += [(2023, buddha), (2023, date(y, 12, 25))]
        for since, d in weekend_rule:
            if y >= since and d.weekday() >= 5:
                days.add(_next_free(d, days))
    year_end = date(y, 12, 31)
    while year_end.weekday() >= 5:
        year_end -= timedelta(days=1)
    days.add(year_end)
    return {d for d in days if d.weekday() < 5 and d.year == y}


HOLIDAYS: frozenset[date] = frozenset(
    d for y in range(_FIRST_YEAR, _LAST_YEAR + 1) for d in _year_holidays(y)
)


def is_trading_day(d: date) -> bool:
    """True on weekdays that are not KRX holidays."""
    return d.weekday() < 5 and d not in HOLIDAYS


def trading_days(start: date, end: date) -> list[date]:
    """Trading days in ``[start, end]``, ascending."""
    out: list[date] = []
    d, one = start, timedelta(days=1)
    while d <= end:
        if is_trading_day(d):
            out.append(d)
        d += one
    return out


def previous_trading_day(d: date) -> date:
    """The last trading day strictly before ``d``."""
    d -= timedelta(days=1)
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def next_trading_day(d: date) -> date:
    """The first trading day strictly after ``d``."""
    d += timedelta(days=1)
    while not is_trading_day(d):
        d += timedelta(days=1)
    return d


def last_trading_day_on_or_before(d: date) -> date:
    """``d`` itself if it is a trading day, else the previous trading day."""
    return d if is_trading_day(d) else previous_trading_day(d)


def to_kst(now: datetime) -> datetime:
    """``now`` in KST; a naive datetime is taken to be KST already."""
    return now.replace(tzinfo=KST) if now.tzinfo is None else now.astimezone(KST)


@functools.lru_cache(maxsize=1024)
def _full_session(d: date) -> tuple[datetime, ...]:
    base = datetime.combine(d, SESSION_OPEN, tzinfo=KST)
    return tuple(base + timedelta(minutes=k) for k in range(1, SESSION_BARS + 1))


def session_minutes(d: date, now: datetime | None = None) -> list[datetime]:
    """End-minute labels (KST) of day ``d``'s 1-minute bars, 09:01 .. 15:30.

    Empty on a non-trading day. With ``now`` (naive = KST): nothing if ``now`` is before
    ``d`` or before 09:01 on ``d``, the labels ``<= now`` during the session of ``d``,
    the whole day if ``now`` is later.
    """
    if not is_trading_day(d):
        return []
    full = _full_session(d)
    if now is None:
        return list(full)
    now = to_kst(now)
    if now.date() < d:
        return []
    if now.date() > d:
        return list(full)
    return list(full[: bisect_right(full, now)])
