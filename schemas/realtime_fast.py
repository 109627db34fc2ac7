"""The streaming worker's decoder: logged ``REAL`` frames to typed frames, only the fields asked for.

``schemas.realtime.normalize_realtime`` reads every FID of every entry with a
JSON reader (~160 for a 0D entry); the worker stores a third of them. This
decoder reads the frames in one pass in C (``schemas/_scan/real.c``), which
copies the ``item`` and the wanted FIDs' values of every entry into Arrow string
columns, one per field; no Python runs per entry or per frame:

1. ``scan`` reads each frame as the JSON object Kiwoom sends (any key order, any
   whitespace) and returns, per type code, the entries' frame numbers and one string
   column per wanted field;
2. the frame numbers give each entry its ``seq`` and receive time;
3. the strings are converted by the same per-kind expressions as everywhere
   (``schemas.realtime.typed_entries``, so a value that does not fit its kind
   raises ``FieldValueError`` naming the type, the FID and the value).

Any batch the scanner does not take (an escape in a string, a value that is not a
string, an unknown type code, an entry missing a wanted FID or holding one twice,
invalid UTF-8: see ``schemas/_scan``) goes to ``normalize_realtime``, whose result is cut to
the same columns: the answer is the same either way, only slower, and the general
reader names whatever is wrong. What a field is (its FID, column name and kind)
comes from the catalog only (``schemas/catalog.json``, ``CANONICAL_REALTIME``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, time

import polars as pl

from schemas.catalog import Field, catalog
from schemas.realtime import (
    column_names,
    normalize_realtime,
    realtime_schema,
    time_field,
    typed_entries,
    warn_unknown_fids,
)
from schemas.scanned import column, int32s, scan_real

__all__ = ["decode_realtime", "realtime_fields"]


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
    """The fast path; None when the scanner does not take the batch."""
    if not all(isinstance(f, bytes) for f in frames):
        return None
    fields = {code: wanted.get(code, rt.fields) for code, rt in catalog().realtime.items()}
    found = scan_real(list(frames), {code: tuple(f.name for f in fs) for code, fs in fields.items()})
    if found is None:
        return None
    seq = pl.Series("seq", seqs if seqs is not None else range(len(frames)), pl.Int64)
    received = received_ns is not None
    got = pl.Series("_received", received_ns, pl.Int64) if received else None
    out = {}
    for code, (entries, index, columns) in found.items():
        where = pl.Series("_frame", int32s(index))
        names = ["item", *(f.name for f in fields[code])]
        times = got.gather(where) if got is not None else pl.repeat(None, entries, dtype=pl.Int64, eager=True)
        strings = pl.DataFrame(
            [
                seq.gather(where),
                times.alias("_received"),
                *(column(name, entries, col) for name, col in zip(names, columns, strict=True)),
            ]
        )
        first = int(where[0])
        warn_unknown_fids(code, frames[first], set(catalog().realtime_type(code).by_fid()))
        out[code] = typed_entries(code, strings, fields[code], received, day, rollover)
    return out
