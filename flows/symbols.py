"""Which symbols a flow fetches: codes or names, a market (``kospi``, ``kosdaq``) or ``all``.

Names (``삼성전자``) become codes through the lake's stock and sector lists
(``Warehouse.resolve_names``); codes pass as they are, and are checked against the
universe in the warehouse when it has been fetched.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from schemas.errors import InputError
from warehouse import Warehouse, WarehouseError
from warehouse.datasets import Dataset
from warehouse.reading import is_code, name_kind

__all__ = ["GOLD_CODES", "fits", "resolve_symbols"]

# The KRX gold spot market's two products (1 kg and 100 g bars), used when the stock
# list (ka10099 market 80) has not been fetched or lists none.
GOLD_CODES = ("M04020000", "M04020100")
_MARKETS = {"kospi": ("0",), "kosdaq": ("10",), "all": ("0", "10")}


def _listed(wh: Warehouse, table: str, markets: Sequence[str], tables: Collection[str]) -> list[str]:
    if table not in tables:
        return []
    rows = wh.sql(
        f"SELECT DISTINCT symbol FROM {table} WHERE mrkt_tp IN (SELECT unnest(?)) ORDER BY symbol",
        [list(markets)],
    )
    return rows["symbol"].to_list()


def fits(ds: Dataset, token: str) -> bool:
    """Whether a ``--symbols`` entry is for ``ds``: keywords and names fit every dataset; a sector
    code (3 digits) only sector bars, a gold code (``M...``) only gold bars, other codes the rest."""
    if token.lower() in _MARKETS or not is_code(token):
        return True
    kind = "sector" if token.isdigit() and len(token) == 3 else "gold" if token[:1] in "Mm" else "stock"
    return kind == {"sector_bars": "sector", "gold_bars": "gold"}.get(ds.family, "stock")


def resolve_symbols(wh: Warehouse, ds: Dataset, symbols: str | Sequence[str] | None) -> list[str]:
    """Symbols for ``ds``: codes (checked against the universe when it is known), names or a keyword."""
    tokens = [t.strip() for t in (symbols.split(",") if isinstance(symbols, str) else symbols or ["all"])]
    tokens = [t for t in tokens if t]
    if not tokens:
        raise InputError("no symbols given")
    tokens = [t for t in tokens if fits(ds, t)]
    if not tokens:  # none of the symbols is of this dataset's kind (a stock code for sector bars)
        return []
    family = ds.family
    tables = wh.tables()  # one listing for the lookups below
    if family == "sector_bars":
        universe, what = _listed(wh, "sector_list", ("0", "1"), tables), "sector codes (ka10101)"
        keywords = {"all": universe}
    elif family == "gold_bars":
        universe, what = _listed(wh, "stock_list", ("80",), tables) or list(GOLD_CODES), "gold codes"
        keywords = {"all": universe}
    else:
        universe, what = _listed(wh, "stock_list", _MARKETS["all"], tables), "stocks (ka10099)"
        keywords = {k: _listed(wh, "stock_list", v, tables) for k, v in _MARKETS.items()}
    given = [t for t in tokens if t.lower() not in keywords]
    try:
        codes = dict(zip(given, wh.resolve_names(given, name_kind(ds)), strict=True))
    except WarehouseError as exc:
        raise InputError(str(exc)) from None
    out: list[str] = []
    for token in tokens:
        key = token.lower()
        if key in keywords:
            if not keywords[key]:
                raise InputError(
                    f"{token!r} needs the universe: run `kwh universe` first (no {what} in the warehouse)"
                )
            out += keywords[key]
        else:
            out.append(codes[token])
    if universe:
        unknown = [s for s in out if s not in set(universe)]
        if unknown:
            raise InputError(
                f"unknown symbols for {ds.name}: {', '.join(unknown)} (not among the {len(universe)} {what})"
            )
    return list(dict.fromkeys(out))
