"""schemas.realtime_fast.decode_realtime (the streaming worker's decoder) against normalize_realtime."""

from __future__ import annotations

import datetime as dt

import orjson
import polars as pl
import pytest

from schemas import FieldValueError
from schemas import realtime_fast as fast
from schemas.realtime import normalize_realtime
from simulator.market import Market
from simulator.universe import Universe
from simulator.ws_feed import Feed, TickCache
from warehouse.stream_datasets import SOURCE_COLUMNS

DAY = dt.date(2025, 12, 29)


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    """REAL frames as the simulator sends them: three stocks, 0B+0C+0D, 7 trades a frame."""
    universe = Universe.default(20, 7)
    cache = TickCache(Market(universe, 7), 7)
    out = []
    for stock in universe.stocks[:3]:
        feed = Feed(
            cache, stock.code if stock.code != universe.stocks[1].code else f"{stock.code}_NX", DAY, None
        )
        feed.types = {"0B", "0C", "0D"}
        for _ in range(6):
            entries, _counts = feed.due(None, 7)
            out.append(('{"trnm":"REAL","data":[' + ",".join(entries) + "]}").encode())
    return out


def no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **kw: object) -> None:
        raise AssertionError("the batch went to the general reader")

    monkeypatch.setattr(fast, "normalize_realtime", refuse)


def cut(reference: dict[str, pl.DataFrame], columns: dict[str, tuple[str, ...]]) -> dict[str, pl.DataFrame]:
    return {
        c: fast._cut(c, f, fast.realtime_fields(c, columns[c]) if c in columns else None)
        for c, f in reference.items()
    }


def same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> bool:
    return list(a) == list(b) and all(a[k].equals(b[k]) and a[k].schema == b[k].schema for k in a)


def test_simulator_frames_decode_to_the_same_frames_as_normalize_realtime(frames, monkeypatch):
    seqs = list(range(100, 100 + len(frames)))
    received = [1_767_000_000_000_000_000 + i * 1_000_000 for i in range(len(frames))]
    reference = normalize_realtime(frames, seqs=seqs, received_ns=received)
    by_day = normalize_realtime(frames, seqs=seqs, day=DAY)
    assert {k: f.height for k, f in reference.items()} == {"0B": 126, "0C": 126, "0D": 126}
    no_fallback(monkeypatch)
    # every field: the very same frames
    assert same(fast.decode_realtime(frames, seqs=seqs, received_ns=received), reference)
    assert same(fast.decode_realtime(frames, seqs=seqs, day=DAY), by_day)
    # the fields the warehouse stores: the same frames cut to their columns (0C, not listed, whole)
    stored = fast.decode_realtime(frames, columns=SOURCE_COLUMNS, seqs=seqs, received_ns=received)
    assert same(stored, cut(reference, SOURCE_COLUMNS))
    assert (
        stored["0B"].columns[:4] == ["seq", "type", "ts", "time"] and "ask_px_10_dir" in stored["0D"].columns
    )
    assert "fid_128" not in stored["0D"].columns and stored["0D"]["item_venue"].unique().sort().to_list() == [
        "KRX",
        "NXT",
    ]


@pytest.mark.parametrize(
    ("code", "fid", "column"), [("0D", "43", "ask_px_3"), ("0B", "10", "price"), ("0B", "20", "time")]
)
def test_a_garbage_value_raises_naming_the_field_and_the_value(frames, code, fid, column):
    body = orjson.loads(frames[4])
    entry = next(e for e in body["data"] if e["type"] == code)
    entry["values"][fid] = "12x4"
    bad = [*frames[:4], orjson.dumps(body), *frames[5:]]
    columns = {code: (column,)}
    with pytest.raises(FieldValueError, match=rf"{code}\.{fid}: '12x4' is not a valid") as old:
        normalize_realtime(bad, day=DAY)
    with pytest.raises(FieldValueError, match=rf"{code}\.{fid}: '12x4' is not a valid") as new:
        fast.decode_realtime(bad, columns=columns, day=DAY)
    assert (new.value.field, new.value.value, new.value.row) == (
        old.value.field,
        old.value.value,
        old.value.row,
    )
    if column != "time":  # garbage in a field not asked for is not read (the time field always is)
        assert (
            fast.decode_realtime(bad, columns={code: [("size", "bid_px_1")[code == "0D"]]}, day=DAY)[
                code
            ].height
            == 126
        )


def test_any_key_order_and_whitespace_take_the_scanner_and_give_the_same_answer(frames):
    body = orjson.loads(frames[0])
    spaced = orjson.dumps(body, option=orjson.OPT_INDENT_2)
    moved = orjson.loads(frames[1])
    book = moved["data"][2]["values"]
    book["41"] = book.pop("41")  # one entry's key moved to the end
    entry = moved["data"][0]
    moved["data"][0] = {"values": entry["values"], **entry}  # values first: not read, see below
    reordered = orjson.loads(frames[1])
    reordered["data"][0] = {"item": reordered["data"][0]["item"], **reordered["data"][0]}
    wanted = {k: fast.realtime_fields(k, v) for k, v in SOURCE_COLUMNS.items()}
    for batch in ([spaced, *frames[1:]], [frames[0], orjson.dumps(reordered)]):
        got = fast._decode(batch, wanted, None, None, DAY, dt.time(6))
        assert got is not None and same(got, cut(normalize_realtime(batch, day=DAY), SOURCE_COLUMNS))
    # "values" before "type": the scanner would not know the entry's FIDs yet, so it passes
    assert fast._decode([orjson.dumps(moved)], wanted, None, None, DAY, dt.time(6)) is None


def test_what_the_scanner_does_not_take_goes_to_the_general_reader_with_the_same_answer(frames):
    number = frames[2].replace(b'"13":"', b'"13":', 1).replace(b'","14"', b',"14"', 1)
    escaped = frames[3].replace(b'"name":"', b'"name":"\\"', 1)
    missing = orjson.loads(frames[4])
    for e in missing["data"]:
        e["values"].pop("121", None)
    twice = frames[5].replace(b'"41":"', b'"41":"+1","41":"', 1)
    wanted = {k: fast.realtime_fields(k, v) for k, v in SOURCE_COLUMNS.items()}
    for batch in (
        [frames[0], escaped],
        [orjson.dumps(missing)],
        [frames[0], number],  # a value sent as a JSON number
        [twice],  # a stored FID twice in one entry (JSON readers keep the last)
    ):
        assert fast._decode(batch, wanted, None, None, DAY, dt.time(6)) is None
        got = fast.decode_realtime(batch, columns=SOURCE_COLUMNS, day=DAY)
        assert same(got, cut(normalize_realtime(batch, day=DAY), SOURCE_COLUMNS))


def test_bad_requests_are_refused(frames):
    with pytest.raises(ValueError, match="no column 'nope'"):
        fast.decode_realtime(frames, columns={"0B": ("price", "nope")})
    with pytest.raises(TypeError):
        fast.decode_realtime(frames[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seqs has 1 values"):
        fast.decode_realtime(frames[:2], seqs=[1])
    assert fast.decode_realtime([]) == {}
