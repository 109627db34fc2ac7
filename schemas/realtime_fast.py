"""The streaming worker's decoder: logged ``REAL`` frames to typed frames, only the fields asked for.

``schemas.realtime.normalize_realtime`` reads every FID of every entry with a
JSON reader (~160 for a 0D entry); the worker stores a third of them. This
decoder cuts the frames apart with Polars string operations on whole columns,
no JSON parser and no Python per entry:

1. the frames (one ``String`` column) lose their ``{"trnm":"REAL","data":[{"type":``
   head and ``}}]}`` tail and are split at ``}},{"type":`` into one row per entry;
2. each entry is split at ``,"`` (a bare quote cannot occur inside a JSON string,
   and frames holding an escaped one are left to the general reader), which gives
   one piece per key, ``41":"+81500"``, up to the last field asked for;
3. where each field sits is read off the first entry of each type (its layout is
   also checked as JSON); every entry is then checked to have the same key with a
   string value at that place, and the value is cut out of it;
4. the strings are converted by the same per-kind expressions as everywhere
   (``schemas.realtime.typed_entries``, so a value that does not fit its kind
   raises ``FieldValueError`` naming the type, the FID and the value).

Any frame that is not laid out that way (other key orders, spaces, missing
FIDs, non-string values, escapes) sends the whole batch to ``normalize_realtime``,
whose result is cut to the same columns: the answer is the same either way,
only slower. What a field is (its FID, column name and kind) comes from the
catalog only (``schemas/catalog.json``, ``CANONICAL_REALTIME``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, time

import orjson
import polars as pl

from schemas.catalog import Field, RealtimeType, catalog
from schemas.realtime import (
    column_names,
    normalize_realtime,
    realtime_schema,
    time_field,
    typed_entries,
    warn_unknown_fids,
)

__all__ = ["decode_realtime", "realtime_fields"]

_HEAD = '{"trnm":"REAL","data":[{"type":'
_TAIL = "}}]}"
_ENTRY = '}},{"type":'
_KEY = ',"'
_VALUES = 'values":{"'


def realtime_fields(code: str, columns: Collection[str] | None) -> tuple[Field, ...]:
    """The fields of type ``code`` named by ``columns`` (canonical column names; None: all),
    with the type's time field, in the catalog's order. An unknown name raises ``ValueError``."""
    rt = catalog().realtime_type(code)
    if columns is None:
        return rt.fields
    names = column_names(rt)
    unknown = sorted(set(columns) - set(names.values()))
    if unknown:
        raise ValueError(f"realtime type {code} has no column {', '.join(map(repr, unknown))}")
    wanted = set(columns)
    timed = time_field(rt)
    return tuple(f for f in rt.fields if names[f.name] in wanted or f is timed)


def decode_realtime(
    frames: Sequence[bytes],
    *,
    columns: Mapping[str, Collection[str]] | None = None,
    seqs: Sequence[int] | None = None,
    received_ns: Sequence[int] | None = None,
    day: date | None = None,
    rollover: time = time(6, 0),
) -> dict[str, pl.DataFrame]:
    """Raw ``REAL`` frames to one typed frame per type code, as ``normalize_realtime`` gives them
    (same arguments, same errors) but with, for a type listed in ``columns``, only the columns its
    named fields become (plus ``seq``, ``type``, ``ts``, the time field and ``item``/``item_venue``)."""
    if isinstance(frames, bytes | str):
        raise TypeError("decode_realtime takes a sequence of frames; wrap a single frame in a list")
    if not frames:
        return {}
    for name, extra in (("seqs", seqs), ("received_ns", received_ns)):
        if extra is not None and len(extra) != len(frames):
            raise ValueError(f"{name} has {len(extra)} values for {len(frames)} frames")
    wanted = {code: realtime_fields(code, cols) for code, cols in (columns or {}).items()}
    fast = _decode(frames, wanted, seqs, received_ns, day, rollover)
    if fast is not None:
        return fast
    full = normalize_realtime(frames, seqs=seqs, received_ns=received_ns, day=day, rollover=rollover)
    return {code: _cut(code, frame, wanted.get(code)) for code, frame in full.items()}


def _cut(code: str, frame: pl.DataFrame, fields: tuple[Field, ...] | None) -> pl.DataFrame:
    """``normalize_realtime``'s frame of one type cut to the columns ``fields`` give."""
    if fields is None:
        return frame
    rt = catalog().realtime_type(code)
    names = column_names(rt)
    keep = {"seq", "type", "ts", "item", "item_venue"}
    for f in fields:
        keep |= set(f.output_schema(names[f.name]))
    return frame.select(c for c in realtime_schema(code) if c in keep and c in frame.columns)


def _decode(
    frames: Sequence[bytes],
    wanted: Mapping[str, tuple[Field, ...]],
    seqs: Sequence[int] | None,
    received_ns: Sequence[int] | None,
    day: date | None,
    rollover: time,
) -> dict[str, pl.DataFrame] | None:
    """The fast path; None when the batch is not laid out as it expects."""
    if not all(isinstance(f, bytes) for f in frames):
        return None
    try:
        text = pl.Series("frame", frames, pl.Binary).cast(pl.String)  # checks the UTF-8
    except pl.exceptions.PolarsError:
        return None
    shape = pl.DataFrame([text]).select(
        (pl.col("frame").str.starts_with(_HEAD) & pl.col("frame").str.ends_with(_TAIL)).all().alias("ok"),
        pl.col("frame").str.contains('\\"', literal=True).any().alias("escaped"),
        pl.col("frame").str.count_matches('"values":{', literal=True).sum().alias("entries"),
    )
    if not shape["ok"][0] or shape["escaped"][0]:
        return None
    entries = pl.DataFrame([text]).select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_frame"),
        pl.col("frame").str.strip_prefix(_HEAD).str.strip_suffix(_TAIL).str.split(_ENTRY).alias("entry"),
    )
    entries = entries.explode("entry")
    entries = entries.with_columns(pl.col("entry").str.extract('^"([^"]+)"', 1).alias("type"))
    if entries.height != shape["entries"][0] or entries["type"].null_count():
        return None  # an entry without values, or one not written as expected
    where = entries["_frame"]
    extras = [pl.Series("seq", seqs if seqs is not None else range(len(frames)), pl.Int64).gather(where)]
    received = received_ns is not None
    if received:
        extras.append(pl.Series("_received", received_ns, pl.Int64).gather(where))
    else:
        extras.append(pl.repeat(None, entries.height, dtype=pl.Int64, eager=True).alias("_received"))
    entries = entries.with_columns(extras)
    out = {}
    for code in entries["type"].unique(maintain_order=True).to_list():
        if code not in catalog().realtime:
            return None  # the general reader names it
        rt = catalog().realtime_type(code)
        fields = wanted.get(code, rt.fields)
        part = entries.filter(pl.col("type") == code)
        strings = _strings(rt, part, fields)
        if strings is None:
            return None
        warn_unknown_fids(code, frames[int(part["_frame"][0])], set(rt.by_fid()))
        out[code] = typed_entries(code, strings, fields, received, day, rollover)
    return out


def _layout(rt: RealtimeType, entry: str) -> dict[str, tuple[int, str]] | None:
    """Where each key of an entry sits among its ``,"`` pieces: key -> (piece, its prefix).

    ``item`` and the other top-level keys before ``values``, then the FIDs. None if
    the entry is not JSON, not an object of string values, or lists a key twice."""
    try:
        body = orjson.loads('{"type":' + entry + "}}")
    except orjson.JSONDecodeError:
        return None
    values = body.get("values")
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        return None
    pieces = entry.split(_KEY)
    found: dict[str, tuple[int, str]] = {}
    inside = False
    for i, piece in enumerate(pieces[1:], start=1):
        if not inside and piece.startswith(_VALUES):
            inside, head = True, _VALUES
        else:
            head = ""
        key = piece[len(head) :].split('"', 1)[0]
        prefix = f'{head}{key}":"'
        if key in found or not piece.startswith(prefix) or not piece.endswith('"'):
            return None
        found[key if inside else f"top:{key}"] = (i, prefix)
    if not inside or len(found) != len(body) - 2 + len(values) or "top:item" not in found:
        return None
    return found


def _strings(rt: RealtimeType, part: pl.DataFrame, fields: Sequence[Field]) -> pl.DataFrame | None:
    """One type's entries as ``seq``, ``_received``, ``item`` and one string column per FID of
    ``fields``; None unless every entry has each of them where the first one has it."""
    layout = _layout(rt, part["entry"][0])
    if layout is None or any(f.name not in layout for f in fields):
        return None
    places = {"item": layout["top:item"], **{f.name: layout[f.name] for f in fields}}
    last = max(i for i, _ in places.values())
    values, checks = [], []
    for name, (i, prefix) in places.items():
        piece = pl.col(f"field_{i}")
        checks.append(piece.str.starts_with(prefix) & piece.str.ends_with('"'))
        values.append(piece.str.strip_prefix(prefix).str.strip_suffix('"').alias(name))
    got = (
        part.lazy()
        .select("seq", "_received", pl.col("entry").str.splitn(_KEY, last + 2).alias("_pieces"))
        .unnest("_pieces")
        .select("seq", "_received", *values, pl.all_horizontal(checks).fill_null(False).all().alias("_ok"))
        .collect()
    )
    if not got["_ok"][0]:
        return None
    return got.drop("_ok")
