"""Kiwoom's string bodies to typed Polars frames.

Two stages (DESIGN.md decision 4): the wire shape as an all-string frame
under the wire names, then one vectorized conversion per field kind.  A
value that does not fit its kind raises ``FieldValueError`` naming the TR,
the field and the value; nothing is coerced to null or 0.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import polars as pl

from schemas.calendar import TZ_NAME
from schemas.catalog import TR, Field, catalog
from schemas.errors import BodyShapeError, FieldValueError
from schemas.kinds import Kind
from schemas.scanned import page_strings

__all__ = [
    "UnknownFieldWarning",
    "convert",
    "normalize",
    "normalize_pages",
    "output_schema",
]


class UnknownFieldWarning(UserWarning):
    """A body carried keys the catalog does not know; they were not converted."""


_READERS = min(4, os.cpu_count() or 1)
_RATE_PATTERN = r"^[+-]{0,2}([0-9]+(\.[0-9]*)?|\.[0-9]+)$"


def _blank_to_null(e: pl.Expr) -> pl.Expr:
    return pl.when(e.str.len_bytes() == 0).then(None).otherwise(e)


def _direction(s: pl.Expr, present: pl.Expr) -> pl.Expr:
    """-1 for a leading '-', +1 for '+', 0 for no marker (null stays null)."""
    return (
        pl.when(s.str.contains("-", literal=True))
        .then(pl.lit(-1, pl.Int8))
        .when(s.str.starts_with("+"))
        .then(pl.lit(1, pl.Int8))
        .when(present)
        .then(pl.lit(0, pl.Int8))
    )


def _field_exprs(f: Field, src: str, out: str) -> tuple[list[pl.Expr], pl.Expr]:
    """Typed output expressions for one field and a 'bad value' flag expression.

    The full, strict conversion: doubled signs, empties, garbage.
    """
    raw = pl.col(src)
    kind = f.kind
    if kind in (Kind.TEXT, Kind.ENUM):
        return [_blank_to_null(raw).alias(out)], pl.lit(False)
    if kind == Kind.CODE:
        s = _blank_to_null(raw)
        if not f.venue:
            return [s.alias(out)], pl.lit(False)
        venue = (
            pl.when(s.str.ends_with("_NX"))
            .then(pl.lit("NXT"))
            .when(s.str.ends_with("_AL"))
            .then(pl.lit("SOR"))
            .when(s.is_not_null())
            .then(pl.lit("KRX"))
        )
        base = s.str.replace(r"_(NX|AL)$", "")
        return [base.alias(out), venue.alias(f"{out}_venue")], pl.lit(False)

    s = _blank_to_null(raw)
    present = s.is_not_null()
    if kind == Kind.DATE:
        v = s.str.to_date("%Y%m%d", strict=False)
        return [v.alias(out)], present & (v.is_null() | (s.str.len_bytes() != 8))
    if kind == Kind.TIME:
        # HHMMSS as a rule; a few TRs send HH:MM:SS (kt50031) or HH:MM (ka10075)
        packed = s.str.replace_all(":", "", literal=True)
        packed = pl.when(s.str.len_bytes() == 5).then(packed + "00").otherwise(packed)
        v = packed.str.to_time("%H%M%S", strict=False)
        shape = s.str.contains(r"^(\d{6}|\d\d:\d\d(:\d\d)?)$")
        return [v.alias(out)], present & (v.is_null() | ~shape)
    if kind == Kind.TIMESTAMP:
        v = s.str.to_datetime("%Y%m%d%H%M%S", time_unit="us", time_zone=TZ_NAME, strict=False)
        return [v.alias(out)], present & (v.is_null() | (s.str.len_bytes() != 14))

    digits = s.str.strip_chars_start("+-")
    negative = s.str.contains("-", literal=True)
    if kind == Kind.LEVEL:
        mag = digits.cast(pl.Float64, strict=False)
        bad = present & ~s.str.contains(r"^[+-]{0,2}[0-9]+(\.[0-9]+)?$")
        return [mag.alias(out), _direction(s, mag.is_not_null()).alias(f"{out}_dir")], bad
    if kind == Kind.RATE:
        mag = digits.cast(pl.Float64, strict=False)
        v = pl.when(negative).then(-mag).otherwise(mag)
        if f.decimals:  # Polars divides by a constant as x * (1/c): round back to the decimal
            v = (v / (10**f.decimals)).round(f.decimals)
        return [v.alias(out)], present & ~s.str.contains(_RATE_PATTERN)

    mag = digits.str.to_integer(base=10, strict=False)
    bad = present & (mag.is_null() | ((s.str.len_bytes() - digits.str.len_bytes()) > 2))
    signed = pl.when(negative).then(-mag).otherwise(mag)
    return _integer_outputs(kind, out, mag, signed, bad, _direction(s, mag.is_not_null()))


def _integer_outputs(
    kind: Kind, out: str, mag: pl.Expr, signed: pl.Expr, bad: pl.Expr, direction: pl.Expr
) -> tuple[list[pl.Expr], pl.Expr]:
    if kind == Kind.QTY:
        return [signed.alias(out)], bad | (signed < 0)
    if kind in (Kind.SIGNED, Kind.AMOUNT):
        return [signed.alias(out)], bad
    if kind == Kind.PRICE:
        return [mag.alias(out), direction.alias(f"{out}_dir")], bad
    if kind == Kind.INDEX:
        level = (mag / 100).round(2)  # Polars divides by a constant as x * 0.01: 90317 -> 903.1700000000001
        return [level.alias(out), direction.alias(f"{out}_dir")], bad
    if kind == Kind.SIDE_QTY:
        return [mag.alias(out), direction.alias(f"{out}_side")], bad
    raise AssertionError(f"unhandled kind {kind}")


def _fast_exprs(f: Field, src: str, out: str) -> tuple[list[pl.Expr], pl.Expr] | None:
    """A cheaper conversion for well-formed integers (one optional sign).

    Its flag also fires on anything it does not handle (doubled signs), and
    a flagged field is redone by ``_field_exprs``; results agree otherwise.
    """
    if f.kind not in (Kind.PRICE, Kind.SIGNED, Kind.AMOUNT, Kind.QTY, Kind.INDEX, Kind.SIDE_QTY):
        return None
    raw = pl.col(src)
    signed = raw.str.to_integer(base=10, strict=False)
    flag = signed.is_null() & raw.is_not_null() & (raw.str.len_bytes() > 0)
    # what is not flagged has at most one sign and it leads: "+5" 1, "-0" -1, "5" 0, "" null
    marker = raw.str.starts_with("+").cast(pl.Int8) - raw.str.starts_with("-").cast(pl.Int8)
    direction = pl.when(signed.is_not_null()).then(marker)
    return _integer_outputs(f.kind, out, signed.abs(), signed, flag, direction)


def convert(
    api_id: str,
    frame: pl.DataFrame,
    fields: Sequence[Field],
    names: dict[str, str] | None = None,
    *,
    first_row: int = 0,
) -> pl.DataFrame:
    """Convert an all-string frame column by column; ``names`` renames outputs.

    ``first_row`` is the frame's first row's number in the whole input, for errors.
    """
    names = names or {}
    plans = []
    for f in fields:
        out = names.get(f.name, f.name)
        plans.append(_fast_exprs(f, f.name, out) or _field_exprs(f, f.name, out))
    result = _run(frame, plans)
    flagged = _flagged(result, len(plans))
    if flagged:
        # redo only the flagged fields with the full conversion, then judge
        for i in flagged:
            f = fields[i]
            plans[i] = _field_exprs(f, f.name, names.get(f.name, f.name))
        redo = _run(frame, [plans[i] for i in flagged])
        for j, i in enumerate(flagged):
            if redo.get_column(f"__bad{j}").any():
                row = redo.get_column(f"__bad{j}").arg_true()[0]
                f = fields[i]
                raise FieldValueError(api_id, f.name, f.kind.value, frame[f.name][row], first_row + row)
        result = result.with_columns(redo.drop([f"__bad{j}" for j in range(len(flagged))]))
    return result.drop([f"__bad{i}" for i in range(len(plans))])


def _run(frame: pl.DataFrame, plans: list[tuple[list[pl.Expr], pl.Expr]]) -> pl.DataFrame:
    exprs = [e for outputs, _ in plans for e in outputs]
    flags = [bad.alias(f"__bad{i}") for i, (_, bad) in enumerate(plans)]
    # lazy: common subexpressions are computed once and fields run in parallel
    return frame.lazy().select(*exprs, *flags).collect()


def _flagged(result: pl.DataFrame, n: int) -> list[int]:
    if not result.height or not n:
        return []
    hits = result.select(pl.col(f"__bad{i}").any() for i in range(n)).row(0)
    return [i for i, hit in enumerate(hits) if hit]


def output_schema(api_id: str) -> pl.Schema:
    """The schema ``normalize`` returns for a TR: its contract with the warehouse."""
    cols: dict[str, pl.DataType] = {}
    for f in catalog().tr(api_id).row_fields():
        cols.update(f.output_schema())
    return pl.Schema(cols)


def _wire_names(fields: Iterable[Field]) -> list[str]:
    return [n for f in fields for n in (f.name, *f.aliases)]


def _coalesce_aliases(frame: pl.DataFrame, fields: Iterable[Field]) -> pl.DataFrame:
    exprs = [pl.coalesce(f.name, *f.aliases).alias(f.name) for f in fields if f.aliases]
    if not exprs:
        return frame
    return frame.with_columns(exprs).drop([a for f in fields for a in f.aliases])


def _warn_unknown(tr: TR, keys: Iterable[str], known: set[str]) -> None:
    unknown = sorted(set(keys) - known - {"return_code", "return_msg"})
    if unknown:
        warnings.warn(
            f"{tr.id}: keys not in the catalog were dropped: {unknown}",
            UnknownFieldWarning,
            stacklevel=3,
        )


def _check_return_code(api_id: str, code: object, message: object, where: str = "") -> None:
    if code not in (0, "0", None):
        raise BodyShapeError(api_id, f"{where}error body (return_code {code}): {message or ''!r}")


def normalize(api_id: str, body: dict[str, Any]) -> pl.DataFrame:
    """One row per element of the TR's main list (or one row of its scalars).

    Scalar fields broadcast as columns; columns carry the wire names and the
    types of their kinds (see ``schemas.kinds``).
    """
    tr = catalog().tr(api_id)
    if not isinstance(body, dict):
        raise BodyShapeError(api_id, f"body is a {type(body).__name__}, not an object")
    _check_return_code(api_id, body.get("return_code"), body.get("return_msg"))
    main = tr.main
    scalar_fields = tr.row_fields()[len(main.items) if main else 0 :]
    scalar_names = _wire_names(tr.response)
    scalars = {
        out: _as_str(api_id, wire, body.get(wire))
        for f in scalar_fields
        for out, wire in zip(_wire_names([f]), (f.wire or f.name, *f.aliases), strict=True)
    }
    if main is None:
        rows: list[dict[str, Any]] = [{}]
        item_names: list[str] = []
    else:
        list_key = next((k for k in main.keys if k in body), main.key)
        rows = body.get(list_key)  # type: ignore[assignment]
        if rows is None:
            raise BodyShapeError(api_id, f"no list {' or '.join(map(repr, main.keys))} in the body")
        if not isinstance(rows, list):
            raise BodyShapeError(api_id, f"{main.key!r} is a {type(rows).__name__}, not a list")
        item_names = _wire_names(main.items)
        if rows:
            if not isinstance(rows[0], dict):
                raise BodyShapeError(api_id, f"{main.key!r} holds {type(rows[0]).__name__}, not objects")
            _warn_unknown(tr, rows[0], set(item_names))
    _warn_unknown(
        tr,
        (k for k in body if main is None or k not in main.keys),
        set(scalar_names) | {lst.key for lst in tr.lists},
    )
    try:
        frame = pl.DataFrame(rows, schema={n: pl.String for n in item_names}, strict=False)
    except (TypeError, pl.exceptions.PolarsError) as exc:
        raise BodyShapeError(api_id, f"rows of {main.key if main else 'body'} are malformed: {exc}") from exc
    frame = frame.with_columns(pl.lit(v, pl.String).alias(k) for k, v in scalars.items())
    frame = _coalesce_aliases(frame, tr.row_fields())
    return convert(api_id, frame, tr.row_fields())


def _as_str(api_id: str, key: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BodyShapeError(api_id, f"scalar {key!r} is a {type(value).__name__}: {value!r}")
    return str(value)


def normalize_pages(api_id: str, pages: Iterable[bytes]) -> pl.DataFrame:
    """Raw response bodies (bytes, one per page) to one typed frame.

    The fast path for bulk data: pages are read in one pass by the C scanner
    (``schemas/_scan/pages.c``; pages it does not take, by Polars' JSON reader
    against the catalog's string schema) and converted a chunk of pages at a
    time (about ``_CHUNK_BYTES`` of JSON), so the intermediate string frames
    of only one chunk are held beside the typed result.  The result is the
    typed chunks, not copied into one; errors are those of converting all
    pages at once: the first broken page, else the first bad field in field
    order at its first bad row.
    """
    tr = catalog().tr(api_id)
    main = tr.main
    if main is None:
        return pl.concat([normalize(api_id, json.loads(p)) for p in pages], how="vertical")
    item_names = _wire_names(main.items)
    scalar_names = _wire_names(tr.response)
    schema: dict[str, pl.DataType] = {
        **{n: pl.String() for n in scalar_names},
        "return_code": pl.Int64(),
        "return_msg": pl.String(),
        **{key: pl.List(pl.Struct({n: pl.String() for n in item_names})) for key in main.keys},
    }
    pages = iter(pages)
    first = next(pages, None)
    if first is None:
        return pl.DataFrame(schema=output_schema(api_id))
    try:
        first_body = json.loads(first)
    except json.JSONDecodeError as exc:
        raise BodyShapeError(api_id, f"page 1 is not JSON: {exc}") from exc
    normalize(api_id, first_body)  # the first page is checked for shape and unknown keys

    def read(numbered: tuple[int, bytes]) -> pl.DataFrame:
        n, page = numbered
        try:
            df = pl.read_json(io.BytesIO(page), schema=schema)
        except pl.exceptions.PolarsError as exc:
            raise BodyShapeError(api_id, f"page {n} is not a {api_id} body: {exc}") from exc
        _check_return_code(api_id, df.item(0, "return_code"), df.item(0, "return_msg"), f"page {n}: ")
        return df

    renames = _renames(tr)
    scalar_columns = {n: renames.get(n, n) for n in scalar_names}

    def scan(chunk: list[tuple[int, bytes]], pool: ThreadPoolExecutor) -> pl.DataFrame | None:
        """A chunk's items by the C scanner, in runs of pages on the reader threads; None if a page
        is not one it reads (the JSON reader then reads the chunk, and names what is wrong)."""
        size = -(-len(chunk) // _READERS)
        runs = [chunk[i : i + size] for i in range(0, len(chunk), size)]
        found = list(
            pool.map(
                lambda run: page_strings([p for _, p in run], main.keys, item_names, scalar_columns), runs
            )
        )
        read = [f for f in found if f is not None]
        if len(read) < len(found):
            return None
        for run, got in zip(runs, read, strict=True):
            for i in np.flatnonzero(got.codes):  # the first page with an error code raises
                _check_return_code(api_id, int(got.codes[i]), got.messages[int(i)], f"page {run[i][0]}: ")
        return _row_strings(tr, pl.concat([got.items for got in read], how="vertical"))

    fields = tr.row_fields()
    order = {f.name: i for i, f in enumerate(fields)}
    typed: list[pl.DataFrame] = []
    failure: FieldValueError | None = None
    rows = 0
    numbered = enumerate(itertools.chain([first], pages), start=1)
    # the JSON reader releases the GIL: two pages at a time on two cores
    with ThreadPoolExecutor(max_workers=_READERS) as pool:
        for chunk in _chunks(numbered, _CHUNK_BYTES):
            strings = scan(chunk, pool)
            if strings is None:
                strings = _item_rows(tr, pl.concat(pool.map(read, chunk), how="vertical"))
            try:
                part = convert(api_id, strings, fields, first_row=rows)
            except FieldValueError as exc:
                # keep reading: a broken later page, or an earlier field bad later, comes first
                if failure is None or order[exc.field] < order[failure.field]:
                    failure = exc
                typed.clear()
            else:
                if failure is None:
                    typed.append(part)
            rows += strings.height
            del strings
    if failure is not None:
        raise failure
    return pl.concat(typed, how="vertical", rechunk=False)


_CHUNK_BYTES = 8 << 20


def _chunks(numbered: Iterable[tuple[int, bytes]], limit: int) -> Iterator[list[tuple[int, bytes]]]:
    """Numbered pages in runs of about ``limit`` bytes (at least one page each)."""
    chunk: list[tuple[int, bytes]] = []
    size = 0
    for item in numbered:
        chunk.append(item)
        size += len(item[1])
        if size >= limit:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _item_rows(tr: TR, bodies: pl.DataFrame) -> pl.DataFrame:
    """Parsed bodies (a row per page) to the all-string frame of their items (a row per item)."""
    main = tr.main
    assert main is not None
    exploded = (
        bodies.drop("return_code", "return_msg")
        .with_columns(pl.coalesce(main.keys).alias(main.key))  # whichever spelling the page used
        .drop(main.aliases)
        .rename(_renames(tr))
        .explode(main.key, empty_as_null=False, keep_nulls=False)  # empty or missing lists: no rows
        .unnest(main.key)
    )
    return _row_strings(tr, exploded)


def _renames(tr: TR) -> dict[str, str]:
    """Wire name -> column name where they differ (a scalar whose wire name an item uses too)."""
    return {f.wire: f.name for f in tr.row_fields() if f.wire}


def _row_strings(tr: TR, items: pl.DataFrame) -> pl.DataFrame:
    """Item rows (items and their page's scalars, wire-renamed) to the all-string frame of the TR's
    row fields, in their order, each alias folded into its field."""
    return _coalesce_aliases(items, tr.row_fields()).select(f.name for f in tr.row_fields())
