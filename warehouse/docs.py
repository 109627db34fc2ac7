"""The dataset reference (docs/datasets.md), generated from the registry: ``python -m warehouse.docs``."""

from __future__ import annotations

import sys
from pathlib import Path

from warehouse.datasets import datasets
from warehouse.store import sql_type
from warehouse.units import recorded_units

DOC = Path(__file__).resolve().parent.parent / "docs" / "datasets.md"
_FAMILIES = {
    "stock_bars": "Stock bars",
    "sector_bars": "Sector (index) bars",
    "gold_bars": "Gold spot bars",
    "investor": "Investors",
    "program": "Program trading",
    "short": "Short selling and stock lending",
    "reference": "Reference lists",
    "realtime": "Realtime (the streaming worker)",
}


def _wire(name: str | None) -> str:
    return f"`{name}`" if name else ""


def render() -> str:
    lines = [
        "# Datasets",
        "",
        "Generated from `warehouse/datasets.py` by `python -m warehouse.docs`; do not edit by hand.",
        "Every table is queryable by its plain name (`warehouse.connect()`, `kwh sql`), every row",
        "carries `run_id`, and every column has this comment in the lake (`duckdb_columns()`).",
        "Times are `Asia/Seoul`. Bars: prices positive, index levels real levels, turnover in won.",
        "Amounts are in won and quantities in shares; a column whose unit the catalog does not",
        "record says `단위 미상, 받은 값 그대로` (stored as sent). Column names are English",
        "(`schemas/columns.py`); `wire` is the field (or request option) Kiwoom calls it, and a",
        "request option that decides what the numbers mean is stored readable (`measure = 'amount'`,",
        "`side = 'net'`) rather than as its code (`amt_qty_tp = '1'`).",
        "",
    ]
    by_family: dict[str, list] = {}
    for ds in datasets().values():
        by_family.setdefault(ds.family, []).append(ds)
    for family, title in _FAMILIES.items():
        lines += [f"## {title}", ""]
        for ds in by_family.get(family, []):
            lines += [
                f"### `{ds.name}`",
                "",
                f"{ds.description}. Sources: {', '.join(ds.sources)}. Style: {ds.style}.",
                f"Key: `{', '.join(ds.key)}`. Time: `{ds.time}`."
                + (f" Partitioned by `{', '.join(ds.partition)}`." if ds.partition else ""),
                "",
                "| column | type | wire | comment |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| `{c}` | {sql_type(t)} | {_wire(ds.wire.get(c))} | {ds.comments[c]} |"
                for c, t in ds.schema.items()
            ]
            lines.append("")
    lines += [
        "## Units",
        "",
        "Every field whose wire unit the catalog records (`kwh catalog --units`; the table is",
        "`schemas/units.py`). The datasets store amounts in won and quantities in shares; an",
        "amount whose unit is not recorded is stored as sent and its column comment says so.",
        "",
        "| TR | field | label | wire unit | in the warehouse |",
        "|---|---|---|---|---|",
        *(
            f"| {tr} | `{name}` | {label} | {wire} | {stored} |"
            for tr, name, label, wire, stored in recorded_units()
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    text = render()
    if "--check" in sys.argv:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            sys.exit(f"{DOC} is out of date: run python -m warehouse.docs")
        return
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
