"""Property tests per kind: generated wire values round-trip; signs and empties behave; garbage fails."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import FieldValueError
from schemas.catalog import Field
from schemas.kinds import Kind
from schemas.normalize import convert

KST = ZoneInfo("Asia/Seoul")
settings.register_profile("ci", max_examples=150, deadline=None)
settings.load_profile("ci")


def run(kind: Kind, values: list[str | None], decimals: int = 0, venue: bool = False) -> pl.DataFrame:
    field = Field("v", "", "", kind, "", decimals=decimals, venue=venue)
    return convert("kaTEST", pl.DataFrame({"v": values}, schema={"v": pl.String}), [field])


magnitudes = st.integers(min_value=0, max_value=10**15)
signs = st.sampled_from(["", "+", "-", "--"])


@given(st.lists(st.tuples(signs, magnitudes), min_size=1, max_size=30))
def test_price_is_absolute_with_direction(pairs):
    frame = run(Kind.PRICE, [f"{s}{m}" for s, m in pairs])
    assert frame["v"].to_list() == [m for _, m in pairs]
    assert frame["v_dir"].to_list() == [-1 if "-" in s else (1 if s == "+" else 0) for s, _ in pairs]


@given(st.lists(st.tuples(signs, magnitudes), min_size=1, max_size=30))
def test_signed_keeps_the_sign_doubled_or_not(pairs):
    frame = run(Kind.SIGNED, [f"{s}{m}" for s, m in pairs])
    assert frame["v"].to_list() == [-m if "-" in s else m for s, m in pairs]


@given(st.lists(st.tuples(st.sampled_from(["+", "-"]), magnitudes), min_size=1, max_size=30))
def test_side_qty_splits_trade_side(pairs):
    frame = run(Kind.SIDE_QTY, [f"{s}{m}" for s, m in pairs])
    assert frame["v"].to_list() == [m for _, m in pairs]
    assert frame["v_side"].to_list() == [1 if s == "+" else -1 for s, _ in pairs]


@given(st.lists(st.tuples(signs, magnitudes), min_size=1, max_size=30))
def test_index_is_level_over_100(pairs):
    frame = run(Kind.INDEX, [f"{s}{m}" for s, m in pairs])
    assert frame["v"].to_list() == pytest.approx([m / 100 for _, m in pairs])


@given(
    st.lists(st.tuples(signs, st.integers(0, 10**9), st.integers(0, 99)), min_size=1, max_size=30),
    st.sampled_from([0, 2]),
)
def test_rate_with_and_without_implied_decimals(triples, decimals):
    values = [f"{s}{i}.{f:02d}" if not decimals else f"{s}{i}{f:02d}" for s, i, f in triples]
    frame = run(Kind.RATE, values, decimals=decimals)
    expected = [(-1 if "-" in s else 1) * (i + f / 100) for s, i, f in triples]
    assert frame["v"].to_list() == pytest.approx(expected)


@given(st.lists(magnitudes, min_size=1, max_size=30))
def test_qty_round_trips_and_rejects_negatives(values):
    assert run(Kind.QTY, [str(v) for v in values])["v"].to_list() == values
    with pytest.raises(FieldValueError):
        run(Kind.QTY, [str(v) for v in values] + [f"-{values[0] + 1}"])


@given(st.lists(st.dates(dt.date(1980, 1, 1), dt.date(2099, 12, 31)), min_size=1, max_size=30))
def test_dates_round_trip(dates):
    assert run(Kind.DATE, [d.strftime("%Y%m%d") for d in dates])["v"].to_list() == dates


@given(st.lists(st.times().map(lambda t: t.replace(microsecond=0)), min_size=1, max_size=30))
def test_times_round_trip(times):
    assert run(Kind.TIME, [t.strftime("%H%M%S") for t in times])["v"].to_list() == times


@given(
    st.lists(
        st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2090, 1, 1)).map(
            lambda d: d.replace(microsecond=0)
        ),
        min_size=1,
        max_size=30,
    )
)
def test_timestamps_are_korean_time(stamps):
    frame = run(Kind.TIMESTAMP, [d.strftime("%Y%m%d%H%M%S") for d in stamps])
    assert frame["v"].to_list() == [d.replace(tzinfo=KST) for d in stamps]


@given(
    st.lists(
        st.tuples(st.from_regex(r"\A[0-9A-Z]{6}\Z"), st.sampled_from(["", "_NX", "_AL"])),
        min_size=1,
        max_size=30,
    )
)
def test_codes_keep_leading_zeros_and_split_venue(pairs):
    frame = run(Kind.CODE, [c + s for c, s in pairs], venue=True)
    assert frame["v"].to_list() == [c for c, _ in pairs]
    assert frame["v_venue"].to_list() == [{"": "KRX", "_NX": "NXT", "_AL": "SOR"}[s] for _, s in pairs]


@pytest.mark.parametrize("kind", list(Kind))
def test_empty_and_missing_become_null_in_every_column(kind):
    frame = run(kind, ["", None])
    assert all(frame[c].is_null().all() for c in frame.columns)


NUMERIC = [Kind.PRICE, Kind.SIGNED, Kind.AMOUNT, Kind.QTY, Kind.RATE, Kind.INDEX, Kind.SIDE_QTY]
garbage = st.one_of(
    st.text(alphabet="abcxyz가나.,/ ", min_size=1, max_size=8).filter(lambda s: s.strip() != ""),
    st.from_regex(r"\A[0-9]+[a-z%][0-9]*\Z"),
    st.sampled_from(["-", "+", "+-+1", "1-2", "1.2.3", "nan", "inf", "1e5", "0x10", "--", "１２"]),
)


@given(st.sampled_from(NUMERIC), garbage)
def test_numeric_garbage_is_rejected_with_field_and_value(kind, junk):
    with pytest.raises(FieldValueError) as info:
        run(kind, ["1", junk])
    assert info.value.value == junk and info.value.field == "v" and info.value.api_id == "kaTEST"


@given(
    st.sampled_from([Kind.DATE, Kind.TIME, Kind.TIMESTAMP]),
    st.one_of(garbage, st.sampled_from(["20251301", "20250230", "246000", "2025010112", "1234567"])),
)
def test_temporal_garbage_is_rejected(kind, junk):
    with pytest.raises(FieldValueError):
        run(kind, [junk])
