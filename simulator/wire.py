"""How the simulated server writes things on the wire: error bodies, next-keys, values.

Values follow Kiwoom's conventions (WIRE_NOTES.md): every value a string;
how each modelled field is written (signs, implied decimals, units, formats) is
``simulator.units``' reviewed table, never the client's catalog (DESIGN.md decision 11).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from schemas.catalog import catalog
from schemas.kinds import Unit
from simulator.units import Style, Wire

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


def _scaled(value: float, factor: int) -> int:
    """``value / factor`` rounded half away from zero; exact for integers of any size."""
    if factor == 1 or not isinstance(value, int):
        return round(value / factor)
    q, r = divmod(abs(value), factor)
    q += 2 * r >= factor
    return q if value >= 0 else -q


def _signed(n: int, doubled: bool = False) -> str:
    if n > 0:
        return f"+{n}"
    return f"--{-n}" if n < 0 and doubled else str(n)


def _direction(n: int, against: float | None) -> str:
    if against is None or n == round(against):
        return str(n)
    return f"+{n}" if n > against else f"-{n}"


def _clock(value: Any, fmt: str) -> str:
    return value.strftime(fmt) if hasattr(value, "strftime") else str(value)


def format_value(
    w: Wire,
    value: Any,
    prev: float | None = None,
    direction: bool = True,
    unit: Unit | None = None,
) -> str:
    """``value`` as the wire string ``w`` describes (``simulator.units``).

    ``value`` is in won or shares (index points, percent for rates); ``unit`` is the wire
    unit it is divided into (``units.unit_of``). ``prev`` is the previous close for
    direction-signed prices and levels; ``direction`` False sends them unsigned.
    """
    if value is None or value == "":
        return ""
    style, factor = w.style, unit.factor if unit is not None else 1
    against = prev if direction else None
    if style == Style.PRICE:
        return _direction(round(value), against)
    if style == Style.PLAIN:
        text = str(abs(_scaled(value, factor)))
        return text.zfill(w.width) if w.width else text
    if style == Style.LEVEL_X100:
        return _direction(round(value * 100), None if against is None else against * 100)
    if style == Style.LEVEL_DECIMAL:
        level = f"{abs(value):.2f}"
        if against is None or round(value, 2) == round(against, 2):
            return level
        return f"+{level}" if value > against else f"-{level}"
    if style == Style.SIGNED:
        return _signed(_scaled(value, factor), w.doubled)
    if style == Style.SIGNED_X100:
        return _signed(round(value * 100), w.doubled)
    if style in (Style.SIGNED_DECIMAL, Style.RATE):
        return f"{value:+.2f}" if round(value, 2) else "0.00"
    if style == Style.RATE_X100:
        return _signed(round(value * 100))
    if style == Style.RATIO_X100:
        return str(abs(round(value * 100)))
    if style == Style.DATE:
        return _clock(value, "%Y%m%d")
    if style == Style.TIME:
        return _clock(value, "%H%M%S")
    if style == Style.TIME_HHMM:
        return _clock(value, "%H:%M")
    if style == Style.TIMESTAMP:
        return _clock(value, "%Y%m%d%H%M%S")
    return str(round(value)) if isinstance(value, float) else str(value)
