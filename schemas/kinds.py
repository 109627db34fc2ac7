"""The closed set of field kinds and how each is inferred and converted.

Every response field of the catalog has exactly one kind (DESIGN.md decision 2).
``infer_kind`` assigns it from the element name, the Korean label and the
description; ``schemas/build_catalog.py`` adds reviewed overrides and checks
the result against the reference's examples.  ``output_columns`` says which
typed columns a field becomes; ``schemas.normalize`` converts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from schemas.calendar import TZ_NAME

__all__ = ["KST_TS", "Kind", "Unit", "infer_kind", "output_columns"]

KST_TS = pl.Datetime("us", TZ_NAME)  # every stored time stamp: microseconds, Korea's time


class Kind(StrEnum):
    PRICE = "price"  # direction-signed price: "+74800" is 74,800, up on the day
    SIGNED = "signed"  # arithmetic signed integer: "--3472" is -3472
    RATE = "rate"  # real number, optionally with implied decimals
    INDEX = "index"  # index level sent x100 without the point, direction-signed
    LEVEL = "level"  # a level sent with its decimal point, direction-signed: "-2394.49"
    QTY = "qty"  # unsigned integer count (shares, contracts, orders)
    AMOUNT = "amount"  # money in the unit recorded on the field
    SIDE_QTY = "side_qty"  # size signed by trade side: + buyer-, - seller-initiated
    DATE = "date"  # YYYYMMDD
    TIME = "time"  # HHMMSS
    TIMESTAMP = "timestamp"  # YYYYMMDDHHMMSS, Korean time
    CODE = "code"  # identifier kept as text; a stock code's venue suffix split off
    ENUM = "enum"  # a code from a small documented set
    TEXT = "text"  # free text


class Unit(StrEnum):
    """Wire units of amounts and quantities (DESIGN.md decision 12)."""

    WON = "KRW"
    THOUSAND_WON = "KRW_1e3"
    MILLION_WON = "KRW_1e6"
    TEN_MILLION_WON = "KRW_1e7"
    HUNDRED_MILLION_WON = "KRW_1e8"
    SHARES = "SHR"
    THOUSAND_SHARES = "SHR_1e3"

    @property
    def factor(self) -> int:
        """What one wire unit is worth in won or in shares."""
        return _FACTOR[self]

    @property
    def base(self) -> str:
        """The unit the warehouse stores: "KRW" for amounts, "SHR" for quantities."""
        return "KRW" if self.value.startswith("KRW") else "SHR"


_FACTOR = {
    Unit.WON: 1,
    Unit.THOUSAND_WON: 1_000,
    Unit.MILLION_WON: 1_000_000,
    Unit.TEN_MILLION_WON: 10_000_000,
    Unit.HUNDRED_MILLION_WON: 100_000_000,
    Unit.SHARES: 1,
    Unit.THOUSAND_SHARES: 1_000,
}


@dataclass(frozen=True)
class Inferred:
    kind: Kind
    decimals: int = 0
    unit: str | None = None
    reason: str = ""


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[_\s]+", name.lower()) if t]


_UNIT_WORDS = (
    ("억", Unit.HUNDRED_MILLION_WON),
    ("천만", Unit.TEN_MILLION_WON),
    ("백만", Unit.MILLION_WON),
    ("천원", Unit.THOUSAND_WON),
)


def _unit(label: str, description: str) -> str | None:
    text = f"{label} {description}"
    for word, unit in _UNIT_WORDS:
        if word in text:
            return unit.value
    if "(원)" in text or "원)" in text:
        return Unit.WON.value
    return None


def infer_kind(name: str, label: str, description: str = "") -> Inferred:
    """Assign a kind from the element name, Korean label and description.

    Ordered rules, most specific first; each returns the rule that fired as
    ``reason`` so the catalog can show why a field has its kind.
    """
    toks = _tokens(name)
    last = toks[-1] if toks else ""
    lab = re.sub(r"\d+$", "", label.replace(" ", ""))
    desc = description

    if "100배" in desc and "지수" in desc:
        return Inferred(Kind.INDEX, reason="description: index x100")
    if "소수점" in desc and "2자리" in desc and "우측" in desc:
        return Inferred(Kind.RATE, decimals=2, reason="description: 2 implied decimals")

    # time: dates, times, timestamps (the build checks the format on examples)
    if last in ("dt", "date") or lab.endswith(("일자", "날짜")) or name in ("dt_n",):
        return Inferred(Kind.DATE, reason="name/label: date")
    if last == "tm" or lab.endswith(("시간", "시각")):
        return Inferred(Kind.TIME, reason="name/label: time")

    # identifiers, labels and enumerations
    if last == "cd" or name in ("code", "stk_cd", "item") or lab.endswith("코드"):
        return Inferred(Kind.CODE, reason="name/label: code")
    if last in ("nm", "name") or lab.endswith(("명", "이름")):
        return Inferred(Kind.TEXT, reason="name/label: name")
    if last in ("tp", "sig", "yn", "gb", "flag") or any(
        w in lab for w in ("구분", "기호", "여부", "유형", "상태")
    ):
        return Inferred(Kind.ENUM, reason="name/label: enumeration")

    # rates and ratios before the money/quantity words they are built from
    if (
        last in ("rt", "rate", "wght", "str", "per", "pbr", "roe", "dispty", "gear", "basis")
        or lab.endswith(("률", "율", "비율", "비중", "강도", "배율"))
        or lab in ("PER", "PBR", "ROE", "EV", "BPS", "회전율")
    ):
        return Inferred(Kind.RATE, reason="name/label: rate")

    unit = _unit(label, description)
    # arithmetic signed: changes, nets, differences, profit/loss
    if (
        any(t in toks for t in ("pre", "netprps", "irds", "nettrde", "netslmt", "chg", "pl"))
        or any(w in lab for w in ("대비", "순매수", "순매도", "증감", "손익", "순매매", "변동"))
        or last == "prft"
    ):
        if any(t in toks for t in ("amt", "prica")) or "금액" in lab or "대금" in lab:
            return Inferred(Kind.SIGNED, unit=unit, reason="signed amount")
        return Inferred(Kind.SIGNED, reason="name/label: change or net")

    # money
    if any(t in toks for t in ("amt", "prica", "mac", "cap", "entr", "dpst", "evlt")) or any(
        w in lab for w in ("금액", "대금", "자본금", "시가총액", "예수금", "평가액")
    ):
        return Inferred(Kind.AMOUNT, unit=unit, reason="name/label: amount")

    # prices (direction-signed against the previous close)
    if (
        any(t in toks for t in ("prc", "pric", "uv", "hgst", "lwst", "stdpc", "upl", "lol"))
        or re.search(r"(^|_)(sel|buy)_?\d*(th)?_?bid$", name.lower()) is not None
        or re.search(r"\d+bid$", name.lower()) is not None
        or lab.endswith(("가", "호가", "단가", "가격", "최고", "최저"))
    ):
        return Inferred(Kind.PRICE, reason="name/label: price")

    # quantities
    if any(t in toks for t in ("qty", "req", "cnt", "vol", "stk", "dys")) or any(
        w in lab for w in ("량", "수량", "주식수", "건수", "잔량", "일수", "횟수", "종목수")
    ):
        return Inferred(Kind.QTY, reason="name/label: quantity")
    if last in ("rank", "seq", "no") or "순위" in lab:
        return Inferred(Kind.QTY, reason="name/label: rank or ordinal")

    return Inferred(Kind.TEXT, reason="default: text")


def output_columns(name: str, kind: Kind | str) -> dict[str, pl.DataType]:
    """The typed columns one wire field becomes."""
    kind = Kind(kind)
    dtype: dict[Kind, pl.DataType] = {
        Kind.PRICE: pl.Int64(),
        Kind.SIGNED: pl.Int64(),
        Kind.RATE: pl.Float64(),
        Kind.INDEX: pl.Float64(),
        Kind.LEVEL: pl.Float64(),
        Kind.QTY: pl.Int64(),
        Kind.AMOUNT: pl.Int64(),
        Kind.SIDE_QTY: pl.Int64(),
        Kind.DATE: pl.Date(),
        Kind.TIME: pl.Time(),
        Kind.TIMESTAMP: KST_TS,
        Kind.CODE: pl.String(),
        Kind.ENUM: pl.String(),
        Kind.TEXT: pl.String(),
    }
    cols: dict[str, pl.DataType] = {name: dtype[kind]}
    if kind in (Kind.PRICE, Kind.INDEX, Kind.LEVEL):
        cols[f"{name}_dir"] = pl.Int8()
    elif kind == Kind.SIDE_QTY:
        cols[f"{name}_side"] = pl.Int8()
    return cols
