"""How the simulated server writes things on the wire: error bodies, next-keys, values.

Values follow Kiwoom's conventions (WIRE_NOTES.md): every value a string;
prices carry a direction sign against the previous close; changes and nets an
arithmetic sign; index levels x100 without the point; rates with two decimals
or, where the reference says so, with the point removed; amounts in the unit
the catalog records on the field (millions of won where it records none).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from schemas.catalog import Field, catalog
from schemas.kinds import Kind, Unit

__all__ = [
    "SUCCESS_MSG",
    "decode_next_key",
    "encode_next_key",
    "error_body",
    "format_value",
    "request_digest",
]

SUCCESS_MSG = "정상적으로 처리되었습니다"
# return_code classes seen on the wire: 3 for authentication, 5 for limits, 2 for the request itself
_CLASS = {"8": 3, "17": 5, "16": 5}
_PREFIX = {3: "인증에 실패했습니다", 5: "요청이 제한되었습니다", 2: "입력 값을 확인해 주세요"}
_UNIT_DIVISOR = {
    Unit.WON.value: 1,
    Unit.THOUSAND_WON.value: 1_000,
    Unit.MILLION_WON.value: 1_000_000,
    Unit.HUNDRED_MILLION_WON.value: 100_000_000,
}
DEFAULT_AMOUNT_UNIT = Unit.MILLION_WON.value


def error_body(code: int, *params: str, top_level: bool = False) -> dict[str, Any]:
    """An error as the server sends it: a small class with the precise code in the message.

    ``top_level`` puts the precise code itself in ``return_code`` (the server does that too).
    """
    text = catalog().errors.get(str(code), "오류가 발생했습니다")
    for p in params:
        text = text.replace("{?}", p, 1)
    text = text.replace("{?}", "")
    if top_level:
        return {"return_code": code, "return_msg": text}
    cls = next((v for k, v in _CLASS.items() if str(code).startswith(k)), 2)
    return {"return_code": cls, "return_msg": f"{_PREFIX[cls]}[{code}:{text}]"}


def request_digest(api_id: str, body: dict[str, Any]) -> str:
    return hashlib.blake2b(
        orjson.dumps([api_id, body], option=orjson.OPT_SORT_KEYS), digest_size=6
    ).hexdigest()


def encode_next_key(digest: str, cursor: str) -> str:
    return base64.urlsafe_b64encode(f"{digest}|{cursor}".encode()).decode().rstrip("=")


def decode_next_key(key: str, digest: str) -> str | None:
    """The cursor in ``key``, or None when the key is not one this request could have been given."""
    try:
        text = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    got, _, cursor = text.partition("|")
    return cursor if got == digest and cursor else None


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def _direction(n: int, against: float | None) -> str:
    if against is None or n == round(against):
        return str(n)
    return f"+{n}" if n > against else f"-{n}"


def format_value(f: Field, value: Any, prev: float | None = None, direction: bool = True) -> str:
    """``value`` (a Python number, date or string) as the wire string of field ``f``.

    ``prev`` is the previous close for direction-signed prices and index levels.
    """
    if value is None or value == "":
        return ""
    kind = f.kind
    if kind == Kind.PRICE:
        return _direction(round(value), prev if direction else None)
    if kind == Kind.INDEX:
        level = round(value * 100)
        return _direction(level, prev * 100 if (direction and prev is not None) else None)
    if kind in (Kind.SIGNED, Kind.SIDE_QTY):
        return _signed(round(value / _divisor(f)) if is_money(f) else round(value))
    if kind == Kind.QTY:
        return str(abs(round(value)))
    if kind == Kind.AMOUNT:
        return str(round(value / _divisor(f)))
    if kind == Kind.RATE:
        if f.decimals:
            return _signed(round(value * 10**f.decimals))
        return f"{value:+.2f}" if value else "0.00"
    if kind == Kind.DATE:
        return value.strftime("%Y%m%d") if hasattr(value, "strftime") else str(value)
    if kind == Kind.TIME:
        return value.strftime("%H%M%S") if hasattr(value, "strftime") else str(value)
    if kind == Kind.TIMESTAMP:
        return value.strftime("%Y%m%d%H%M%S") if hasattr(value, "strftime") else str(value)
    if isinstance(value, float):
        return _signed(round(value))
    if isinstance(value, int):
        return _signed(value)
    return str(value)


def is_money(f: Field) -> bool:
    """Amounts, and signed figures that are amounts (net buying in won, changes of amounts)."""
    return f.kind == Kind.AMOUNT or f.unit is not None or any(t in f.name for t in ("amt", "prica"))


def _divisor(f: Field) -> int:
    return _UNIT_DIVISOR.get(f.unit or DEFAULT_AMOUNT_UNIT, 1)
