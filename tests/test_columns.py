"""Readable datasets: English column names, readable options, one name per concept, won and shares.

The unit test at the heart of this module walks every column of every dataset back to
the catalog field it comes from: an amount or a quantity must be converted into won or
shares by a unit the catalog records (and the conversion is run here, through
``Dataset.rows``), or say in its comment that it is stored as sent.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

import polars as pl
import pytest

import schemas
from schemas.calendar import KST
from schemas.catalog import Field, catalog
from schemas.columns import COLUMNS, OPTION_VALUES, option_wire, tr_columns
from schemas.kinds import Unit
from schemas.normalize import output_schema
from warehouse.datasets import BAR_DATASETS, dataset, datasets, option_renames, renames
from warehouse.tr_datasets import SPECS
from warehouse.units import BASE_NAME, UNKNOWN, is_amount, is_quantity

FETCHED = datetime(2025, 12, 30, 18, 0, tzinfo=KST)
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
TR_DATASETS = [s.name for s in SPECS]
INVESTOR_TABLES = {
    "stock_investor_institution": "ka10059",
    "stock_investor_institution_chart": "ka10060",
    "stock_investor_institution_total": "ka10061",
    "intraday_investor_trading_chart": "ka10064",
    "after_close_investor_trading": "ka10066",
}


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", TR_DATASETS)
def test_every_tr_dataset_column_is_english_snake_case(name):
    ds = dataset(name)
    wire_only = set(COLUMNS) - {english for english, _ in COLUMNS.values()}
    for column in ds.schema:
        assert SNAKE.fullmatch(column), f"{name}.{column} is not snake_case"
        # request options other than the readable ones keep the request's field name
        assert column in ds.options or column not in wire_only, f"{name}.{column} is still a wire name"
        assert column not in ("amt_qty_tp", "trde_tp", "unit_tp", "trde_upper_tp", "netslmt_tp")


def test_the_stock_and_sector_lists_have_symbol_name_and_market():
    stocks, sectors = dataset("stock_list"), dataset("sector_list")
    assert {"symbol", "name", "market_code", "market_name"} <= set(stocks.schema)
    assert {"symbol", "name", "market_code"} <= set(sectors.schema)
    assert stocks.key == ("mrkt_tp", "symbol") and sectors.key == ("mrkt_tp", "symbol")
    body = catalog().tr("ka10099").example
    rows = stocks.rows("ka10099", schemas.normalize("ka10099", body), {"mrkt_tp": "0"}, FETCHED)
    first = body["list"][0]
    assert (rows["symbol"][0], rows["name"][0]) == (first["code"], first["name"])


@pytest.mark.parametrize(("name", "api_id"), sorted(INVESTOR_TABLES.items()))
def test_investor_categories_have_one_name_and_one_label_in_every_table(name, api_id):
    ds = dataset(name)
    for wire in ("invrtt", "invtrt"):  # 투신 is spelt both ways, and labelled 특신 in ka10060/ka10061
        if wire in output_schema(api_id):
            assert tr_columns(api_id)[wire][0] == "investment_trust"
    assert ds.comments["investment_trust"].startswith("투신 ")
    assert "특신" not in "".join(ds.comments.values())
    for column in ("foreign", "institution", "insurance", "bank", "pension_fund", "government"):
        assert column in ds.schema, (name, column)


def test_sector_net_buying_uses_the_investor_names():
    ds = dataset("sector_investor_net_buying")
    for column in ("individual", "foreign", "institution", "financial_investment", "investment_trust"):
        assert column in ds.schema
    assert "pension_fund" in ds.schema and "domestic_foreign" in ds.schema


def test_a_column_name_means_one_thing_across_tables():
    """Every English name has one Korean label (a qualifier in parentheses aside) in every TR dataset."""
    labels: dict[str, set[str]] = {}
    for spec in SPECS:
        for english, label, _ in tr_columns(spec.api_id).values():
            labels.setdefault(english, set()).add(label.split(" (")[0].removesuffix(" 순매수"))
    split = {k: v for k, v in labels.items() if len(v) > 1}
    # a few concepts the reference words two ways
    allowed = {
        "change",  # 전일대비 / 대비
        "symbol",  # 종목코드 / 업종코드
        "name",  # 종목명 / 업종명
        "program_buy_quantity",  # 프로그램매수수량 / 프로그램매수체결수량
        "program_sell_quantity",
        "program_buy_amount",
        "program_sell_amount",
        "program_net_buy_amount",  # 프로그램순매수금액 / 프로그램순매수대금
        "institution_net_quantity",  # 기관일별순매매수량 / 기관순매매수량
        "foreign_net_quantity",
        "time",  # 시간 / 체결시간
        "date",
        "financial_investment",  # 금융투자 / 금융투자 (증권)
        "other_finance",
        "pension_fund",
    }
    assert set(split) <= allowed, {k: v for k, v in split.items() if k not in allowed}


# ----------------------------------------------------------------------------- readable options


def _investor_rows(options: dict[str, str]) -> pl.DataFrame:
    ds = dataset("stock_investor_institution")
    body = dict(catalog().tr("ka10059").example)
    request = ds.request(symbol="005930", end=date(2025, 12, 30), **options)
    return ds.rows("ka10059", schemas.normalize("ka10059", body), request, FETCHED)


def test_meaning_changing_options_are_readable_columns():
    amounts = _investor_rows({"amt_qty_tp": "1", "trde_tp": "0", "unit_tp": "1000"})
    shares = _investor_rows({"amt_qty_tp": "2", "trde_tp": "2", "unit_tp": "1"})
    assert amounts.select("measure", "side", "quantity_unit").unique().rows() == [
        ("amount", "net", "thousand_shares")
    ]
    assert shares.select("measure", "side", "quantity_unit").unique().rows() == [
        ("quantity", "sell", "shares")
    ]
    # the same wire number: millions of won as an amount, shares as a quantity
    assert amounts["individual"][0] == shares["individual"][0] * 1_000_000
    ds = dataset("stock_investor_institution")
    assert ds.option_values("ka10059", ds.request(symbol="005930")) == {
        "measure": "amount",
        "side": "net",
        "quantity_unit": "thousand_shares",
    }


def test_readable_option_values_translate_back_to_the_request():
    assert option_wire("ka10059", {"measure": "quantity", "side": "buy"}) == {
        "amt_qty_tp": "2",
        "trde_tp": "1",
    }
    assert option_wire("ka10051", {"measure": "quantity", "mrkt_tp": "0"}) == {
        "amt_qty_tp": "1",
        "mrkt_tp": "0",
    }
    ds = dataset("stock_investor_institution")
    assert ds.request(symbol="005930", measure="quantity", side="buy") == ds.request(
        symbol="005930", amt_qty_tp="2", trde_tp="1"
    )
    with pytest.raises(ValueError, match=r"ka10059: measure='shares' is not one of amount, quantity"):
        ds.request(symbol="005930", measure="shares")
    with pytest.raises(ValueError, match=r"ka10059: amt_qty_tp='9'"):
        dataset("stock_investor_institution").option_values("ka10059", {"amt_qty_tp": "9"})


def test_every_readable_option_covers_the_codes_the_reference_allows():
    for (api_id, wire), values in OPTION_VALUES.items():
        spec = next(s for s in catalog().tr(api_id).request if s["name"] == wire)
        allowed = set(spec.get("allowed") or {})
        assert allowed <= set(values), (
            f"{api_id}.{wire}: codes {allowed - set(values)} have no readable value"
        )


# ----------------------------------------------------------------------------- trading date


@pytest.mark.parametrize("name", [n for n in BAR_DATASETS if n.endswith(("tick", "minute"))])
def test_tick_and_minute_bars_carry_the_kst_trading_date(name):
    ds = dataset(name)
    assert ds.schema["date"] == pl.Date
    api_id = ds.sources[0]
    stamps = [datetime(2025, 12, 30, 0, 30, tzinfo=KST), datetime(2025, 12, 29, 15, 30, tzinfo=KST)]
    frame = pl.DataFrame(
        {
            "cntr_tm": pl.Series(stamps, dtype=pl.Datetime("us", "Asia/Seoul")),
            **{c: [1, 1] for c in ("open_pric", "high_pric", "low_pric", "cur_prc", "cntr_pric")},
            **{c: [1, 1] for c in ("trde_qty", "acc_trde_qty")},
        }
    )
    request = ds.request(api_id, symbol="001" if name.startswith("sector") else "005930")
    rows = ds.rows(
        api_id, frame.select(c for c in frame.columns if c in output_schema(api_id)), request, FETCHED
    )
    # 00:30 KST is the previous day in UTC: the date is Korea's
    assert rows["date"].to_list() == [date(2025, 12, 30), date(2025, 12, 29)]


# ----------------------------------------------------------------------------- migration of old lakes


@pytest.mark.parametrize("name", TR_DATASETS)
def test_renames_turn_the_wire_named_table_into_the_english_one(name):
    """The columns a lake written before the English names has, renamed, are the dataset's columns."""
    ds = dataset(name)
    spec = next(s for s in SPECS if s.name == name)
    moved = renames()[name]
    old = [c for c in ds.schema if c not in ds.wire or c in (ds.symbol, ds.time)]
    old += [ds.wire[c] for c in ds.schema if c in ds.wire and c not in (ds.symbol, ds.time)]
    assert set(moved) <= set(old)
    assert sorted(moved.get(c, c) for c in old) == sorted(ds.schema)
    assert set(output_schema(spec.api_id)) - {spec.time_field} <= set(old) | {ds.wire.get(ds.time)}
    for column, values in option_renames().get(name, {}).items():
        assert column in ds.options and all(SNAKE.fullmatch(v) for v in values.values())


# ----------------------------------------------------------------------------- won and shares


def _sources(name: str) -> dict[str, tuple[str, Field]]:
    """Each column of ``name`` that comes from one catalog field: (TR or realtime type, field)."""
    ds = dataset(name)
    api_id = ds.sources[0]
    if ds.style == "stream":
        return {
            f.column: (api_id, f) for f in catalog().realtime_type(api_id).fields if f.column in ds.schema
        }
    fields = {f.name: f for f in catalog().tr(api_id).row_fields()}
    out = {}
    for column, wire in ds.wire.items():
        named = tr_columns(api_id).get(wire) if ds.style != "bars" else None
        field = fields.get(named[2] if named else wire)
        if field is not None and column in ds.schema and wire in field.output_schema():
            out[column] = (api_id, field)
    return out


# Columns whose comments claim shares without a unit the catalog records; they belong to the
# streaming datasets (warehouse/stream_datasets.py), whose FIDs the unit table has not reviewed.
UNRECORDED_CLAIMS = {
    ("stock_trades", "size"),
    ("stock_trades", "cum_volume"),
    ("stock_orderbook", "ask_qty_total"),
    ("stock_orderbook", "bid_qty_total"),
    ("stock_orderbook", "exp_qty"),
}


def _unit_problem(comment: str, field: Field, amount: bool) -> str | None:
    """Why ``comment`` does not honestly say the column is in won/shares (None: it does).

    A request option may make the column an amount or a quantity: each case is checked.
    """
    if field.unit:
        unit = Unit(field.unit)
        if unit.base != ("KRW" if amount else "SHR"):
            return f"recorded in {unit.value}, not an {'amount' if amount else 'quantity'} unit"
        cases = [unit]
    else:
        cases = [Unit(r["unit"]) if r["unit"] else None for r in field.unit_rules] or [None]
    for unit in cases:
        if unit is None and UNKNOWN not in comment:
            return "no recorded unit and the comment does not mark it as stored as sent"
        if unit is not None and BASE_NAME[unit.base] not in comment:
            return f"converted into {BASE_NAME[unit.base]} but the comment does not say so"
    return None


@pytest.mark.parametrize("name", sorted(datasets()))
def test_every_amount_is_in_won_and_every_quantity_in_shares_or_marked(name):
    ds = dataset(name)
    problems = []
    for column, (api_id, field) in _sources(name).items():
        if column.endswith(("_dir", "_venue")):
            continue
        amount, quantity = is_amount(field), is_quantity(field)
        if not (amount or quantity):
            continue
        why = _unit_problem(ds.comments[column], field, amount)
        if why and (name, column) not in UNRECORDED_CLAIMS:
            problems.append(f"{name}.{column} ({api_id}.{field.name} {field.label}): {why}")
    assert not problems, "\n".join(problems)


def test_the_unrecorded_claims_are_still_unrecorded():
    """Shrinks the exception list above when the unit table records these FIDs."""
    for name, column in UNRECORDED_CLAIMS:
        _, field = _sources(name)[column]
        assert not field.unit and not field.unit_rules, f"{name}.{column} now has a unit: drop the exception"


def _one_row(api_id: str) -> pl.DataFrame:
    """A normalized answer of one row: every number 1, so a column ends up as its unit's factor."""
    values = [
        (pl.Int64, 1),
        (pl.Float64, 1.0),
        (pl.Int8, 1),
        (pl.String, "x"),
        (pl.Date, date(2025, 12, 30)),
        (pl.Time, time(10, 0)),
    ]
    row = {}
    for column, dtype in output_schema(api_id).items():
        value = next((v for t, v in values if dtype == t), datetime(2025, 12, 30, 10, 0, tzinfo=KST))
        row[column] = pl.Series([value], dtype=dtype)
    return pl.DataFrame(row)


def _requests(name: str, api_id: str, field: Field) -> list[tuple[dict[str, str], Unit | None]]:
    ds = dataset(name)
    symbol = {"symbol": "005930"} if ds.symbol else {}
    base = ds.request(api_id, symbol.get("symbol"))
    if field.unit:
        return [(base, Unit(field.unit))]
    return [({**base, **r["when"]}, Unit(r["unit"]) if r["unit"] else None) for r in field.unit_rules]


@pytest.mark.parametrize("name", [n for n in sorted(datasets()) if dataset(n).style != "stream"])
def test_every_recorded_unit_is_converted_by_the_dataset(name):
    """A one in the wire unit is the unit's factor in the row: 1 백만원 is 1,000,000 won."""
    ds = dataset(name)
    for column, (api_id, field) in _sources(name).items():
        if not (field.unit or field.unit_rules) or column.endswith(("_dir", "_venue")):
            continue
        for request, unit in _requests(name, api_id, field):
            rows = ds.rows(api_id, _one_row(api_id), request, FETCHED)
            expected = unit.factor if unit else 1
            assert rows[column][0] == expected, (
                f"{name}.{column} with {request}: {rows[column][0]} != {expected}"
            )
