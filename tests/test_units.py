"""Units and signs checked against facts the catalog did not make: the reference's own example arithmetic.

Every example value goes through the same path as a fetched page: normalize, then
the dataset layer's conversion to won and shares.  A unit recorded wrong in the
catalog (``schemas/units.py``) moves a ratio below out of its band by 1,000x or
more, so these tests fail on it whatever the simulator does.
"""

from __future__ import annotations

import re
from datetime import datetime

import polars as pl
import pytest

import schemas
from schemas.calendar import KST
from schemas.errors import UnitOverflowError
from schemas.kinds import Kind
from warehouse.datasets import BAR_DATASETS, dataset, datasets
from warehouse.units import recorded_units, to_base_units

CAT = schemas.catalog()
WITH_EXAMPLE = sorted(tr.id for tr in CAT.trs.values() if tr.transport == "rest" and tr.example is not None)
FETCHED = datetime(2025, 1, 6, 18, 30, tzinfo=KST)
PRICE_NAME = re.compile(r"(cur_prc|open_pric|high_pric|low_pric|\w*avg_pric|\w*_pric)(_n)?")


def _example_request(api_id: str) -> dict[str, str]:
    return {k: str(v) for k, v in (CAT.tr(api_id).raw.get("request_example") or {}).items()}


def _in_base(api_id: str) -> pl.DataFrame:
    """The TR's reference example, normalized and converted as its request example asks."""
    tr = CAT.tr(api_id)
    frame = schemas.normalize(api_id, tr.example)
    return to_base_units(api_id, frame, tr.row_fields(), _example_request(api_id))


@pytest.mark.parametrize("api_id", WITH_EXAMPLE)
def test_no_direction_signed_value_of_a_reference_example_normalizes_negative(api_id):
    frame = _in_base(api_id)  # raises UnitOverflowError on a unit that overflows
    # by kind, and by name: a price the rules mistook for a rate must not escape the check
    signed_by_direction = [
        f.name
        for f in CAT.tr(api_id).row_fields()
        if f.kind in (Kind.PRICE, Kind.INDEX, Kind.LEVEL) or PRICE_NAME.fullmatch(f.name)
    ]
    for name in signed_by_direction:
        low = frame.get_column(name).min()
        assert low is None or low >= 0, (
            f"{api_id}.{name} normalized to {low}: a direction sign read as arithmetic"
        )


def test_a_conversion_that_overflows_raises_instead_of_wrapping():
    tr = CAT.tr("ka10081")
    frame = pl.DataFrame({"trde_prica": [10**13]}, schema={"trde_prica": pl.Int64})
    with pytest.raises(UnitOverflowError, match=r"ka10081\.trde_prica"):
        to_base_units("ka10081", frame, tr.row_fields(), {})


def _bars(api_id: str) -> pl.DataFrame:
    ds = next(d for d in datasets().values() if d.style == "bars" and api_id in d.sources)
    request = ds.request(api_id, symbol=CAT.tr(api_id).example.get("stk_cd") or "001")
    return ds.rows(api_id, schemas.normalize(api_id, CAT.tr(api_id).example), request, FETCHED)


BAR_SOURCES_WITH_TURNOVER = sorted(
    api_id
    for name in BAR_DATASETS
    for api_id in dataset(name).sources
    if api_id in WITH_EXAMPLE and dataset(name).time == "date"
)


# Examples whose rows disagree with each other, so their arithmetic cannot decide a unit.
UNCHECKABLE = {
    "ka50082": "its two rows give volume x close / turnover of 10,115 and 99,716: one of them is "
    "wrong by 10x whatever the unit; the vendor's spec says 백만원 (WIRE_NOTES.md)",
}


def test_uncheckable_examples_really_disagree_with_themselves():
    bars = _bars("ka50082")
    ratio = (bars["turnover"] / (bars["volume"] * bars["close"])).to_list()
    assert max(ratio) / min(ratio) > 5, "the example became consistent: check it and drop the exclusion"


@pytest.mark.parametrize("api_id", [a for a in BAR_SOURCES_WITH_TURNOVER if a not in UNCHECKABLE])
def test_bar_turnover_is_volume_times_price_in_won(api_id):
    bars = _bars(api_id).filter((pl.col("volume") > 0) & (pl.col("turnover") > 0))
    assert bars.height, f"{api_id}: no example row with volume and turnover"
    if dataset(next(n for n in BAR_DATASETS if api_id in dataset(n).sources)).family == "sector_bars":
        # an index has no price: the average share price it implies is a plausible KRX price
        avg = (bars["turnover"] / bars["volume"]).to_list()
        assert all(1_000 <= a <= 200_000 for a in avg), f"{api_id}: average share price {avg} won"
        return
    ratio = (bars["turnover"] / (bars["volume"] * bars["close"])).to_list()
    assert all(0.5 <= r <= 2 for r in ratio), f"{api_id}: turnover / (volume x close) = {ratio}"


@pytest.mark.parametrize(
    ("api_id", "amount", "quantity", "price"),
    [
        ("ka90008", "prm_sell_amt", "prm_sell_qty", "cur_prc"),
        ("ka90008", "prm_buy_amt", "prm_buy_qty", "cur_prc"),
        ("ka10014", "shrts_trde_prica", "shrts_qty", "shrts_avg_pric"),
        ("ka10059", "acc_trde_prica", "acc_trde_qty", "cur_prc"),
    ],
)
def test_amounts_are_quantity_times_price_in_won(api_id, amount, quantity, price):
    frame = _in_base(api_id).filter((pl.col(quantity) > 100) & (pl.col(amount) > 0))
    assert frame.height, f"{api_id}: no example row to check"
    ratio = (frame[amount] / (frame[quantity] * frame[price])).to_list()
    assert all(0.5 <= r <= 2 for r in ratio), f"{api_id}: {amount} / ({quantity} x {price}) = {ratio}"


@pytest.mark.parametrize(
    ("api_id", "amount", "quantity"), [(t, "remn_amt", "rmnd") for t in ("ka10068", "ka20068")]
)
def test_lending_balances_value_shares_at_a_krx_price(api_id, amount, quantity):
    frame = _in_base(api_id).filter(pl.col(quantity) > 0)
    avg = (frame[amount] / frame[quantity]).to_list()
    assert avg and all(1_000 <= a <= 1_000_000 for a in avg), f"{api_id}: {amount}/{quantity} = {avg} won"


def test_index_changes_carry_the_levels_implied_decimals():
    frame = schemas.normalize("ka20004", CAT.tr("ka20004").example)
    # "18031" beside "388193": 180.31 points on a 3,881.93 level, not 18,031
    assert frame["pred_pre"].to_list()[0] == pytest.approx(180.31)
    assert (frame["pred_pre"].abs() < frame["cur_prc"] * 0.3).all()


def test_sector_levels_with_a_point_keep_the_direction_apart():
    frame = schemas.normalize("ka20001", CAT.tr("ka20001").example)
    assert frame["cur_prc"][0] == pytest.approx(2394.49) and frame["cur_prc_dir"][0] == -1
    assert frame["pred_pre"][0] == pytest.approx(-278.47)  # a change keeps its arithmetic sign


def test_lending_ratios_are_percent_with_the_point_removed():
    frame = schemas.normalize("ka10069", CAT.tr("ka10069").example)
    assert frame["dbrt_trde_cntrcnt_rt"][0] == pytest.approx(70.61)
    for name in ("dbrt_trde_cntrcnt_rt", "dbrt_trde_rpy_rt", "rmnd_rt", "remn_amt_rt"):
        assert 0 <= frame[name][0] <= 100


def test_option_dependent_units_follow_the_request():
    tr = CAT.tr("ka10059")
    frame = pl.DataFrame({"orgn": [5]}, schema={"orgn": pl.Int64})
    as_amount = to_base_units("ka10059", frame, tr.row_fields(), {"amt_qty_tp": "1", "unit_tp": "1000"})
    thousands = to_base_units("ka10059", frame, tr.row_fields(), {"amt_qty_tp": "2", "unit_tp": "1000"})
    shares = to_base_units("ka10059", frame, tr.row_fields(), {"amt_qty_tp": "2", "unit_tp": "1"})
    assert (as_amount["orgn"][0], thousands["orgn"][0], shares["orgn"][0]) == (5_000_000, 5_000, 5)


def test_volume_saturated_by_the_server_is_null_not_a_number():
    api_id = "ka10081"
    body = {**CAT.tr(api_id).example}
    rows = [dict(r) for r in body["stk_dt_pole_chart_qry"]]
    rows[0]["trde_qty"] = "4294967295"
    body["stk_dt_pole_chart_qry"] = rows
    ds = dataset("stock_bars_daily")
    bars = ds.rows(api_id, schemas.normalize(api_id, body), ds.request(api_id, symbol="005930"), FETCHED)
    assert bars["volume"][0] is None and bars["volume"][1:].null_count() == 0


def test_every_amount_column_says_its_unit():
    """A dataset's amount column is in won, or its comment says plainly what it holds."""
    for ds in datasets().values():
        for column, comment in ds.comments.items():
            if column.endswith(("_amount", "turnover")):
                assert "원" in comment or "단위 미상" in comment or "요청에 따라" in comment, (
                    f"{ds.name}.{column}: {comment!r} does not say its unit"
                )


def test_the_unit_list_covers_the_facts_of_the_fidelity_review():
    listed = {(tr, field): stored for tr, field, _, _, stored in recorded_units()}
    for key in (("ka10082", "trde_prica"), ("ka90009", "for_netprps_amt"), ("ka52301", "buy_amt_irds")):
        assert listed[key] == "원"
    assert listed[("ka20006", "trde_qty")] == "주"
    assert ("ka10059", "orgn") in listed and ("ka90007", "all_tdy") in listed


def test_sector_net_buying_levels_changes_and_rates_agree():
    frame = schemas.normalize("ka10051", CAT.tr("ka10051").example)
    implied = frame["pred_pre"] / (frame["cur_prc"] - frame["pred_pre"]) * 100
    assert ((implied - frame["flu_rt"]).abs() < 0.02).all(), "level, change and rate disagree"


def test_program_trend_columns_are_amounts_or_quantities_as_asked():
    tr = CAT.tr("ka90005")
    frame = pl.DataFrame(
        {"all_sel": [7], "dfrt_trde_sell_qty": [3]},
        schema={"all_sel": pl.Int64, "dfrt_trde_sell_qty": pl.Int64},
    )
    amounts = to_base_units("ka90005", frame, tr.row_fields(), {"amt_qty_tp": "1"})
    quantities = to_base_units("ka90005", frame, tr.row_fields(), {"amt_qty_tp": "2"})
    assert amounts.row(0) == (7_000_000, 3_000) and quantities.row(0) == (7_000, 3_000)
