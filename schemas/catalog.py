"""Typed read access to the committed catalog (``schemas/catalog.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from schemas.errors import UnknownTRError
from schemas.kinds import Kind, output_columns

__all__ = ["CATALOG_PATH", "TR", "Catalog", "Field", "ListSpec", "RealtimeType", "catalog"]

CATALOG_PATH = Path(__file__).with_name("catalog.json")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    description: str
    kind: Kind
    kind_reason: str
    decimals: int = 0
    unit: str | None = None
    venue: bool = False
    aliases: tuple[str, ...] = ()
    source: str = "table"
    column: str | None = None  # canonical English name (realtime 0B/0D)
    wire: str | None = None  # the key on the wire when the column is renamed
    unit_rules: tuple[dict[str, Any], ...] = ()  # the unit, when a request option decides it

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Field:
        return cls(
            name=d.get("name") or d["fid"],
            label=d.get("label", ""),
            description=d.get("description", ""),
            kind=Kind(d["kind"]),
            kind_reason=d.get("kind_reason", ""),
            decimals=d.get("decimals", 0),
            unit=d.get("unit"),
            venue=d.get("venue", False),
            aliases=tuple(d.get("aliases", ())),
            source=d.get("source", "table"),
            column=d.get("column"),
            unit_rules=tuple(d.get("unit_rules", ())),
        )

    def output_schema(self, name: str | None = None) -> dict[str, pl.DataType]:
        cols = output_columns(name or self.name, self.kind)
        if self.venue:
            cols[f"{name or self.name}_venue"] = pl.String()
        return cols


@dataclass(frozen=True)
class ListSpec:
    key: str
    label: str
    items: tuple[Field, ...]
    aliases: tuple[str, ...] = ()  # other spellings of the list key the reference shows

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, *self.aliases)


@dataclass(frozen=True)
class TR:
    id: str
    name: str
    category: str
    subcategory: str
    path: str
    method: str
    transport: str
    paper_supported: bool
    is_order: bool
    request: tuple[dict[str, Any], ...]
    response: tuple[Field, ...]
    lists: tuple[ListSpec, ...]
    main_list: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    path_fallback: str | None = None  # the reference's printed path, tried once on 1504

    @property
    def main(self) -> ListSpec | None:
        return next((lst for lst in self.lists if lst.key == self.main_list), None)

    @property
    def example(self) -> dict[str, Any] | None:
        return self.raw.get("response_example")

    @property
    def example_broken(self) -> str | None:
        return self.raw.get("example_broken")

    def row_fields(self) -> tuple[Field, ...]:
        """Fields that become columns of ``normalize``: list items, then scalars.

        A scalar whose name is also an item's (a body total beside per-row
        values) becomes ``body_<name>``.
        """
        main = self.main
        items = main.items if main else ()
        taken = {f.name for f in items}
        scalars = tuple(
            replace(f, name=f"body_{f.name}", wire=f.name) if f.name in taken else f for f in self.response
        )
        return items + scalars


@dataclass(frozen=True)
class RealtimeType:
    code: str
    name: str
    fields: tuple[Field, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    def by_fid(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}


class Catalog:
    """Every TR and realtime type of the reference, with field kinds."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.source_sha256: str = data["source_sha256"]
        self.errors: dict[str, str] = data["errors"]
        self.trs: dict[str, TR] = {k: _tr(v) for k, v in data["trs"].items()}
        self.realtime: dict[str, RealtimeType] = {
            k: RealtimeType(
                code=v["code"],
                name=v["name"],
                fields=tuple(Field.from_json(f) for f in v["fields"]),
                raw=v,
            )
            for k, v in data["realtime"].items()
        }

    def tr(self, api_id: str) -> TR:
        try:
            return self.trs[api_id]
        except KeyError:
            raise UnknownTRError(api_id) from None

    def realtime_type(self, code: str) -> RealtimeType:
        try:
            return self.realtime[code]
        except KeyError:
            raise UnknownTRError(code) from None

    def search(self, text: str = "", category: str = "") -> list[TR]:
        text = text.lower()
        out = []
        for tr in self.trs.values():
            if category and category not in (tr.category, tr.subcategory):
                continue
            hay = f"{tr.id} {tr.name} {tr.path} {tr.subcategory}".lower()
            if text and text not in hay:
                continue
            out.append(tr)
        return out


def _tr(d: dict[str, Any]) -> TR:
    return TR(
        id=d["id"],
        name=d["name"],
        category=d["category"],
        subcategory=d["subcategory"],
        path=d["path"],
        method=d["method"],
        transport=d["transport"],
        paper_supported=d["paper_supported"],
        is_order=d["is_order"],
        request=tuple(d["request"]),
        response=tuple(Field.from_json(f) for f in d["response"]),
        lists=tuple(
            ListSpec(
                lst["key"],
                lst["label"],
                tuple(Field.from_json(f) for f in lst["items"]),
                tuple(lst.get("aliases", ())),
            )
            for lst in d["lists"]
        ),
        main_list=d["main_list"],
        raw=d,
        path_fallback=d.get("path_fallback"),
    )


@cache
def catalog(path: Path = CATALOG_PATH) -> Catalog:
    """The committed catalog, loaded once per process."""
    with path.open(encoding="utf-8") as fh:
        return Catalog(json.load(fh))
