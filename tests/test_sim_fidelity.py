"""The simulator writes what Kiwoom writes, from its own wire table (``simulator.units``).

These tests read the wire strings themselves (no ``schemas.normalize``), so a unit or kind
wrong in the client's catalog cannot make them pass: the simulator's side of issue 10.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import time as clock
from datetime import date, datetime, time
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import calendar as cal
from schemas import catalog
from schemas.kinds import Unit
from simulator import units
from simulator.app import LENDING_TRS, SimConfig, Simulator

KST = cal.KST
AFTER_CLOSE = datetime(2025, 12, 30, 16, 0, tzinfo=KST)
DAY = "20251230"
ROOT = Path(__file__).resolve().parent.parent


def _sim(**config: Any) -> Simulator:
    return Simulator(
        SimConfig(**{"clock": lambda: AFTER_CLOSE, "rate_limit": None, "n_stocks": 40, **config})
    )


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return _sim()


def call(
    sim: Simulator, api_id: str, body: dict[str, str], path: str | None = None, **headers: str
) -> httpx.Response:
    """One raw request (a fresh token first), answered by the simulator in-process."""

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sim), base_url="http://sim.test"
        ) as http:
            auth = {"grant_type": "client_credentials", "appkey": "k", "secretkey": "s"}
            token = (await http.post("/oauth2/token", json=auth)).json()["token"]
            hdrs = {"authorization": f"Bearer {token}", "api-id": api_id, **headers}
            return await http.post(path or catalog().tr(api_id).path, json=body, headers=hdrs)

    return asyncio.run(go())


def rows(sim: Simulator, api_id: str, body: dict[str, str], **kw: Any) -> list[dict[str, str]]:
    answer = call(sim, api_id, body, **kw).json()
    assert answer["return_code"] == 0, answer
    key = next(k for k, v in answer.items() if isinstance(v, list))
    return answer[key]


def num(s: str) -> int:
    """An integer as Kiwoom writes it: "+5", "-5", "--5" (doubled sign), "0005"."""
    return -int(s[2:]) if s.startswith("--") else int(s)


def level(s: str) -> float:
    """A price or level without its direction sign."""
    return abs(float(s))


# ----------------------------------------------------------------------------- the table


def test_the_wire_table_reads_nothing_from_the_catalog():
    for module in ("units", "wire"):
        tree = ast.parse((ROOT / "simulator" / f"{module}.py").read_text())
        imported = {
            (node.module, a.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for a in node.names
        }
        uses = {name for mod, name in imported if mod == "schemas.catalog"}
        assert uses <= {"catalog"} and (module != "units" or not uses), (module, uses)
        assert "Field" not in uses and "Kind" not in {n for m, n in imported if m == "schemas.kinds"}
    # every mapped field of a TR is either in the table or consciously left to the example
    assert units.wire_for("ka10082", "trde_prica") == units.BY_TR["ka10082"]["trde_prica"]
    assert units.wire_for("ka10082", "trde_prica").unit == Unit.WON  # type: ignore[union-attr]
    assert units.wire_for("ka10081", "trde_prica").unit == Unit.MILLION_WON  # type: ignore[union-attr]


def test_a_unit_changed_in_the_catalog_alone_does_not_change_the_wire(sim, monkeypatch):
    """The catalog is the client's; if it says ka10082's turnover is in millions, the
    simulator still sends won, so the client's conversion is visibly off by 10^6."""
    body = {"stk_cd": "005930", "base_dt": DAY, "upd_stkpc_tp": "1"}
    before = rows(sim, "ka10082", body)
    tr = catalog().tr("ka10082")
    assert tr.main is not None
    wrong = tuple(
        dataclasses.replace(f, unit=Unit.MILLION_WON.value) if f.name == "trde_prica" else f
        for f in tr.main.items
    )
    main = dataclasses.replace(tr.main, items=wrong)
    monkeypatch.setitem(catalog().trs, "ka10082", dataclasses.replace(tr, lists=(main,)))
    after = rows(sim, "ka10082", body)
    assert after == before
    r = after[0]
    as_catalog_says = num(r["trde_prica"]) * Unit.MILLION_WON.factor
    assert num(r["trde_qty"]) * level(r["cur_prc"]) / as_catalog_says < 1e-4  # a test comparing fails


# ----------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("api_id", "code", "unit"),
    [
        ("ka10081", "005930", Unit.MILLION_WON),
        ("ka10082", "005930", Unit.WON),
        ("ka10083", "005930", Unit.WON),
        ("ka10094", "005930", Unit.WON),
    ],
)
def test_stock_bar_turnover_is_volume_times_close_in_the_tr_unit(sim, api_id, code, unit):
    bars = rows(sim, api_id, {"stk_cd": code, "base_dt": DAY, "upd_stkpc_tp": "1"})[:20]
    for r in bars:
        ratio = num(r["trde_qty"]) * level(r["cur_prc"]) / (num(r["trde_prica"]) * unit.factor)
        assert 0.5 <= ratio <= 2, (api_id, r)


@pytest.mark.parametrize(("api_id", "unit"), [("ka50081", Unit.MILLION_WON), ("ka50083", Unit.WON)])
def test_gold_bar_turnover_unit(sim, api_id, unit):
    for r in rows(sim, api_id, {"stk_cd": "M04020000", "base_dt": DAY, "upd_stkpc_tp": "1"})[:10]:
        ratio = num(r["acc_trde_qty"]) * level(r["cur_prc"]) / (num(r["acc_trde_prica"]) * unit.factor)
        assert 0.5 <= ratio <= 2, r


@pytest.mark.parametrize("api_id", ["ka20006", "ka20007", "ka20008", "ka20019"])
def test_sector_charts_send_levels_x100_volume_in_thousands_turnover_in_millions(sim, api_id):
    bars = rows(sim, api_id, {"inds_cd": "001", "base_dt": DAY})[:10]
    daily = sim.market.daily_bar("001", date(2025, 12, 30))
    assert daily is not None
    for r in bars:
        assert r["cur_prc"].isdigit() and 500 < int(r["cur_prc"]) / 100 < 10_000
        won_per_share = num(r["trde_prica"]) * 1e6 / (num(r["trde_qty"]) * 1e3)
        assert 5_000 < won_per_share < 100_000, r
    if api_id == "ka20006":
        assert int(bars[0]["cur_prc"]) == round(daily.close * 100)
        assert num(bars[0]["trde_qty"]) == round(daily.volume / 1000)


@pytest.mark.parametrize("api_id", ["ka20001", "ka20009"])
def test_sector_quotes_send_levels_with_the_point_and_a_direction_sign(sim, api_id):
    answer = call(sim, api_id, {"mrkt_tp": "0", "inds_cd": "001"}).json()
    bar = sim.market.daily_bar("001", date(2025, 12, 30))
    prev = sim.market.prev_close("001", date(2025, 12, 30))
    assert bar is not None and prev is not None
    cur = answer["cur_prc"]
    assert cur == ("+" if bar.close > prev else "-" if bar.close < prev else "") + f"{bar.close:.2f}"
    assert float(answer["pred_pre"]) == pytest.approx(bar.close - prev, abs=0.006)
    assert num(answer["trde_qty"]) == round(bar.volume / 1000)


def test_sector_minute_changes_carry_two_implied_decimals(sim):
    bars = rows(sim, "ka20005", {"inds_cd": "001", "tic_scope": "1"})[:50]
    prev = sim.market.prev_close("001", date(2025, 12, 30))
    assert prev is not None
    for r in bars:
        assert num(r["pred_pre"]) == int(r["cur_prc"].lstrip("+-")) - round(prev * 100)
    assert any(r["pred_pre"].startswith("--") for r in bars) or all(num(r["pred_pre"]) >= 0 for r in bars)


def test_program_amounts_are_millions_of_won_and_quantities_shares(sim):
    body = {"amt_qty_tp": "1", "stk_cd": "005930", "date": DAY}
    minutes = rows(sim, "ka90008", body)
    for r in minutes[:: len(minutes) // 20]:
        qty, amount = num(r["prm_sell_qty"]), num(r["prm_sell_amt"])
        if qty > 1000:
            assert 0.5 <= qty * level(r["cur_prc"]) / (amount * 1e6) <= 2, r
    nets = [r["prm_netprps_amt"] for r in minutes if num(r["prm_netprps_amt"]) < 0]
    assert nets and all(n.startswith("--") for n in nets)  # doubled sign, as the live server


def test_foreign_institution_ranking_in_ten_millions_and_thousands_of_shares(sim):
    body = {"mrkt_tp": "001", "amt_qty_tp": "1", "qry_dt_tp": "1", "date": DAY, "stex_tp": "1"}
    top = rows(sim, "ka90009", body)
    assert top
    for who in ("for", "orgn"):
        sells = [num(r[f"{who}_netslmt_amt"]) for r in top if r[f"{who}_netslmt_amt"]]
        buys = [num(r[f"{who}_netprps_amt"]) for r in top if r[f"{who}_netprps_amt"]]
        assert sells == sorted(sells) and all(v <= 0 for v in sells)
        assert buys == sorted(buys, reverse=True) and all(v >= 0 for v in buys)
    for r in top:
        code, amount, qty = r["for_netprps_stk_cd"], r["for_netprps_amt"], r["for_netprps_qty"]
        if code and abs(num(qty)) >= 20:
            bar = sim.market.daily_bar(code, date(2025, 12, 30))
            assert bar is not None
            assert 0.8 <= num(amount) * 1e7 / (num(qty) * 1e3 * bar.close) <= 1.25, r


def test_investor_nets_doubled_only_where_the_server_doubles_them(sim):
    body = {"stk_cd": "005930", "amt_qty_tp": "2", "trde_tp": "0", "unit_tp": "1"}
    day = rows(sim, "ka10059", {**body, "dt": DAY})
    singles = [r["frgnr_invsr"] for r in day if r["frgnr_invsr"].startswith("-")]
    assert singles and not any(s.startswith("--") for s in singles)
    window = rows(sim, "ka10061", {**body, "strt_dt": "20251201", "end_dt": DAY})[0]
    negatives = [v for k, v in window.items() if k != "stk_cd" and v.startswith("-")]
    assert negatives and all(v.startswith("--") for v in negatives)
    thousands = rows(sim, "ka10059", {**body, "dt": DAY, "unit_tp": "1000"})
    assert abs(num(thousands[0]["orgn"]) - num(day[0]["orgn"]) / 1000) <= 0.5


def test_ka10059_rate_has_its_point_removed(sim):
    """ka10059's 등락율 is "우측 2자리 소수점자리수": the example's '+698' beside '+61300'
    up '+4000' is 4000 / 57300 = 6.98 % (other TRs write '+6.98')."""
    body = {"stk_cd": "005930", "amt_qty_tp": "1", "trde_tp": "0", "unit_tp": "1000", "dt": DAY}
    moved = [r for r in rows(sim, "ka10059", body) if num(r["pred_pre"])]
    assert moved
    for r in moved[:20]:
        change, price = num(r["pred_pre"]), level(r["cur_prc"])
        assert "." not in r["flu_rt"], r
        assert num(r["flu_rt"]) / 100 == pytest.approx(change / (price - change) * 100, abs=0.006), r


def test_lending_ratios_have_two_implied_decimals(sim):
    answer = call(
        sim, "ka10069", {"strt_dt": "20251201", "end_dt": DAY, "mrkt_tp": "001"}, path="/api/dostk/slb"
    )
    body = answer.json()
    for k in ("dbrt_trde_cntrcnt_rt", "rmnd_rt", "remn_amt_rt"):
        assert body[k].isdigit() and 0 < int(body[k]) <= 10_000, (k, body[k])  # "7061" is 70.61 %
    (top,) = [v for v in body.values() if isinstance(v, list)]
    assert num(body["remn_amt_sum"]) == sum(num(r["remn_amt"]) for r in top)


def test_short_selling_balance_is_a_running_sum_and_the_average_price_unsigned(sim):
    trend = rows(sim, "ka10014", {"stk_cd": "005930", "tm_tp": "1", "strt_dt": "20251201", "end_dt": DAY})
    assert len(trend) > 15
    for newer, older in pairwise(trend):
        assert num(newer["ovr_shrts_qty"]) - num(older["ovr_shrts_qty"]) == num(newer["shrts_qty"])
    assert trend[-1]["ovr_shrts_qty"] == trend[-1]["shrts_qty"]  # the period's first day
    assert all(r["shrts_avg_pric"].isdigit() for r in trend)
    r = trend[0]
    assert 999 < num(r["shrts_qty"]) * num(r["shrts_avg_pric"]) / num(r["shrts_trde_prica"]) < 1001  # 천원


def test_basic_info_is_modelled_from_the_market(sim):
    body = call(sim, "ka10001", {"stk_cd": "005930"}).json()
    bar = sim.market.daily_bar("005930", date(2025, 12, 30))
    prev = sim.market.prev_close("005930", date(2025, 12, 30))
    assert bar is not None and prev is not None
    assert level(body["cur_prc"]) == bar.close and body["cur_prc"].lstrip("+-").isdigit()
    upper, lower = num(body["upl_pric"].lstrip("+")), level(body["lst_pric"])
    assert body["upl_pric"].startswith("+") and body["lst_pric"].startswith("-")
    assert prev * 1.29 < upper <= prev * 1.3 and prev * 0.7 <= lower < prev * 0.71
    assert int(body["base_pric"]) == prev
    shares = sim.market.universe.get("005930").shares
    assert int(body["flo_stk"]) == round(shares / 1000)
    assert int(body["mac"]) == round(bar.close * shares / 1e8)
    assert level(body["250hgst"]) >= level(body["oyr_hgst"]) >= bar.high
    assert len(body["250hgst_pric_dt"]) == 8


# ----------------------------------------------------------------------------- behaviour


def test_every_response_carries_api_id_errors_and_tokens_included():
    sim = _sim(rate_limit=1)

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sim), base_url="http://sim.test"
        ) as http:
            auth = {"grant_type": "client_credentials", "appkey": "k", "secretkey": "s"}
            token = await http.post("/oauth2/token", json=auth)
            bad_grant = await http.post("/oauth2/token", json={"grant_type": "x"})
            h = {"authorization": f"Bearer {token.json()['token']}", "api-id": "ka10001"}
            bad_token = await http.post(
                "/api/dostk/stkinfo", json={}, headers={**h, "authorization": "Bearer x"}
            )
            unknown = await http.post("/api/dostk/stkinfo", json={}, headers={**h, "api-id": "ka99999"})
            wrong_path = await http.post("/api/dostk/chart", json={"stk_cd": "005930"}, headers=h)
            ok = await http.post("/api/dostk/stkinfo", json={"stk_cd": "005930"}, headers=h)
            limited = await http.post("/api/dostk/stkinfo", json={"stk_cd": "005930"}, headers=h)
            return [token, bad_grant, bad_token, unknown, wrong_path, ok, limited]

    token, bad_grant, bad_token, unknown, wrong_path, ok, limited = asyncio.run(go())
    assert token.headers["api-id"] == bad_grant.headers["api-id"] == "au10001"
    assert "[8005:" in bad_token.json()["return_msg"] and bad_token.headers["api-id"] == "ka10001"
    assert "[1505:" in unknown.json()["return_msg"] and unknown.headers["api-id"] == "ka99999"
    assert "[1504:" in wrong_path.json()["return_msg"] and wrong_path.headers["api-id"] == "ka10001"
    assert ok.headers["api-id"] == "ka10001"
    assert "[1700:" in limited.json()["return_msg"] and limited.headers["api-id"] == "ka10001"


@pytest.mark.parametrize("suffix", ["_NX", "_AL"])
def test_the_venue_suffix_is_echoed(sim, suffix):
    info = call(sim, "ka10001", {"stk_cd": f"005930{suffix}"}).json()
    assert info["stk_cd"] == f"005930{suffix}"
    chart = call(sim, "ka10081", {"stk_cd": f"000660{suffix}", "base_dt": DAY, "upd_stkpc_tp": "1"}).json()
    assert chart["stk_cd"] == f"000660{suffix}"
    assert call(sim, "ka10001", {"stk_cd": "005930"}).json()["stk_cd"] == "005930"


def test_per_tr_limit_with_a_burst():
    sim = _sim(per_api_limit=1.0, per_api_burst=2)

    async def go() -> list[str]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sim), base_url="http://sim.test"
        ) as http:
            auth = {"grant_type": "client_credentials", "appkey": "k", "secretkey": "s"}
            token = (await http.post("/oauth2/token", json=auth)).json()["token"]

            async def one(api_id: str, path: str, body: dict[str, str]) -> str:
                h = {"authorization": f"Bearer {token}", "api-id": api_id}
                return str((await http.post(path, json=body, headers=h)).json()["return_code"])

            info = ("ka10001", "/api/dostk/stkinfo", {"stk_cd": "005930"})
            chart = ("ka10081", "/api/dostk/chart", {"stk_cd": "005930", "base_dt": DAY, "upd_stkpc_tp": "1"})
            got = [await one(*info) for _ in range(3)] + [await one(*chart)]
            await asyncio.sleep(1.05)
            return [*got, await one(*info), await one(*info)]

    started = clock.monotonic()
    codes = asyncio.run(go())
    assert clock.monotonic() - started < 5
    assert codes == ["0", "0", "5", "0", "0", "5"]  # a burst of two, then one a second; other TRs apart


@pytest.mark.parametrize("api_id", LENDING_TRS)
def test_lending_trs_answer_on_slb_and_1504_on_slbt(sim, api_id):
    tr = catalog().tr(api_id)
    body = dict(tr.raw.get("request_example") or {})
    body = {k: v for k, v in body.items() if isinstance(v, str)}
    at_slb = call(sim, api_id, body, path="/api/dostk/slb").json()
    assert "[1504:" not in at_slb["return_msg"]
    assert "[1504:" in call(sim, api_id, body, path="/api/dostk/slbt").json()["return_msg"]
    old = _sim(lending_path="slbt")
    assert "[1504:" in call(old, api_id, body, path="/api/dostk/slb").json()["return_msg"]
    assert "[1504:" not in call(old, api_id, body, path="/api/dostk/slbt").json()["return_msg"]


def test_no_minute_bars_inside_the_closing_auction_and_ticks_add_up(sim):
    minutes = rows(sim, "ka10080", {"stk_cd": "005930", "tic_scope": "1", "upd_stkpc_tp": "1"})
    today = [r for r in minutes if r["cntr_tm"].startswith(DAY)]
    times = {r["cntr_tm"][8:12] for r in today}
    assert "1520" in times and "1530" in times and not times & {f"15{m}" for m in range(21, 30)}
    auction = next(r for r in today if r["cntr_tm"][8:12] == "1530")
    assert len({level(auction[k]) for k in ("open_pric", "high_pric", "low_pric", "cur_prc")}) == 1
    daily = rows(sim, "ka10081", {"stk_cd": "005930", "base_dt": DAY, "upd_stkpc_tp": "1"})[0]
    assert sum(num(r["trde_qty"]) for r in today) == num(daily["trde_qty"])
    assert level(auction["cur_prc"]) == level(daily["cur_prc"])
    ticks = sim.market.ticks("005930", date(2025, 12, 30))
    late = [t for t in ticks if t.ts is not None and t.ts.time() > time(15, 20)]
    assert [t.ts.time() for t in late if t.ts] == [time(15, 30)]  # one print: the auction
    assert sum(t.volume for t in ticks) == num(daily["trde_qty"])


@pytest.mark.parametrize(("api_id", "code"), [("ka20005", "001"), ("ka50092", "M04020000")])
@pytest.mark.parametrize("scope", ["15", "45", "60"])
def test_sector_and_gold_minute_charts_take_every_minute_scope(sim, api_id, code, scope):
    bars = rows(sim, api_id, {("inds_cd" if api_id == "ka20005" else "stk_cd"): code, "tic_scope": scope})
    assert bars
    stamps = sorted({r["cntr_tm"][8:12] for r in bars if r["cntr_tm"].startswith(DAY)})
    assert stamps and stamps[0] == f"{9 + int(scope) // 60:02d}{int(scope) % 60:02d}"


def test_sector_list_rows_carry_their_market_code(sim):
    kospi = rows(sim, "ka10101", {"mrkt_tp": "0"})
    kosdaq = rows(sim, "ka10101", {"mrkt_tp": "1"})
    assert kospi and {r["marketCode"] for r in kospi} == {"0"}
    assert kosdaq and {r["marketCode"] for r in kosdaq} == {"1"}
    assert all(r["group"] == str(int(r["code"])) for r in kospi)


# ----------------------------------------------------------------------------- the client's catalog

CATALOG_BARS = {  # api-id -> (request, price field, volume field, turnover field)
    "ka10081": (
        {"stk_cd": "005930", "base_dt": DAY, "upd_stkpc_tp": "1"},
        "cur_prc",
        "trde_qty",
        "trde_prica",
    ),
    "ka10082": (
        {"stk_cd": "005930", "base_dt": DAY, "upd_stkpc_tp": "1"},
        "cur_prc",
        "trde_qty",
        "trde_prica",
    ),
    "ka10083": (
        {"stk_cd": "005930", "base_dt": DAY, "upd_stkpc_tp": "1"},
        "cur_prc",
        "trde_qty",
        "trde_prica",
    ),
    "ka10094": (
        {"stk_cd": "005930", "base_dt": DAY, "upd_stkpc_tp": "1"},
        "cur_prc",
        "trde_qty",
        "trde_prica",
    ),
    "ka50081": (
        {"stk_cd": "M04020000", "base_dt": DAY, "upd_stkpc_tp": "1"},
        "cur_prc",
        "acc_trde_qty",
        "acc_trde_prica",
    ),
    "ka50083": (
        {"stk_cd": "M04020000", "base_dt": DAY, "upd_stkpc_tp": "1"},
        "cur_prc",
        "acc_trde_qty",
        "acc_trde_prica",
    ),
}


def _catalog_factor(api_id: str, name: str) -> int:
    tr = catalog().tr(api_id)
    f = next(f for f in (*(tr.main.items if tr.main else ()), *tr.response) if f.name == name)
    return Unit(f.unit).factor if f.unit else 1


@pytest.mark.parametrize("api_id", sorted(CATALOG_BARS))
def test_the_catalogs_turnover_unit_makes_volume_times_close_of_the_simulators_bars(sim, api_id):
    """Round trip: the simulator's wire (its own table) read with the client's catalog units.
    A unit wrong in the catalog alone fails here."""
    body, price, volume, turnover = CATALOG_BARS[api_id]
    factor = _catalog_factor(api_id, turnover)
    for r in rows(sim, api_id, body)[:10]:
        ratio = (
            num(r[volume]) * _catalog_factor(api_id, volume) * level(r[price]) / (num(r[turnover]) * factor)
        )
        assert 0.5 <= ratio <= 2, (api_id, r, factor)


@pytest.mark.parametrize(("api_id", "field"), [("ka20006", "trde_qty"), ("ka20019", "trde_qty")])
def test_the_catalog_records_sector_volume_in_thousands_of_shares(api_id, field):
    assert _catalog_factor(api_id, field) == units.wire_for(api_id, field).unit.factor  # type: ignore[union-attr]
