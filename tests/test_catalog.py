"""The catalog is generated from the reference, with reviewed repairs that are checked."""

from __future__ import annotations

import json

import pytest

import schemas
from schemas import build_catalog
from schemas.build_catalog import CatalogBuildError, build, dumps
from schemas.catalog import CATALOG_PATH
from schemas.kinds import Unit
from schemas.reference import ExampleText, RawField, RawTR


def test_rebuilding_from_the_reference_gives_the_committed_catalog(reference_path):
    catalog, _ = build(reference_path)
    assert dumps(catalog) == CATALOG_PATH.read_text(encoding="utf-8"), (
        "schemas/catalog.json is stale: run `make catalog` and commit it"
    )


def test_every_tr_of_the_table_of_contents_is_catalogued():
    cat = schemas.catalog()
    assert len(cat.trs) + len(cat.realtime) == 206
    assert {"au10001", "ka10081", "ka20019", "ka50079", "ka90013", "kt50075"} <= set(cat.trs)


def test_realtime_codes_use_the_digit_zero():
    codes = set(schemas.catalog().realtime)
    assert {"0B", "0D", "0F", "0H", "0I", "0J", "0U", "0u", "1h", "00", "04"} <= codes
    assert not any(code.startswith("O") for code in codes)
    fids = schemas.catalog().realtime_type("0B").by_fid()
    assert fids["10"].label == "현재가" and fids["15"].kind == schemas.Kind.SIDE_QTY


def test_broken_keys_are_repaired_against_the_examples():
    cat = schemas.catalog()
    assert cat.tr("ka10081").main_list == "stk_dt_pole_chart_qry"
    assert cat.tr("ka90008").main_list == "stk_tm_prm_trde_trnsn"
    assert cat.tr("ka10064").main_list == "opmr_invsr_trde_chart"
    field = next(f for f in cat.tr("ka10051").row_fields() if f.name == "native_trmt_frgnr_netprps")
    assert field.kind == schemas.Kind.SIGNED


def test_short_selling_turnover_is_in_thousands_of_won():
    tr = schemas.catalog().tr("ka10014")
    field = next(f for f in tr.row_fields() if f.name == "shrts_trde_prica")
    assert (field.kind, field.unit) == (schemas.Kind.AMOUNT, Unit.THOUSAND_WON.value)
    # the reference's rows: short quantity x average price is the amount x 1000
    for r in tr.example[tr.main.key]:
        won = int(r["shrts_qty"]) * int(r["shrts_avg_pric"])
        assert won / int(r["shrts_trde_prica"]) == pytest.approx(1000, rel=1e-3)


def test_tr_entry_carries_path_request_and_enumerations():
    tr = schemas.catalog().tr("ka10024")
    assert (tr.path, tr.method, tr.category, tr.subcategory) == (
        "/api/dostk/stkinfo",
        "POST",
        "국내주식",
        "종목정보",
    )
    stex = next(r for r in tr.request if r["name"] == "stex_tp")
    assert stex["required"] and stex["length"] == 1
    assert stex["allowed"] == {"1": "KRX", "2": "NXT", "3": "통합"}
    assert tr.main_list == "trde_qty_updt"


def test_order_trs_and_paper_support_are_flagged():
    cat = schemas.catalog()
    orders = {tr.id for tr in cat.trs.values() if tr.is_order}
    assert {"kt10000", "kt10001", "kt10002", "kt10003", "kt10006", "kt50000", "kt50003"} <= orders
    assert not (orders & {"ka10081", "kt00001", "kt50020"})
    assert cat.tr("ka01690").paper_supported is False
    assert cat.tr("ka10081").paper_supported is True


def test_error_codes_are_catalogued():
    errors = schemas.catalog().errors
    assert errors["8005"] == "Token이 유효하지 않습니다"
    assert {"1700", "1902", "1511", "1504", "1505"} <= set(errors)


def test_broken_examples_each_say_why():
    cat = schemas.catalog()
    broken = {tr.id: tr.example_broken for tr in cat.trs.values() if tr.example_broken}
    assert broken and all(reason for reason in broken.values())
    assert "ka20005" in broken


def _raw(list_key: str, item_key: str) -> RawTR:
    return RawTR(
        api_id="ka99990",
        name="test",
        menu="",
        method="POST",
        url="/api/dostk/chart",
        prod_domain="",
        paper_domain="",
        paper_unsupported=False,
        request=[],
        response=[
            RawField(list_key, "목록", "LIST", False, "", "", 0),
            RawField(item_key, "현재가", "String", False, "", "", 1),
        ],
        request_example=ExampleText(),
        response_example=ExampleText(['{"rows": [{"cur_prc": "+100"}], "return_code": 0}']),
        first_line=1,
    )


@pytest.mark.parametrize(
    ("list_key", "item_key", "repair", "message"),
    [
        ("rows", "cur_pr c", None, "damaged key 'cur_pr c' has no reviewed repair"),
        ("rowz", "cur_prc", None, "list key 'rowz' is in neither"),
        ("ro ws", "cur_prc", "rows_fixed", "'rows_fixed' .* is not in the example"),
    ],
)
def test_build_fails_loudly_on_keys_matching_neither_table_nor_example(
    monkeypatch, list_key, item_key, repair, message
):
    if repair:
        monkeypatch.setitem(build_catalog.BROKEN_KEYS, ("ka99990", list_key), repair)
    with pytest.raises(CatalogBuildError, match=message):
        build_catalog._build_tr(_raw(list_key, item_key), {}, [])


def test_a_reviewed_repair_that_matches_the_example_builds(monkeypatch):
    monkeypatch.setitem(build_catalog.BROKEN_KEYS, ("ka99990", "ro ws"), "rows")
    tr = build_catalog._build_tr(_raw("ro ws", "cur_prc"), {}, [])
    assert tr["main_list"] == "rows" and tr["lists"][0]["items"][0]["kind"] == "price"


def test_catalog_file_is_plain_json_with_kinds_on_every_field():
    data = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    kinds = {k.value for k in schemas.Kind}
    for tr in data["trs"].values():
        for f in [*tr["response"], *(i for lst in tr["lists"] for i in lst["items"])]:
            assert f["kind"] in kinds, (tr["id"], f["name"])
