"""The simulator's instruments: well-known KRX stocks, synthetic fillers, sector indices and gold.

Prices are anchored levels (``base_price`` is the model's trend level at the market
model's anchor date, early 2025), not quotes. Everything is deterministic in the seed.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["VENUE_SUFFIXES", "Instrument", "Universe", "strip_venue"]

VENUE_SUFFIXES = ("_NX", "_AL")  # Kiwoom: NXT venue, SOR (integrated) venue


@dataclass(frozen=True)
class Instrument:
    """One tradable or quoted symbol."""

    code: str
    name: str
    market: str  # "KOSPI" | "KOSDAQ" | "INDEX" | "GOLD"
    kind: str  # "stock" | "index" | "gold"
    base_price: float  # won (stocks, gold per gram) or index points
    listed: date
    shares: int  # listed shares; for an index the constituents' total; 0 for gold
    sector: str  # index code the stock belongs to; "" for indices and gold


def strip_venue(code: str) -> str:
    """``005930_NX`` / ``005930_AL`` -> ``005930``; other codes unchanged."""
    for suffix in VENUE_SUFFIXES:
        if code.endswith(suffix):
            return code[: -len(suffix)]
    return code


# code, name, base price (won), listed, shares, sector index
_REAL_KOSPI = [
    ("005930", "삼성전자", 70_000, "1975-06-11", 5_969_782_550, "013"),
    ("000660", "SK하이닉스", 180_000, "1996-12-26", 728_002_365, "013"),
    ("373220", "LG에너지솔루션", 350_000, "2022-01-27", 234_000_000, "013"),
    ("207940", "삼성바이오로직스", 800_000, "2016-11-10", 71_174_000, "009"),
    ("005380", "현대차", 210_000, "1974-06-28", 209_416_191, "015"),
    ("000270", "기아", 95_000, "1973-07-21", 397_672_632, "015"),
    ("068270", "셀트리온", 180_000, "2005-07-19", 216_931_000, "009"),
    ("035420", "NAVER", 200_000, "2002-10-29", 158_437_008, "026"),
    ("035720", "카카오", 45_000, "1999-11-11", 442_000_000, "026"),
    ("051910", "LG화학", 300_000, "2001-04-25", 70_592_343, "008"),
    ("006400", "삼성SDI", 300_000, "1979-02-27", 68_764_530, "013"),
    ("005490", "POSCO홀딩스", 350_000, "1988-06-10", 84_571_230, "011"),
    ("105560", "KB금융", 80_000, "2008-10-10", 393_528_000, "021"),
    ("055550", "신한지주", 50_000, "2001-09-10", 509_604_000, "021"),
    ("012330", "현대모비스", 240_000, "1989-09-05", 93_000_000, "015"),
    ("028260", "삼성물산", 130_000, "2014-12-18", 169_976_000, "026"),
    ("066570", "LG전자", 90_000, "2002-04-22", 163_647_814, "013"),
    ("003550", "LG", 75_000, "1970-02-13", 157_300_000, "021"),
    ("017670", "SK텔레콤", 55_000, "1989-11-07", 214_790_000, "020"),
    ("030200", "KT", 40_000, "1998-12-23", 252_000_000, "020"),
    ("039490", "키움증권", 120_000, "2004-12-13", 26_000_000, "021"),
]
# ETFs and ELWs that the reference's own examples ask for: code, name, price, listed, units, market
_FUNDS = [
    ("069500", "KODEX 200", 35_000, "2002-10-14", 150_000_000, "ETF"),
    ("102110", "TIGER 200", 35_000, "2008-04-03", 80_000_000, "ETF"),
    ("57JBHH", "키움JBHH삼성전자콜", 500, "2024-06-03", 20_000_000, "ELW"),
]
_REAL_KOSDAQ = [
    ("247540", "에코프로비엠", 180_000, "2019-03-05", 97_801_344, "101"),
    ("086520", "에코프로", 90_000, "2007-07-25", 133_138_340, "101"),
    ("196170", "알테오젠", 350_000, "2014-12-12", 53_000_000, "101"),
    ("028300", "HLB", 70_000, "1996-11-01", 130_000_000, "101"),
    ("263750", "펄어비스", 35_000, "2017-09-14", 64_000_000, "102"),
    ("293490", "카카오게임즈", 18_000, "2020-09-10", 83_000_000, "102"),
    ("041510", "에스엠", 80_000, "2000-04-27", 23_800_000, "102"),
    ("035900", "JYP Ent.", 65_000, "2001-08-30", 35_500_000, "102"),
    ("357780", "솔브레인", 250_000, "2020-07-22", 7_780_000, "101"),
    ("058470", "리노공업", 200_000, "2001-12-18", 15_242_370, "101"),
]
# code, name, base level, base date, constituents' total shares
_INDICES = [
    ("001", "종합(KOSPI)", 2_500.0, "1980-01-04", 60_000_000_000),
    ("002", "대형주", 2_450.0, "1980-01-04", 20_000_000_000),
    ("003", "중형주", 2_700.0, "1980-01-04", 12_000_000_000),
    ("004", "소형주", 2_000.0, "1980-01-04", 28_000_000_000),
    ("005", "음식료업", 3_500.0, "1980-01-04", 1_200_000_000),
    ("008", "화학", 4_500.0, "1980-01-04", 4_000_000_000),
    ("009", "의약품", 15_000.0, "1980-01-04", 2_500_000_000),
    ("011", "철강금속", 4_200.0, "1980-01-04", 2_000_000_000),
    ("013", "전기전자", 25_000.0, "1980-01-04", 9_000_000_000),
    ("015", "운수장비", 1_900.0, "1980-01-04", 3_000_000_000),
    ("020", "통신업", 400.0, "1980-01-04", 1_000_000_000),
    ("021", "금융업", 600.0, "1980-01-04", 8_000_000_000),
    ("026", "서비스업", 1_600.0, "1980-01-04", 6_000_000_000),
    ("101", "종합(KOSDAQ)", 800.0, "1996-07-01", 45_000_000_000),
    ("102", "기타서비스", 3_000.0, "1996-07-01", 5_000_000_000),
    ("201", "KOSPI200", 330.0, "1994-06-15", 15_000_000_000),
]
_GOLD = [
    ("M04020000", "금 99.99_1kg", 130_000.0, "2014-03-24"),
    ("M04020100", "미니금 99.99_100g", 130_500.0, "2021-03-29"),
]
_SYLLABLES = "한대신동성우태광세진영일화경미보선유정코삼현남서국흥아금"
# suffix -> sector index (KOSPI, KOSDAQ)
_SUFFIXES = {
    "전자": ("013", "101"), "반도체": ("013", "101"), "바이오": ("009", "101"), "제약": ("009", "101"),
    "화학": ("008", "101"), "소재": ("008", "101"), "홀딩스": ("021", "101"), "금융": ("021", "102"),
    "식품": ("005", "102"), "통신": ("020", "102"), "중공업": ("015", "101"), "모터스": ("015", "101"),
    "철강": ("011", "101"), "건설": ("026", "102"), "엔터": ("026", "102"), "테크": ("013", "101"),
}  # fmt: skip


class Universe:
    """The instruments the simulator quotes, by code."""

    def __init__(
        self,
        stocks: Iterable[Instrument],
        indices: Iterable[Instrument],
        gold: Iterable[Instrument],
        funds: Iterable[Instrument] = (),
    ) -> None:
        self.stocks = tuple(stocks)
        self.indices = tuple(indices)
        self.gold = tuple(gold)
        self.funds = tuple(funds)  # ETFs and ELWs: priced like stocks, listed apart from them
        everything = (*self.stocks, *self.indices, *self.gold, *self.funds)
        self._by_code = {i.code: i for i in everything}
        if len(self._by_code) != len(everything):
            raise ValueError("duplicate instrument codes")

    @staticmethod
    def default(n_stocks: int = 300, seed: int = 7) -> Universe:
        """The standard universe (cached): the real names above plus synthetic fillers."""
        return _default(n_stocks, seed)

    strip_venue = staticmethod(strip_venue)

    def get(self, code: str) -> Instrument:
        """The instrument for ``code`` (no venue suffix); KeyError if unknown."""
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"unknown instrument code {code!r}") from None

    def by_market(self, market: str) -> list[Instrument]:
        """Instruments of one market ("KOSPI", "KOSDAQ", "INDEX", "GOLD"), in universe order."""
        return [i for i in self._by_code.values() if i.market == market]

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)


def _real(rows: list[tuple[str, str, int, str, int, str]], market: str) -> list[Instrument]:
    return [
        Instrument(code, name, market, "stock", float(price), date.fromisoformat(lst), shares, sector)
        for code, name, price, lst, shares, sector in rows
    ]


def _synthetic(rng: random.Random, market: str, code: str, names: set[str]) -> Instrument:
    suffix = rng.choice(sorted(_SUFFIXES))
    name = ""
    while not name or name in names:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3)))) + suffix
    names.add(name)
    price = math.exp(rng.uniform(math.log(1_000), math.log(500_000)))
    if rng.random() < 0.05:  # a recent listing
        listed = date(2019, 1, 2) + timedelta(days=rng.randrange(6 * 365))
    else:
        listed = date(1976, 1, 5) + timedelta(days=rng.randrange(36 * 365))
    shares = int(math.exp(rng.uniform(math.log(10_000_000), math.log(1_000_000_000)))) // 1000 * 1000
    sector = _SUFFIXES[suffix][0 if market == "KOSPI" else 1]
    return Instrument(code, name, market, "stock", float(round(price, -1)), listed, shares, sector)


@functools.cache
def _default(n_stocks: int, seed: int) -> Universe:
    kospi, kosdaq = _real(_REAL_KOSPI, "KOSPI"), _real(_REAL_KOSDAQ, "KOSDAQ")
    real = (kospi + kosdaq) if n_stocks >= len(kospi) + len(kosdaq) else (kospi + kosdaq)[:n_stocks]
    n_kospi = round(n_stocks * 2 / 3)
    missing_kospi = max(0, n_kospi - sum(i.market == "KOSPI" for i in real))
    missing = max(0, n_stocks - len(real))
    rng = random.Random(int.from_bytes(hashlib.blake2b(f"{seed}:universe".encode(), digest_size=8).digest()))
    names = {i.name for i in real}
    codes = sorted(rng.sample(range(900_000, 1_000_000), missing))
    rng.shuffle(codes)
    synthetic = [
        _synthetic(rng, "KOSPI" if k < missing_kospi else "KOSDAQ", f"{code:06d}", names)
        for k, code in enumerate(codes)
    ]
    stocks = sorted(real + synthetic, key=lambda i: (i.market != "KOSPI", i.code))
    indices = [
        Instrument(code, name, "INDEX", "index", level, date.fromisoformat(base), shares, "")
        for code, name, level, base, shares in _INDICES
    ]
    gold = [
        Instrument(code, name, "GOLD", "gold", price, date.fromisoformat(d), 0, "")
        for code, name, price, d in _GOLD
    ]
    funds = [
        Instrument(code, name, market, "stock", float(price), date.fromisoformat(lst), units, "")
        for code, name, price, lst, units, market in _FUNDS
    ]
    return Universe(stocks, indices, gold, funds)
