"""Realtime ``REAL`` frames to typed Polars frames, many frames at a time.

The batch is parsed once by Polars' JSON reader (frames joined as NDJSON)
against the catalog's FIDs as strings, exploded to one row per entry, split
by type and converted with the same per-kind expressions as the REST bodies
(``schemas.normalize.convert``): no Python per entry. 0B and 0D columns get
their canonical English names (``catalog.json`` ``column``), other types keep
``fid_<n>``.

Realtime times are ``HHMMSS`` only. ``ts`` puts them on a date in Korea:
with ``received_ns`` (when each frame arrived) the date is the one that puts
the time nearest the arrival, so a session that runs past midnight, or a
worker that runs for days, dates every row right; with only ``day`` (the
session date), times before ``rollover`` belong to the next day.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping, Sequence
from datetime import date, time
from functools import cache
from typing import Any

import orjson
import polars as pl

from schemas.calendar import TZ_NAME
from schemas.catalog import Field, RealtimeType, catalog
from schemas.errors import BodyShapeError
from schemas.kinds import KST_TS, Kind
from schemas.normalize import UnknownFieldWarning, convert

__all__ = [
    "column_names",
    "normalize_realtime",
    "realtime_schema",
    "time_field",
    "typed_entries",
    "warn_unknown_fids",
]

Frame = bytes | str | Mapping[str, Any]
_ITEM = Field("item", "종목코드", "", Kind.CODE, "", venue=True)
_TIME_FIDS = ("20", "21")  # 체결시간 / 호가시간 and their kin
_HALF_DAY_US = 12 * 3600 * 1_000_000


@cache
def _fids() -> tuple[str, ...]:
    return tuple(sorted({f.name for rt in catalog().realtime.values() for f in rt.fields}))


@cache
def _schema() -> dict[str, pl.DataType]:
    values = pl.Struct({fid: pl.String() for fid in _fids()})
    entry = pl.Struct({"type": pl.String(), "item": pl.String(), "values": values})
    return {"trnm": pl.String(), "data": pl.List(entry)}


def column_names(rt: RealtimeType) -> dict[str, str]:
    """FID -> the column it becomes: the catalog's canonical name (0B/0D), else ``fid_<n>``."""
    return {f.name: f.column or f"fid_{f.name}" for f in rt.fields}


def time_field(rt: RealtimeType) -> Field | None:
    """The field whose ``HHMMSS`` becomes ``ts`` (FID 20 or 21), if the type has one."""
    return next((f for f in rt.fields if f.name in _TIME_FIDS and f.kind == Kind.TIME), None)


def _time_column(rt: RealtimeType) -> str | None:
    f = time_field(rt)
    return column_names(rt)[f.name] if f else None


def realtime_schema(code: str, *, with_ts: bool = True) -> pl.Schema:
    """The columns ``normalize_realtime`` gives a type: its contract with the warehouse."""
    rt = catalog().realtime_type(code)
    cols: dict[str, pl.DataType] = {"seq": pl.Int64(), "type": pl.String()}
    if with_ts and _time_column(rt):
        cols["ts"] = KST_TS
    names = column_names(rt)
    for f in rt.fields:
        cols.update(f.output_schema(names[f.name]))
    cols.update(_ITEM.output_schema())
    return pl.Schema(cols)


def _ndjson(frames: Sequence[Frame]) -> bytes:
    # a raw newline cannot occur inside a JSON string, so turning them into spaces is safe
    parts = [
        (orjson.dumps(f) if isinstance(f, Mapping) else f.encode() if isinstance(f, str) else f).replace(
            b"\n", b" "
        )
        for f in frames
    ]
    return b"\n".join(parts)


def _first_bad(frames: Sequence[Frame]) -> str:
    for i, f in enumerate(frames):
        try:
            body = f if isinstance(f, Mapping) else orjson.loads(f)
        except orjson.JSONDecodeError as exc:
            return f"frame {i} is not JSON ({exc})"
        if not isinstance(body, Mapping):
            return f"frame {i} is a JSON {type(body).__name__}, not an object"
    return "the batch does not fit the REAL frame shape"


def normalize_realtime(
    frames: Sequence[Frame],
    *,
    seqs: Sequence[int] | None = None,
    received_ns: Sequence[int] | None = None,
    day: date | None = None,
    rollover: time = time(6, 0),
) -> dict[str, pl.DataFrame]:
    """Many ``REAL`` frames (bytes, str or decoded) to one typed frame per type code.

    Each frame has ``seq`` (``seqs[i]`` of the entry's frame, else its index in
    the batch), ``type``, ``ts`` when ``received_ns`` or ``day`` is given, the
    type's columns and ``item``/``item_venue``. Anything but a REAL frame, an
    unknown type or a value that does not fit its kind raises.
    """
    if isinstance(frames, bytes | str | Mapping):
        raise TypeError("normalize_realtime takes a sequence of frames; wrap a single frame in a list")
    if not frames:
        return {}
    for name, extra in (("seqs", seqs), ("received_ns", received_ns)):
        if extra is not None and len(extra) != len(frames):
            raise ValueError(f"{name} has {len(extra)} values for {len(frames)} frames")
    entries = _compact_entries(frames)
    if entries is None:
        entries = _general_entries(frames)
    where = entries["_frame"]
    seq = pl.Series(seqs if seqs is not None else range(len(frames)), dtype=pl.Int64).gather(where)
    extras = [seq.alias("seq")]
    if received_ns is not None:
        extras.append(pl.Series(received_ns, dtype=pl.Int64).gather(where).alias("_received"))
    entries = entries.with_columns(extras)
    out = {}
    for code in entries["type"].unique(maintain_order=True).to_list():
        rt = catalog().realtime_type(code)
        part = entries.filter(pl.col("type") == code)
        warn_unknown_fids(code, frames[int(part["_frame"][0])], set(rt.by_fid()))
        strings = part.select(
            "seq",
            "_received" if received_ns is not None else pl.lit(None, pl.Int64).alias("_received"),
            "item",
            *(f.name for f in rt.fields),
        )
        out[code] = typed_entries(code, strings, rt.fields, received_ns is not None, day, rollover)
    return out


def typed_entries(
    code: str,
    strings: pl.DataFrame,
    fields: Sequence[Field],
    received: bool,
    day: date | None,
    rollover: time,
) -> pl.DataFrame:
    """One type's entries as strings (``seq``, ``_received``, ``item`` and the FIDs of ``fields``)
    to its typed frame: the columns of ``realtime_schema(code)`` that ``fields`` give, in its order.
    ``fields`` must hold the type's time field when ``ts`` is wanted (``received`` or ``day``)."""
    rt = catalog().realtime_type(code)
    typed = convert(code, strings, (*fields, _ITEM), column_names(rt))
    typed = typed.with_columns(strings["seq"], pl.lit(code).alias("type"))
    time_col = _time_column(rt)
    columns = ["seq", "type"]
    if time_col and (received or day is not None):
        typed = typed.with_columns(_timestamps(typed[time_col], strings["_received"], day, rollover))
        columns.append("ts")
    return typed.select(*columns, pl.exclude(columns))


_HEAD = b'{"trnm":"REAL","data":['
_SPLIT = b'},{"type":'
_TYPES = re.compile(rb'(?m)^\{"type":"([^"]*)"')


def _compact_entries(frames: Sequence[Frame]) -> pl.DataFrame | None:
    """The fast path, for frames written compactly as Kiwoom (and the simulator) do: entries cut
    apart at ``},{"type":`` (a bare quote cannot occur inside a JSON string), their ``values``
    lifted to the top (``"values":{`` and one closing brace dropped) and read as NDJSON, one
    flat row per entry, against the FIDs of the types present only: three times faster than
    reading the nested frames. None when the batch is not written that way (or the rewrite
    does not parse); the general path then reads it, or says what is wrong."""
    raws = [f.encode() if isinstance(f, str) else f for f in frames]
    head = _HEAD + b'{"type":'
    if not all(isinstance(r, bytes) and r.startswith(head) and r.endswith(b"}}]}") for r in raws):
        return None
    body = [r[len(_HEAD) : -3] for r in raws]  # type: ignore[index]
    if any(b"\n" in b for b in body):
        return None
    flat = b"\n".join(b.replace(_SPLIT, b'\n{"type":') for b in body).replace(b'"values":{', b"")
    types = {t.decode() for t in set(_TYPES.findall(flat))}
    fids = sorted({f.name for t in types for f in catalog().realtime_type(t).fields})
    schema = {"type": pl.String(), "item": pl.String(), **{f: pl.String() for f in fids}}
    try:
        entries = pl.read_ndjson(io.BytesIO(flat), schema=schema)
    except pl.exceptions.PolarsError:
        return None
    counts = [b.count(_SPLIT) + 1 for b in body]
    if entries.height != sum(counts) or sum(b.count(b'"values":{') for b in body) != entries.height:
        return None
    where = pl.Series("_frame", range(len(frames)), pl.Int64).repeat_by(pl.Series(counts)).explode()
    return entries.with_columns(where)


def _general_entries(frames: Sequence[Frame]) -> pl.DataFrame:
    try:
        raw = pl.read_ndjson(io.BytesIO(_ndjson(frames)), schema=_schema())
    except (pl.exceptions.PolarsError, orjson.JSONDecodeError) as exc:
        raise BodyShapeError("REAL", f"{_first_bad(frames)}: {exc}") from exc
    if raw.height != len(frames):
        raise BodyShapeError("REAL", f"{_first_bad(frames)} ({raw.height} rows for {len(frames)} frames)")
    not_real = raw.select((pl.col("trnm") != "REAL").fill_null(True).arg_true()).to_series()
    if len(not_real):
        i = int(not_real[0])
        raise BodyShapeError("REAL", f"frame {i} is not a REAL frame: trnm={raw['trnm'][i]!r}")
    entries = (
        raw.with_columns(pl.Series("_frame", range(len(frames)), pl.Int64))
        .drop("trnm")
        .explode("data")
        .unnest("data")
    )
    bad = entries.select((pl.col("type").is_null() | pl.col("values").is_null()).arg_true()).to_series()
    if len(bad):
        row = int(bad[0])
        raise BodyShapeError("REAL", f"frame {entries['_frame'][row]}: an entry without a type or values")
    return entries.unnest("values")


def _timestamps(times: pl.Series, received: pl.Series, day: date | None, rollover: time) -> pl.Series:
    frame = pl.DataFrame({"t": times, "r": received})
    if received.null_count() < len(received):
        arrived = pl.from_epoch(pl.col("r"), "ns").dt.replace_time_zone("UTC").dt.convert_time_zone(TZ_NAME)
        guess = arrived.dt.date().dt.combine(pl.col("t"), "us").dt.replace_time_zone(TZ_NAME)
        offset = (guess - arrived.dt.cast_time_unit("us")).dt.total_microseconds()
        shift = pl.when(offset > _HALF_DAY_US).then(-1).when(offset < -_HALF_DAY_US).then(1).otherwise(0)
        ts = guess.dt.offset_by(pl.concat_str(shift.cast(pl.String), pl.lit("d")))
    else:
        assert day is not None
        guess = pl.lit(day).dt.combine(pl.col("t"), "us").dt.replace_time_zone(TZ_NAME)
        ts = pl.when(pl.col("t") < rollover).then(guess.dt.offset_by("1d")).otherwise(guess)
    return frame.select(ts.alias("ts")).to_series()


def warn_unknown_fids(code: str, frame: Frame, known: set[str]) -> None:
    """The first frame of each type is checked for FIDs the catalog does not know (they are dropped)."""
    body = frame if isinstance(frame, Mapping) else orjson.loads(frame)
    seen = {k for e in body.get("data", ()) if e.get("type") == code for k in (e.get("values") or {})}
    unknown = sorted(seen - known)
    if unknown:
        warnings.warn(
            f"{code}: FIDs not in the catalog were dropped: {unknown}", UnknownFieldWarning, stacklevel=3
        )
