"""Amounts in won and quantities in shares: the dataset layer's unit conversion.

The catalog records each field's wire unit (``schemas.units``), fixed or
decided by a request option.  ``to_base_units`` multiplies every field with a
known unit into won or shares, and raises ``UnitOverflowError`` rather than
let a product wrap around.  ``unit_note`` says in a column comment what a
column holds after conversion, including "unit unknown, as sent".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl

from schemas.catalog import Field
from schemas.columns import option_column, option_value
from schemas.errors import UnitOverflowError
from schemas.kinds import Kind, Unit
from schemas.units import resolve_unit

__all__ = [
    "BASE_NAME",
    "UNKNOWN",
    "field_unit",
    "is_amount",
    "is_measure",
    "is_quantity",
    "to_base_units",
    "unit_note",
]

_INT64_MAX = 2**63 - 1
BASE_NAME = {"KRW": "원", "SHR": "주"}
_WIRE_NAME = {
    Unit.WON: "원",
    Unit.THOUSAND_WON: "천원",
    Unit.MILLION_WON: "백만원",
    Unit.TEN_MILLION_WON: "천만원",
    Unit.HUNDRED_MILLION_WON: "억원",
    Unit.SHARES: "주",
    Unit.THOUSAND_SHARES: "천주",
}
_MONEY_TOKENS = ("amt", "prica")
# labels of share counts: 거래량, 공매도량, 순매매량 ..., 수량, 주수, 주식수
_SHARE_LABELS = ("량", "수량", "주수", "주식수")
_COUNTS = (Kind.QTY, Kind.SIGNED, Kind.SIDE_QTY)
UNKNOWN = "단위 미상, 받은 값 그대로"  # the mark of a column stored as sent


def _rule_bases(f: Field) -> set[str]:
    return {Unit(r["unit"]).base for r in f.unit_rules if r["unit"]}


def is_amount(f: Field) -> bool:
    """Money: recorded in won units, of the amount kind, or named an amount (``*_amt``, ``*_prica``)."""
    if (f.unit and Unit(f.unit).base == "KRW") or "KRW" in _rule_bases(f) or f.kind == Kind.AMOUNT:
        return True
    return f.kind == Kind.SIGNED and any(t in f.name.split("_") for t in _MONEY_TOKENS)


def is_quantity(f: Field) -> bool:
    """A number of shares: recorded in share units, or a count named or labelled as one."""
    if (f.unit and Unit(f.unit).base == "SHR") or "SHR" in _rule_bases(f):
        return True
    if f.kind not in _COUNTS or is_amount(f):
        return False
    label = f.label.split("(")[0].strip()
    return "qty" in f.name.split("_") or label.endswith(_SHARE_LABELS)


def is_measure(f: Field) -> bool:
    """An amount or a quantity whose unit matters (what the unit table is about)."""
    return bool(f.unit or f.unit_rules) or is_amount(f) or is_quantity(f)


def field_unit(f: Field, request: Mapping[str, str]) -> Unit | None:
    """The wire unit of ``f`` for rows fetched with ``request``; None when unknown."""
    if f.unit:
        return Unit(f.unit)
    if f.unit_rules:
        return resolve_unit(f.unit_rules, request)
    return None


def to_base_units(
    api_id: str,
    frame: pl.DataFrame,
    fields: Iterable[Field],
    request: Mapping[str, str],
    names: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """``frame`` with each field of known unit multiplied into won or shares.

    ``names`` maps a wire name to its column in ``frame`` when the dataset renamed it.
    """
    names = names or {}
    exprs = []
    for f in fields:
        unit = field_unit(f, request)
        col = names.get(f.name, f.name)
        if unit is None or unit.factor == 1 or col not in frame.columns:
            continue
        limit = _INT64_MAX // unit.factor
        too_big = frame.get_column(col).abs() > limit
        if too_big.any():
            value = frame.get_column(col).filter(too_big)[0]
            raise UnitOverflowError(api_id, f.name, value, unit.factor)
        exprs.append((pl.col(col) * unit.factor).alias(col))
    return frame.with_columns(exprs) if exprs else frame


def _when(api_id: str | None, when: Mapping[str, str]) -> str:
    if api_id is None:
        return ", ".join(f"{k}={v}" for k, v in when.items())
    return ", ".join(f"{option_column(api_id, k)}={option_value(api_id, k, v)}" for k, v in when.items())


def unit_note(f: Field, api_id: str | None = None) -> str:
    """What the column of ``f`` holds after ``to_base_units``, for its comment.

    With ``api_id`` a request option is named as the dataset stores it (``measure=amount``).
    """
    if f.unit:
        unit = Unit(f.unit)
        wire = _WIRE_NAME[unit]
        base = BASE_NAME[unit.base]
        return base if wire == base else f"{base}; 키움은 {wire} 단위로 보냄"
    if f.unit_rules:
        parts = []
        for rule in f.unit_rules:
            when = _when(api_id, rule["when"])
            if rule["unit"]:
                unit = Unit(rule["unit"])
                parts.append(f"{when}: {BASE_NAME[unit.base]} (키움 {_WIRE_NAME[unit]})")
            else:
                parts.append(f"{when}: {UNKNOWN}")
        return "요청에 따라 " + "; ".join(parts)
    if is_measure(f):
        return UNKNOWN
    return ""


def recorded_units() -> list[tuple[str, str, str, str, str]]:
    """Every field with a recorded unit: (TR, field, label, wire unit, stored as), by TR."""
    from schemas.catalog import catalog

    cat = catalog()
    rows = []
    sources = [(tr.id, tr.row_fields()) for tr in cat.trs.values()]
    sources += [(rt.code, rt.fields) for rt in cat.realtime.values()]
    for api_id, fields in sources:
        for f in fields:
            if f.unit:
                unit = Unit(f.unit)
                rows.append((api_id, f.name, f.label, _WIRE_NAME[unit], BASE_NAME[unit.base]))
            elif f.unit_rules:
                rows.append((api_id, f.name, f.label, "request option", unit_note(f, api_id)))
    return sorted(rows)
