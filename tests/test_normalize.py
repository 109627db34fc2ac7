"""Normalization semantics pinned on reference bodies and hand-made ones."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import schemas
from schemas import BodyShapeError, FieldValueError, UnknownTRError

KST = ZoneInfo("Asia/Seoul")


def daily(rows, **extra):
    return {"stk_cd": "005930", "stk_dt_pole_chart_qry": rows, "return_code": 0, "return_msg": "ok", **extra}


def row(**kw):
    base = {
        "cur_prc": "70100",
        "trde_qty": "9263135",
        "trde_prica": "648525",
        "dt": "20250908",
        "open_pric": "69800",
        "high_pric": "70500",
        "low_pric": "69600",
        "pred_pre": "+600",
        "pred_pre_sig": "2",
        "trde_tern_rt": "+0.16",
    }
    return {**base, **kw}


def test_daily_chart_is_typed_by_kind():
    frame = schemas.normalize(
        "ka10081", daily([row(), row(cur_prc="-69500", pred_pre="--600", dt="20250905")])
    )
    expected = pl.DataFrame(
        {
            "cur_prc": [70100, 69500],
            "cur_prc_dir": pl.Series([0, -1], dtype=pl.Int8),
            "dt": [dt.date(2025, 9, 8), dt.date(2025, 9, 5)],
            "pred_pre": [600, -600],
            "trde_tern_rt": [0.16, 0.16],
            "stk_cd": ["005930", "005930"],
            "stk_cd_venue": ["KRX", "KRX"],
        }
    )
    assert_frame_equal(frame.select(expected.columns), expected)
    assert frame.schema["trde_prica"] == pl.Int64 and frame.schema["pred_pre_sig"] == pl.String


def test_direction_marker_is_split_from_the_price():
    frame = schemas.normalize(
        "ka10081", daily([row(cur_prc="+74800"), row(cur_prc="-42900"), row(cur_prc="100")])
    )
    assert frame["cur_prc"].to_list() == [74800, 42900, 100]
    assert frame["cur_prc_dir"].to_list() == [1, -1, 0]


def test_doubled_signs_are_one_negative_sign():
    frame = schemas.normalize(
        "ka10081", daily([row(pred_pre="--3472"), row(pred_pre="-3472"), row(pred_pre="+3472")])
    )
    assert frame["pred_pre"].to_list() == [-3472, -3472, 3472]


def test_empty_strings_become_null_never_zero():
    frame = schemas.normalize(
        "ka10081", daily([row(cur_prc="", pred_pre="", trde_tern_rt="", pred_pre_sig="")])
    )
    assert frame.select("cur_prc", "cur_prc_dir", "pred_pre", "trde_tern_rt", "pred_pre_sig").row(0) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_index_levels_become_real_levels():
    body = {
        "inds_cd": "001",
        "inds_dt_pole_qry": [
            {
                "cur_prc": "252127",
                "trde_qty": "393564",
                "dt": "20250210",
                "open_pric": "-251064",
                "high_pric": "252733",
                "low_pric": "249918",
                "trde_prica": "10582466",
            }
        ],
        "return_code": 0,
    }
    frame = schemas.normalize("ka20006", body)
    assert frame["cur_prc"].to_list() == [2521.27]
    assert frame["open_pric"].to_list() == [2510.64] and frame["open_pric_dir"].to_list() == [-1]
    assert frame.schema["cur_prc"] == pl.Float64


def test_index_levels_are_the_decimal_they_were_sent_as():
    # Polars divides by a constant as x * 0.01, which misses by one ulp for ~13% of
    # levels: "90317" became 903.1700000000001 (sector_bars_daily.open in make demo)
    levels = [str(v) for v in range(90_000, 110_000)]
    body = {
        "inds_cd": "001",
        "inds_dt_pole_qry": [{"cur_prc": v, "dt": "20250210"} for v in levels],
        "return_code": 0,
    }
    frame = schemas.normalize("ka20006", body)
    assert frame["cur_prc"].to_list() == [int(v) / 100 for v in levels]


def test_rates_with_implied_decimals():
    fields = [f for tr in schemas.catalog().trs.values() for f in tr.row_fields() if f.decimals]
    assert fields, "the reference says '우측 2자리 소수점자리수' somewhere"
    tr = next(t for t in schemas.catalog().trs.values() if any(f.decimals for f in t.row_fields()))
    field = next(f for f in tr.row_fields() if f.decimals)
    frame = schemas.normalize(tr.id, _body_with(tr, field.name, "+698"))
    assert frame[field.name].to_list() == [pytest.approx(6.98)]


def _body_with(tr, name, value):
    example = json.loads(json.dumps(tr.example))
    if tr.main and any(f.name == name for f in tr.main.items):
        example[tr.main.key] = [{**example[tr.main.key][0], name: value}]
    else:
        example[name] = value
    return example


def test_investor_nets_keep_their_sign():
    # 국가 (natn) once passed for a price: "-639" became 639 with a direction of -1
    tr = schemas.catalog().tr("ka10059")
    body = _body_with(tr, "natn", "-639")
    body[tr.main.key][0].update(ind_invsr="--28837", frgnr_invsr="+61779")
    frame = schemas.normalize("ka10059", body)
    assert frame.select("natn", "ind_invsr", "frgnr_invsr").row(0) == (-639, -28837, 61779)
    assert frame.schema["natn"] == pl.Int64 and "natn_dir" not in frame.columns


def test_minute_bars_are_korean_timestamps():
    body = {
        "stk_cd": "005930_NX",
        "stk_min_pole_chart_qry": [
            {
                "cur_prc": "-78800",
                "trde_qty": "7913",
                "cntr_tm": "20250917132000",
                "open_pric": "-78850",
                "high_pric": "-78900",
                "low_pric": "-78800",
                "acc_trde_qty": "14947571",
                "pred_pre": "-600",
                "pred_pre_sig": "5",
            }
        ],
        "return_code": 0,
    }
    frame = schemas.normalize("ka10080", body)
    assert frame["cntr_tm"].to_list() == [dt.datetime(2025, 9, 17, 13, 20, tzinfo=KST)]
    assert frame.schema["cntr_tm"] == pl.Datetime("us", "Asia/Seoul")
    assert frame.select("stk_cd", "stk_cd_venue").row(0) == ("005930", "NXT")


def test_venue_suffixes():
    frame = schemas.normalize("ka10081", daily([row()], stk_cd="005930_AL"))
    assert frame.select("stk_cd", "stk_cd_venue").row(0) == ("005930", "SOR")


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("cur_prc", "12a", "price"),
        ("trde_qty", "-5", "qty"),
        ("trde_qty", "1.5", "qty"),
        ("dt", "2025-09-08", "date"),
        ("dt", "20251341", "date"),
        ("trde_tern_rt", "nan", "rate"),
        ("trde_tern_rt", "1e5", "rate"),
        ("pred_pre", "+-+5", "signed"),
        ("pred_pre", "-", "signed"),
    ],
)
def test_garbage_raises_naming_tr_field_and_value(field, value, kind):
    with pytest.raises(FieldValueError) as info:
        schemas.normalize("ka10081", daily([row(), row(**{field: value})]))
    err = info.value
    assert (err.api_id, err.field, err.value, err.kind, err.row) == ("ka10081", field, value, kind, 1)
    assert "ka10081" in str(err) and field in str(err) and repr(value) in str(err)


def test_bad_bodies_are_errors():
    with pytest.raises(UnknownTRError, match="ka99999"):
        schemas.normalize("ka99999", {})
    with pytest.raises(BodyShapeError, match="no list 'stk_dt_pole_chart_qry'"):
        schemas.normalize("ka10081", {"stk_cd": "005930", "return_code": 0})
    with pytest.raises(BodyShapeError, match="not a list"):
        schemas.normalize("ka10081", {"stk_dt_pole_chart_qry": "x", "return_code": 0})
    with pytest.raises(BodyShapeError, match="return_code 5"):
        schemas.normalize(
            "ka10081", {"return_code": 5, "return_msg": "[1700:허용된 요청 개수를 초과하였습니다]"}
        )


def test_unknown_keys_warn_and_are_not_silently_kept():
    with pytest.warns(schemas.UnknownFieldWarning, match="new_field"):
        frame = schemas.normalize("ka10081", daily([row(new_field="1")]))
    assert "new_field" not in frame.columns


def test_example_spelling_aliases_are_accepted():
    # ka10005's table says for_posst, its example for_poss: either on the wire fills for_posst
    tr = schemas.catalog().tr("ka10005")
    field = next(f for f in tr.row_fields() if f.name == "for_posst")
    assert field.aliases == ("for_poss",)
    first = tr.example[tr.main.key][0]
    frame = schemas.normalize("ka10005", {tr.main.key: [first], "return_code": 0})
    assert frame["for_posst"][0] is not None
    assert "for_poss" not in frame.columns


def test_scalar_colliding_with_item_becomes_body_column():
    tr = schemas.catalog().tr("ka90002")
    frame = schemas.normalize("ka90002", tr.example)
    assert "flu_rt" in frame.columns and "body_flu_rt" in frame.columns
    assert frame["body_flu_rt"].n_unique() == 1


def test_pages_path_equals_dict_path_and_drops_empty_pages():
    pages = [
        json.dumps(daily([row(), row(dt="20250905")])).encode(),
        json.dumps(daily([])).encode(),
        json.dumps(daily([row(dt="20250904", cur_prc="-1")])).encode(),
    ]
    fast = schemas.normalize_pages("ka10081", pages)
    slow = pl.concat([schemas.normalize("ka10081", json.loads(p)) for p in pages])
    assert_frame_equal(fast, slow)
    assert fast.height == 3


def test_pages_path_rejects_broken_pages_whole():
    good = json.dumps(daily([row()])).encode()
    with pytest.raises(FieldValueError):
        schemas.normalize_pages("ka10081", [good, json.dumps(daily([row(dt="x")])).encode()])
    with pytest.raises(BodyShapeError, match="page 2"):
        schemas.normalize_pages("ka10081", [good, b'{"stk_dt_pole_chart_qry": [ {"cur_prc": '])
    with pytest.raises(BodyShapeError, match="error body"):
        schemas.normalize_pages("ka10081", [good, b'{"return_code": 3, "return_msg": "[8005:Token]"}'])


def test_realtime_trade_gets_canonical_columns_and_side():
    msg = {
        "trnm": "REAL",
        "data": [
            {
                "type": "0B",
                "name": "주식체결",
                "item": "005930",
                "values": {"20": "165208", "10": "-20800", "15": "+82", "13": "30379732"},
            },
            {
                "type": "0B",
                "name": "주식체결",
                "item": "000660_NX",
                "values": {"20": "090001", "10": "+1000", "15": "-7", "13": "5"},
            },
        ],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames = schemas.normalize_realtime([msg])
    trades = frames["0B"]
    assert trades.select("item", "item_venue", "time", "price", "price_dir", "size", "size_side").rows() == [
        ("005930", "KRX", dt.time(16, 52, 8), 20800, -1, 82, 1),
        ("000660", "NXT", dt.time(9, 0, 1), 1000, 1, 7, -1),
    ]
    assert {"cum_volume", "best_ask", "best_bid", "strength"} <= set(trades.columns)


def test_realtime_order_book_has_ten_levels_per_side():
    example = schemas.catalog().realtime_type("0D").raw["example"]
    book = schemas.normalize_realtime([example])["0D"]
    for side in ("ask", "bid"):
        for i in range(1, 11):
            assert book.schema[f"{side}_px_{i}"] == pl.Int64
            assert book.schema[f"{side}_qty_{i}"] == pl.Int64
    assert {"ask_qty_total", "bid_qty_total", "time"} <= set(book.columns)
    assert book["ask_px_1"][0] > 0


def test_realtime_other_types_keep_fid_names_and_bad_frames_fail():
    example = schemas.catalog().realtime_type("0A").raw["example"]
    frame = schemas.normalize_realtime([example])["0A"]
    assert any(c.startswith("fid_") for c in frame.columns)
    with pytest.raises(BodyShapeError):
        schemas.normalize_realtime([{"trnm": "PING"}])
    with pytest.raises(UnknownTRError):
        schemas.normalize_realtime([{"trnm": "REAL", "data": [{"type": "ZZ", "item": "1", "values": {}}]}])
    with pytest.raises(FieldValueError, match=r"0B\.10"):
        schemas.normalize_realtime(
            [{"trnm": "REAL", "data": [{"type": "0B", "item": "1", "values": {"10": "abc"}}]}]
        )
