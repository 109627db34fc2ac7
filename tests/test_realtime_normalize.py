"""schemas.normalize_realtime: a batch of REAL frames to typed frames per type."""

from __future__ import annotations

import datetime as dt
import warnings

import orjson
import pytest

import schemas
from schemas import BodyShapeError, FieldValueError, UnknownFieldWarning
from schemas.calendar import KST


def frame(*entries: tuple[str, str, dict[str, str]]) -> dict:
    return {"trnm": "REAL", "data": [{"type": t, "name": "", "item": i, "values": v} for t, i, v in entries]}


def trade(time: str, price: str, size: str = "+1") -> tuple[str, str, dict[str, str]]:
    return ("0B", "005930", {"20": time, "10": price, "15": size, "13": "1"})


def book(time: str) -> tuple[str, str, dict[str, str]]:
    return ("0D", "000660_NX", {"21": time, "41": "+101", "51": "-100", "61": "5", "71": "7"})


def test_many_frames_of_any_form_become_one_frame_per_type_with_their_seq():
    frames: list[bytes | str | dict] = [
        orjson.dumps(frame(trade("090001", "+100"), book("090001"))),
        orjson.dumps(frame(trade("090002", "-99", "-3"))).decode(),
        frame(book("090003"), trade("090003", "100")),
    ]
    out = schemas.normalize_realtime(frames, seqs=[7, 8, 9], day=dt.date(2025, 12, 29))
    trades, books = out["0B"], out["0D"]
    assert trades.select("seq", "price", "price_dir", "size", "size_side").rows() == [
        (7, 100, 1, 1, 1),
        (8, 99, -1, 3, -1),
        (9, 100, 0, 1, 1),
    ]
    assert trades["ts"][0] == dt.datetime(2025, 12, 29, 9, 0, 1, tzinfo=KST)
    assert books.select("seq", "item", "item_venue", "ask_px_1", "bid_px_1").rows() == [
        (7, "000660", "NXT", 101, 100),
        (9, "000660", "NXT", 101, 100),
    ]
    assert trades.schema == schemas.realtime_schema("0B") and books.schema == schemas.realtime_schema("0D")
    assert schemas.normalize_realtime([]) == {}


def test_times_past_midnight_belong_to_the_next_day():
    frames = [frame(trade("235959", "+100")), frame(trade("000001", "+100"))]
    by_day = schemas.normalize_realtime(frames, day=dt.date(2025, 12, 29))["0B"]["ts"].to_list()
    assert by_day == [
        dt.datetime(2025, 12, 29, 23, 59, 59, tzinfo=KST),
        dt.datetime(2025, 12, 30, 0, 0, 1, tzinfo=KST),
    ]
    # by arrival: the date that puts each time nearest to when its frame arrived
    arrived = dt.datetime(2025, 12, 30, 0, 0, 2, tzinfo=KST)
    ns = int(arrived.timestamp() * 1e9)
    by_arrival = schemas.normalize_realtime(frames, received_ns=[ns, ns])["0B"]["ts"].to_list()
    assert by_arrival == by_day
    late = int(dt.datetime(2025, 12, 29, 23, 59, 59, 900000, tzinfo=KST).timestamp() * 1e9)
    assert schemas.normalize_realtime(frames[:1], received_ns=[late])["0B"]["ts"].to_list() == by_day[:1]


def test_bad_batches_name_the_frame():
    good = frame(trade("090001", "+100"))
    with pytest.raises(BodyShapeError, match="frame 1 is not a REAL frame"):
        schemas.normalize_realtime([good, {"trnm": "PING"}])
    with pytest.raises(BodyShapeError, match="frame 1 is not JSON"):
        schemas.normalize_realtime([orjson.dumps(good), b'{"trnm":"REAL","da'])
    with pytest.raises(FieldValueError, match=r"0B\.10"):
        schemas.normalize_realtime([good, frame(trade("090002", "x"))])
    with pytest.raises(TypeError):
        schemas.normalize_realtime(good)  # type: ignore[arg-type]


def test_unknown_fids_warn_and_known_ones_pass_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schemas.normalize_realtime([frame(trade("090001", "+100"))])
    with pytest.warns(UnknownFieldWarning, match="99999"):
        schemas.normalize_realtime([frame(("0B", "005930", {"20": "090001", "99999": "1"}))])


def test_compact_frames_take_the_fast_path_and_agree_with_the_general_one():
    from schemas import realtime

    batch = [frame(trade("090001", "+100"), book("090001")), frame(book("090002"), trade("090002", "-99"))]
    compact = [orjson.dumps(f) for f in batch]
    assert realtime._compact_entries(compact) is not None  # as Kiwoom and the simulator write frames
    fast = schemas.normalize_realtime(compact, day=dt.date(2025, 12, 29))
    general = schemas.normalize_realtime(batch, day=dt.date(2025, 12, 29))  # dicts: the nested reader
    assert fast.keys() == general.keys() and all(fast[k].equals(general[k]) for k in fast)
    # other layouts (spaces, keys in another order) fall back to the general reader
    spaced = [orjson.dumps(f, option=orjson.OPT_INDENT_2) for f in batch]
    reordered = [
        b'{"trnm":"REAL","data":[{"type":"0B","values":{"20":"090001","10":"+100"},"item":"005930"}]}'
    ]
    assert realtime._compact_entries(spaced) is None and realtime._compact_entries(reordered) is None
    assert schemas.normalize_realtime(spaced, day=dt.date(2025, 12, 29))["0D"].equals(general["0D"])
    assert schemas.normalize_realtime(reordered)["0B"]["price"].to_list() == [100]
