"""Build ``schemas/catalog.json`` from the vendor's reference.

    python -m schemas.build_catalog [--reference PATH] [--out PATH] [--check]

The reference is a PDF turned into text, damaged in known ways (see
``../shared/kiwoom-api/WIRE_NOTES.md``).  Every repair is listed below,
reviewed by hand, and cross-checked against the TR's response example: the
build fails loudly when a repaired key is not in the example, when a key is
still damaged, or when a TR's list key matches neither the table nor the
example without an entry here.

Where the table and the example spell a field differently and nothing tells
which is the wire's, the table's name is the column name and the example's
spelling is kept as an *alias*: ``normalize`` accepts either on the wire.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from schemas.kinds import Inferred, Kind, infer_kind
from schemas.overrides import CANONICAL_REALTIME, DECIMALS, KIND_OVERRIDES
from schemas.reference import RawField, RawTR, parse_example_blocks, parse_reference
from schemas.repairs import (
    ALIASES,
    ALLOWED_VALUES,
    AMNT_SPELLING_TRS,
    BROKEN_EXAMPLES,
    BROKEN_IN_BOTH,
    BROKEN_KEYS,
    CONDITION_SEARCH,
    DAMAGED_EXAMPLE_VALUES,
    LIST_KEYS,
    NOT_A_LIST,
    PATHS,
    REALTIME_BROKEN_EXAMPLES,
    REQUEST_KEYS,
    UNREADABLE_EXAMPLES,
    WRONG_LABELS,
)
from schemas.units import UNIT_OVERRIDES, UNIT_RULES

ROOT = Path(__file__).resolve().parent
DEFAULT_REFERENCE = ROOT.parent.parent / "shared" / "kiwoom-api" / "kiwoom_rest_api.txt"
DEFAULT_OUT = ROOT / "catalog.json"

ORDER_PREFIXES = ("kt1", "kt5000")  # kt10000-kt10009 stock orders, kt50000-kt50003 gold
_ORDER_SUBCATEGORIES = ("주문", "신용주문")
_VALID_KEY = re.compile(r"^[A-Za-z0-9_]+$")
_ENUM_ITEM = re.compile(r"([0-9A-Za-z]+)\s*[:.]\s*([^,:]+?)(?=(?:,|\s+[0-9A-Za-z]+\s*[:.])|$)")


class CatalogBuildError(RuntimeError):
    pass


def _allowed_values(description: str) -> dict[str, str] | None:
    """Enumerations such as ``1:KRX, 2:NXT 3.통합`` -> {"1": "KRX", ...}."""
    if ":" not in description:
        return None
    items = _ENUM_ITEM.findall(description)
    if len(items) < 2:
        return None
    out = {code: text.strip().rstrip(",").strip() for code, text in items}
    return out or None


def _realtime_code(api_id: str) -> str:
    """Realtime codes are printed with the letter O for the digit 0."""
    return "0" + api_id[1:] if api_id[:1] == "O" else api_id


def _example_keys(value: Any) -> set[str]:
    keys: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys.update(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return keys


def _fits(kind: Kind, value: Any) -> bool:
    """Build-time check of one example value against a kind (not the hot path)."""
    if not isinstance(value, str):
        return kind in (Kind.TEXT, Kind.ENUM, Kind.CODE)
    v = value
    if v == "":
        return True
    if kind in (Kind.PRICE, Kind.SIGNED, Kind.AMOUNT, Kind.SIDE_QTY, Kind.INDEX):
        return re.fullmatch(r"[+-]{0,2}\d+", v) is not None
    if kind == Kind.LEVEL:
        return re.fullmatch(r"[+-]{0,2}\d+(\.\d+)?", v) is not None
    if kind == Kind.QTY:
        return re.fullmatch(r"\+?\d+", v) is not None
    if kind == Kind.RATE:
        return re.fullmatch(r"[+-]{0,2}(\d+(\.\d*)?|\.\d+)", v) is not None
    if kind == Kind.DATE:
        return re.fullmatch(r"(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])", v) is not None
    if kind == Kind.TIME:
        return re.fullmatch(r"([01]\d|2[0-3])(:?[0-5]\d){1,2}", v) is not None and len(v) != 4
    if kind == Kind.TIMESTAMP:
        return re.fullmatch(r"(19|20)\d{6}([01]\d|2[0-3])[0-5]\d[0-5]\d", v) is not None
    return True


# When an example contradicts the inferred kind, the first of these that fits
# every example value wins and the field records why.
_FALLBACKS: dict[Kind, tuple[Kind, ...]] = {
    Kind.DATE: (Kind.TIMESTAMP, Kind.TIME, Kind.TEXT),
    Kind.TIME: (Kind.TIMESTAMP, Kind.DATE, Kind.TEXT),
    Kind.TIMESTAMP: (Kind.DATE, Kind.TIME, Kind.TEXT),
    Kind.QTY: (Kind.SIGNED, Kind.RATE, Kind.TEXT),
    Kind.PRICE: (Kind.RATE, Kind.TEXT),
    Kind.SIGNED: (Kind.RATE, Kind.TEXT),
    Kind.AMOUNT: (Kind.RATE, Kind.TEXT),
    Kind.INDEX: (Kind.RATE, Kind.TEXT),
    Kind.LEVEL: (Kind.TEXT,),
    Kind.SIDE_QTY: (Kind.RATE, Kind.TEXT),
    Kind.RATE: (Kind.TEXT,),
}


def _field_entry(
    api_id: str, raw: RawField, name: str, example_values: list[Any], aliases: tuple[str, ...]
) -> dict[str, Any]:
    override = KIND_OVERRIDES.get((api_id, name)) or KIND_OVERRIDES.get(("*", name))
    inferred = (
        Inferred(override, decimals=DECIMALS.get((api_id, name), 0), reason="override")
        if override
        else infer_kind(name, raw.label, raw.description)
    )
    kind, reason, decimals = inferred.kind, inferred.reason, inferred.decimals
    # a shifted example says nothing about its fields' kinds (its bad values are blanked)
    trust_example = api_id not in DAMAGED_EXAMPLE_VALUES
    if trust_example and not all(_fits(kind, v) for v in example_values):
        for candidate in _FALLBACKS.get(kind, ()):
            if all(_fits(candidate, v) for v in example_values):
                bad = next(v for v in example_values if not _fits(kind, v))
                reason = f"example {bad!r} is not a {kind.value}; was: {reason}"
                kind, decimals = candidate, 0
                break
    entry: dict[str, Any] = {
        "name": name,
        "label": WRONG_LABELS.get((api_id, name), raw.label),
        "description": raw.description,
        "kind": kind.value,
        "kind_reason": reason,
    }
    if decimals:
        entry["decimals"] = decimals
    unit: str | None = UNIT_OVERRIDES.get((api_id, name))
    if unit is None and kind in (Kind.AMOUNT, Kind.SIGNED) and inferred.unit:
        unit = inferred.unit
    if unit is not None:
        if kind not in (Kind.AMOUNT, Kind.SIGNED, Kind.QTY):
            raise CatalogBuildError(f"{api_id}.{name}: unit {unit} on a {kind.value} field")
        entry["unit"] = str(unit)
    rules = UNIT_RULES.get((api_id, name))
    if rules:
        if kind not in (Kind.AMOUNT, Kind.SIGNED, Kind.QTY) or unit is not None:
            raise CatalogBuildError(f"{api_id}.{name}: unit rules on a {kind.value} field with a unit")
        entry["unit_rules"] = [r.as_json() for r in rules]
    if kind == Kind.CODE and (name == "stk_cd" or name.endswith("_stk_cd")):
        entry["venue"] = True
    if aliases:
        entry["aliases"] = list(aliases)
    if raw.name != name:
        entry["printed_as"] = raw.name
    return entry


def _collect_values(example: Any, key_names: set[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    stack = [example]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k in key_names and not isinstance(v, dict | list):
                    out.setdefault(k, []).append(v)
                else:
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _build_tr(raw: RawTR, toc: dict[str, list[str]], log: list[str]) -> dict[str, Any]:
    api_id = raw.api_id
    name, category, subcategory = toc.get(api_id, [raw.name, "", ""])
    example: Any = None
    example_repairs: list[str] = []
    example_error = None
    if raw.response_example.blocks:
        try:
            example, example_repairs = parse_example_blocks(raw.response_example.blocks)
        except ValueError as exc:
            example_error = str(exc)
    broken_reason = BROKEN_EXAMPLES.get(api_id)
    if example_error and not broken_reason:
        raise CatalogBuildError(
            f"{api_id}: response example unreadable ({example_error}) and not listed as broken"
        )
    if api_id in UNREADABLE_EXAMPLES and example_error is None and example is not None:
        raise CatalogBuildError(f"{api_id}: listed as broken but its example parses; remove the entry")
    ex_keys = _example_keys(example) if example is not None and not broken_reason else set()

    request_example = None
    request_example_error = None
    if raw.request_example.blocks:
        try:
            request_example, _ = parse_example_blocks(raw.request_example.blocks)
        except ValueError as exc:  # kept in the catalog: only responses are normalized
            request_example_error = str(exc)

    def fix(printed: str, is_list: bool, is_request: bool = False) -> str:
        if (api_id, printed) in BROKEN_IN_BOTH:
            fixed = BROKEN_IN_BOTH[(api_id, printed)]
            if ex_keys and printed not in ex_keys and fixed not in ex_keys and not is_request:
                raise CatalogBuildError(f"{api_id}: {printed!r} is in neither spelling in the example")
            return fixed
        fixed = BROKEN_KEYS.get((api_id, printed), printed)
        if is_list:
            fixed = LIST_KEYS.get((api_id, fixed), fixed)
        if fixed != printed and ex_keys and fixed not in ex_keys:
            raise CatalogBuildError(
                f"{api_id}: repaired key {fixed!r} (printed {printed!r}) is not in the example"
            )
        if fixed != printed and not ex_keys and not broken_reason:
            raise CatalogBuildError(f"{api_id}: repair of {printed!r} cannot be checked: no example")
        if not _VALID_KEY.match(fixed) and api_id not in CONDITION_SEARCH:
            raise CatalogBuildError(f"{api_id}: damaged key {printed!r} has no reviewed repair")
        return fixed

    request = []
    for f in raw.request:
        if f.name in ("api-id", "authorization", "cont-yn", "next-key"):
            continue
        key = fix(f.name, False, is_request=True)
        if (api_id, key) in REQUEST_KEYS:
            key = REQUEST_KEYS[(api_id, key)]
            if not isinstance(request_example, dict) or key not in request_example:
                raise CatalogBuildError(f"{api_id}: request key {key!r} is not in the request example")
        entry: dict[str, Any] = {
            "name": key,
            "label": f.label,
            "required": f.required,
            "length": int(f.length) if f.length.isdigit() else None,
            "description": f.description,
        }
        allowed = None if f.name.endswith("cd") else _allowed_values(f.description)
        allowed = ALLOWED_VALUES.get((api_id, key), allowed)
        if allowed:
            entry["allowed"] = allowed
        if f.depth:
            entry["depth"] = f.depth
        if key != f.name:
            entry["printed_as"] = f.name
        request.append(entry)

    # response: scalars, lists and their items
    table_names = []
    scalars_raw: list[tuple[RawField, str]] = []
    lists: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for f in raw.response:
        if f.name in ("api-id", "cont-yn", "next-key"):
            continue
        is_list = f.type.upper() == "LIST" and (api_id, f.name) not in NOT_A_LIST
        key = fix(f.name, is_list)
        table_names.append(key)
        if is_list and f.depth == 0:
            current = {"key": key, "label": f.label, "items": []}
            printed = BROKEN_KEYS.get((api_id, f.name), f.name)
            if printed != key and _VALID_KEY.match(printed):
                current["aliases"] = [printed]  # the table's spelling: accepted on the wire too
            lists.append(current)
        elif f.depth == 0:
            current = None
            scalars_raw.append((f, key))
        elif current is not None:
            current["items"].append((f, key, is_list))

    alias_map: dict[str, tuple[str, ...]] = {}
    for (tr_id, printed), fixed in BROKEN_IN_BOTH.items():
        if tr_id == api_id and printed in ex_keys:
            alias_map[fixed] = (printed,)
    for (tr_id, field), spellings in ALIASES.items():
        if tr_id == api_id:
            alias_map[field] = spellings
    if api_id in AMNT_SPELLING_TRS:
        for key in table_names:
            if "amt" in key and key not in alias_map:
                alt = re.sub(r"amt(?=_|$)", "amnt", key)
                if alt != key and alt in ex_keys:
                    alias_map[key] = (alt,)
    for field, spellings in alias_map.items():
        if field not in table_names:
            raise CatalogBuildError(f"{api_id}: alias entry for {field!r}, which the table does not list")
        for s in spellings:
            if ex_keys and s not in ex_keys:
                raise CatalogBuildError(f"{api_id}: alias {s!r} of {field!r} is not in the example")

    every_alias = {a for spellings in alias_map.values() for a in spellings}
    all_names = set(table_names) | every_alias | ex_keys
    values = _collect_values(example, all_names) if example is not None and not broken_reason else {}

    def entry_for(f: RawField, key: str) -> dict[str, Any]:
        aliases = alias_map.get(key, ())
        vals = list(values.get(key, []))
        for a in aliases:
            vals.extend(values.get(a, []))
        return _field_entry(api_id, f, key, vals, aliases)

    scalars = [entry_for(f, key) for f, key in scalars_raw if key not in ("return_code", "return_msg")]
    out_lists = []
    for lst in lists:
        items = [entry_for(f, key) for f, key, is_list in lst["items"] if not is_list]
        nested = [key for f, key, is_list in lst["items"] if is_list]
        out_list: dict[str, Any] = {"key": lst["key"], "label": lst["label"], "items": items}
        if lst.get("aliases"):
            out_list["aliases"] = lst["aliases"]
        if nested:
            out_list["nested_lists"] = nested
        out_lists.append(out_list)

    # list keys must agree with the example
    for lst in out_lists:
        if ex_keys and lst["key"] not in ex_keys and not broken_reason:
            raise CatalogBuildError(
                f"{api_id}: list key {lst['key']!r} is in neither the example nor LIST_KEYS"
            )

    # keys only the example shows: real wire fields the table forgot
    known = set(table_names) | every_alias | {"return_code", "return_msg"}
    extra = sorted(ex_keys - known)
    if extra and example is not None:
        main = out_lists[0] if out_lists else None
        first_item = None  # the keys of every row of the main list, not only the first
        if main is not None and isinstance(example, dict):
            rows = example.get(main["key"])
            if isinstance(rows, list):
                first_item = {k for r in rows if isinstance(r, dict) for k in r}
        for key in extra:
            raw_field = RawField(key, "", "String", False, "", "", 0)
            entry = _field_entry(api_id, raw_field, key, values.get(key, []), ())
            entry["source"] = "example"
            if first_item is not None and key in first_item and main is not None:
                main["items"].append(entry)
            elif isinstance(example, dict) and key in example:
                scalars.append(entry)
            else:
                continue
            log.append(f"{api_id}: field {key!r} only in the example, added")

    is_order = subcategory in _ORDER_SUBCATEGORIES or api_id.startswith(ORDER_PREFIXES)
    path, path_fallback = raw.url, None
    if api_id in PATHS:
        path, printed_path = PATHS[api_id]
        if printed_path != raw.url:
            raise CatalogBuildError(f"{api_id}: path repair expects {printed_path!r}, printed {raw.url!r}")
        path_fallback = printed_path
    if api_id in DAMAGED_EXAMPLE_VALUES and isinstance(example, dict):
        example_repairs = [*example_repairs, *_blank_unfit_values(example, [*scalars, *_items(out_lists)])]
    tr: dict[str, Any] = {
        "id": api_id,
        "name": name or raw.name,
        "category": category,
        "subcategory": subcategory,
        "menu": raw.menu,
        "method": raw.method,
        "path": path,
        **({"path_fallback": path_fallback} if path_fallback else {}),
        "transport": "websocket" if "websocket" in raw.url else "rest",
        "paper_supported": not raw.paper_unsupported,
        "paper_note": "KRX only" if "KRX" in raw.paper_domain else "",
        "is_order": is_order,
        "request": request,
        "response": scalars,
        "lists": out_lists,
        "main_list": out_lists[0]["key"] if out_lists else None,
        "request_example": request_example,
        "response_example": example if not broken_reason else None,
        "example_repairs": example_repairs,
        "reference_line": raw.first_line,
    }
    if broken_reason:
        tr["example_broken"] = broken_reason
    if request_example_error:
        tr["request_example_error"] = request_example_error
    return tr


def _items(lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for lst in lists for f in lst["items"]]


def _blank_unfit_values(example: dict[str, Any], fields: list[dict[str, Any]]) -> list[str]:
    """Blank the values of a shifted example that do not fit their field's kind (in place)."""
    kinds = {f["name"]: Kind(f["kind"]) for f in fields}
    repairs = []
    stack: list[Any] = [example]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, dict | list):
                    stack.append(value)
                elif key in kinds and not _fits(kinds[key], value):
                    item[key] = ""
                    repairs.append(f"blanked {key}={value!r}: not a {kinds[key].value} (shifted example)")
    return sorted(repairs)


def _drop_registration_ack(blocks: list[str]) -> list[str]:
    """A realtime example prints the REG ack, then the REAL frame: keep the frame."""
    out = []
    for block in blocks:
        m = re.search(r"\{[^{}]*['\"]trnm['\"]\s*:\s*['\"]REG['\"][^{}]*\}", block)
        if m:
            block = block[: m.start()] + block[m.end() :]
        if block.strip(" \n\t#요청"):
            out.append(block)
    return out


def _build_realtime(raw: RawTR, log: list[str]) -> dict[str, Any]:
    code = _realtime_code(raw.api_id)
    blocks = _drop_registration_ack(raw.response_example.blocks)
    example: Any = None
    repairs: list[str] = []
    try:
        example, repairs = parse_example_blocks(blocks)
    except ValueError as exc:
        if code not in REALTIME_BROKEN_EXAMPLES:
            raise CatalogBuildError(f"realtime {code}: example unreadable: {exc}") from exc
    if isinstance(example, list):
        example = next((d for d in example if isinstance(d, dict) and d.get("trnm") == "REAL"), None)
    is_frame = isinstance(example, dict) and example.get("trnm") == "REAL"
    if is_frame and code in REALTIME_BROKEN_EXAMPLES:
        raise CatalogBuildError(f"realtime {code}: listed as broken but its example is a REAL frame")
    if not is_frame:
        if code not in REALTIME_BROKEN_EXAMPLES:
            raise CatalogBuildError(f"realtime {code}: example is not a REAL frame")
        example = None
    if example is not None and isinstance(example.get("data"), list):
        for entry in example["data"]:
            if isinstance(entry, dict) and isinstance(entry.get("type"), str):
                if _realtime_code(entry["type"]) != code:
                    repairs.append(f"type printed as {entry['type']!r}, set to {code!r}")
                elif entry["type"] != code:
                    repairs.append(f"type printed as {entry['type']!r} (letter O)")
                entry["type"] = code
    value_fids = [f for f in raw.response if f.depth == 2]
    ex_values: dict[str, list[Any]] = {}
    if example is not None:
        for entry in example.get("data", []):
            for fid, v in (entry.get("values") or {}).items():
                ex_values.setdefault(fid, []).append(v)
    canonical = CANONICAL_REALTIME.get(code, {})
    fields = []
    for f in value_fids:
        entry = _field_entry(code, f, f.name, ex_values.get(f.name, []), ())
        entry["fid"] = entry.pop("name")
        if f.name in canonical:
            entry["column"] = canonical[f.name]
        fields.append(entry)
    unknown = sorted(set(ex_values) - {f.name for f in value_fids})
    if unknown:
        log.append(f"realtime {code}: FIDs only in the example: {unknown}")
    missing = sorted(set(canonical) - {f.name for f in value_fids})
    if missing:
        raise CatalogBuildError(f"realtime {code}: canonical FIDs not in the table: {missing}")
    return {
        "code": code,
        "printed_as": raw.api_id if raw.api_id != code else None,
        "name": raw.name,
        "fields": fields,
        "example": example,
        "example_repairs": repairs,
        **({"example_broken": REALTIME_BROKEN_EXAMPLES[code]} if code in REALTIME_BROKEN_EXAMPLES else {}),
        "reference_line": raw.first_line,
    }


def build(reference: Path) -> tuple[dict[str, Any], list[str]]:
    text = reference.read_text(encoding="utf-8")
    sections, toc, errors = parse_reference(text)
    toc = {_realtime_code(k): v for k, v in toc.items()}
    log: list[str] = []
    trs: dict[str, Any] = {}
    realtime: dict[str, Any] = {}
    for raw in sections:
        code = _realtime_code(raw.api_id)
        if code in trs or code in realtime:
            raise CatalogBuildError(f"{code}: printed twice in the reference")
        if raw.url.endswith("/websocket") and toc.get(code, ["", "", ""])[2] == "실시간시세":
            realtime[code] = _build_realtime(raw, log)
        else:
            trs[raw.api_id] = _build_tr(raw, toc, log)
    missing = sorted(set(toc) - set(trs) - set(realtime) - {"공통"})
    if missing:
        raise CatalogBuildError(f"in the table of contents but not parsed: {missing}")
    for (tr, _), _fixed in {**BROKEN_KEYS, **LIST_KEYS}.items():
        if tr not in trs:
            raise CatalogBuildError(f"repair for unknown TR {tr}")
    for tr_id, name in (*KIND_OVERRIDES, *UNIT_OVERRIDES, *UNIT_RULES, *DECIMALS, *WRONG_LABELS):
        if tr_id == "*":
            continue
        entry = trs.get(tr_id) or realtime.get(tr_id)
        if entry is None:
            raise CatalogBuildError(f"override for unknown TR {tr_id}")
        names = {f.get("name") or f.get("fid") for f in _all_fields(entry)}
        if name not in names:
            raise CatalogBuildError(f"override for {tr_id}.{name}, which the TR does not have")
    for tr_id, _name in (*REQUEST_KEYS, *ALLOWED_VALUES):
        if tr_id not in trs:
            raise CatalogBuildError(f"request repair for unknown TR {tr_id}")
    for tr_id, name in REQUEST_KEYS:
        if not any(r.get("printed_as") == name for r in trs[tr_id]["request"]):
            raise CatalogBuildError(f"request key repair for {tr_id}.{name}, which the table does not print")
    catalog = {
        "source": reference.name,
        "source_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "trs": trs,
        "realtime": realtime,
        "errors": errors,
    }
    return catalog, log


def _all_fields(entry: dict[str, Any]) -> list[dict[str, Any]]:
    if "fields" in entry:
        return list(entry["fields"])
    return [*entry["response"], *(f for lst in entry["lists"] for f in lst["items"])]


def dumps(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, ensure_ascii=False, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail if the committed catalog differs")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        catalog, log = build(args.reference)
    except CatalogBuildError as exc:
        print(f"catalog build failed: {exc}", file=sys.stderr)
        return 1
    text = dumps(catalog)
    if args.verbose:
        print("\n".join(log))
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("catalog is up to date" if same else f"{args.out} is stale: rebuild it")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    n_fields = sum(
        len(t["response"]) + sum(len(lst["items"]) for lst in t["lists"]) for t in catalog["trs"].values()
    )
    trs, realtime = len(catalog["trs"]), len(catalog["realtime"])
    print(f"wrote {args.out}: {trs} TRs, {realtime} realtime types, {n_fields} fields")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
