"""The simulator's market-wide flows: program trading, arbitrage balances, stock lending,
and a stock's investors over a window and through the session.

Each TR here used to answer with the reference example's rows (no dates, the same
figures for every request) or with the whole day on every intraday row.
"""

from __future__ import annotations

from datetime import date, datetime, time
from itertools import pairwise
from typing import Any

import polars as pl
import pytest
from test_simulator import fetch

from schemas import calendar as cal
from schemas import normalize
from simulator.app import SimConfig, Simulator

KST = cal.KST
AFTER_CLOSE = datetime(2025, 12, 30, 16, 0, tzinfo=KST)
END = date(2025, 12, 30)
KOSPI_PROGRAM = {"amt_qty_tp": "1", "mrkt_tp": "P00101", "min_tic_tp": "1", "stex_tp": "1"}
DAILY = {  # api-id -> (request, date column)
    "ka90006": ({"date": "20251230", "stex_tp": "1"}, "dt"),
    "ka90007": ({"date": "20251230", "amt_qty_tp": "1", "mrkt_tp": "0", "stex_tp": "1"}, "dt"),
    "ka90010": ({"date": "20251230", **KOSPI_PROGRAM}, "cntr_tm"),
    "ka10068": ({"strt_dt": "20250102", "end_dt": "20251230", "all_tp": "1"}, "dt"),
}


def _sim(**config: Any) -> Simulator:
    return Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None, n_stocks=40, **config))


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return _sim()


def frame(sim: Simulator, api_id: str, body: dict[str, str], pages: bool = False) -> pl.DataFrame:
    return pl.concat([normalize(api_id, p.body) for p in fetch(sim, api_id, body, pages)])


def _dates(f: pl.DataFrame, column: str) -> list[date]:
    values = f[column]
    if values.dtype != pl.Date:  # ka90010: YYYYMMDD000000
        assert (values.dt.time() == time(0)).all()
        values = values.dt.date()
    return values.to_list()


# ----------------------------------------------------------------------------- day series


@pytest.mark.parametrize("api_id", sorted(DAILY))
def test_day_series_have_a_trading_day_on_every_row_back_from_the_request(sim, api_id):
    body, column = DAILY[api_id]
    page = fetch(sim, api_id, body)[0]
    assert page.cont, "a long series pages"
    days = _dates(normalize(api_id, page.body), column)
    assert len(days) > 50 and None not in days
    assert days[0] == END
    assert all(a > b for a, b in pairwise(days)), "strictly descending"
    assert all(cal.is_trading_day(d) for d in days)
    assert days == sorted(set(days) & set(cal.trading_days(days[-1], END)), reverse=True), "no day left out"


@pytest.mark.parametrize("api_id", sorted(DAILY))
def test_a_holiday_request_starts_at_the_trading_day_before(sim, api_id):
    body, column = DAILY[api_id]
    asked = {k: ("20251227" if k in ("date", "end_dt") else v) for k, v in body.items()}  # a Saturday
    days = _dates(frame(sim, api_id, asked), column)
    assert days[0] == date(2025, 12, 26)


@pytest.mark.parametrize("api_id", ["ka90005", *sorted(DAILY)])
def test_pages_join_into_the_unpaged_answer(api_id):
    body = DAILY[api_id][0] if api_id in DAILY else {"date": "20251230", **KOSPI_PROGRAM}
    if api_id in ("ka90006", "ka90010"):
        body = {**body, "date": "20110630"}  # keeps the test short: the series runs back to 2010

    def whole(size: int) -> pl.DataFrame:
        return frame(_sim(page_sizes={"series": size, "list": size}), api_id, body, pages=True)

    paged, unpaged = whole(37), whole(100_000)
    assert paged.height > 3 * 37
    assert paged.equals(unpaged)


def test_program_trading_of_a_day_is_the_sum_over_the_markets_stocks(sim):
    row = frame(sim, "ka90010", DAILY["ka90010"][0]).row(0, named=True)
    kospi = [i.code for i in sim.market.universe.stocks if i.market == "KOSPI"]
    days = [sim.market.program_trading(code, END) for code in kospi]
    total = {k: sum(d[k] for d in days if d) for k in ("arb_sell_amount", "nonarb_buy_amount", "arb_buy_qty")}
    assert row["dfrt_trde_sel"] == round(total["arb_sell_amount"] / 1e6)  # millions of won
    assert row["ndiffpro_trde_buy"] == round(total["nonarb_buy_amount"] / 1e6)
    assert row["dfrt_trde_buy_qty"] == round(total["arb_buy_qty"] / 1e3)  # thousands of shares
    assert row["dfrt_trde_netprps"] == row["dfrt_trde_buy"] - row["dfrt_trde_sel"]
    assert row["all_netprps"] == row["dfrt_trde_netprps"] + row["ndiffpro_trde_netprps"]
    assert row["all_sel"] > 0 and row["all_buy"] > 0
    # amt_qty_tp 2: the columns without a unit carry the quantities
    by_qty = frame(sim, "ka90010", {**DAILY["ka90010"][0], "amt_qty_tp": "2"}).row(0, named=True)
    assert by_qty["dfrt_trde_buy"] == by_qty["dfrt_trde_buy_qty"] == row["dfrt_trde_buy_qty"]
    kosdaq = frame(sim, "ka90010", {**DAILY["ka90010"][0], "mrkt_tp": "P10102"}).row(0, named=True)
    assert kosdaq["all_sel"] != row["all_sel"]


def test_cumulative_program_trading_adds_each_day_from_the_start_of_the_year(sim):
    cum = frame(sim, "ka90007", DAILY["ka90007"][0], pages=True).sort("dt")
    assert cum["dt"].min() >= date(2024, 12, 30)  # a year back from the request
    this_year = cum.filter(pl.col("dt").dt.year() == 2025)
    for kind in ("dfrt_trde", "ndiffpro_trde", "all"):
        acc, tdy = this_year[f"{kind}_acc"], this_year[f"{kind}_tdy"]
        assert acc[0] == tdy[0]  # the year's first trading day
        assert (acc.diff().drop_nulls() == tdy[1:]).all()
    assert (cum["all_tdy"] == cum["dfrt_trde_tdy"] + cum["ndiffpro_trde_tdy"]).all()
    daily = frame(sim, "ka90010", DAILY["ka90010"][0])
    same = cum.join(daily.with_columns(dt=pl.col("cntr_tm").dt.date()), on="dt")
    assert same.height > 50
    assert (same["dfrt_trde_tdy"] == same["dfrt_trde_netprps"]).all()
    assert (same["all_tdy"] == same["all_netprps"]).all()
    # the KOSPI200 level is index 201's close
    k200 = normalize("ka20006", fetch(sim, "ka20006", {"inds_cd": "201", "base_dt": "20251230"})[0].body)
    levels = same.join(k200.select("dt", "cur_prc"), on="dt")
    assert levels.height > 50 and ((levels["kospi200"] - levels["cur_prc"]).abs() < 0.005).all()
    assert (same["basis"].abs() < 20).all() and same["basis"].n_unique() > 10


def test_arbitrage_balances_change_by_their_daily_change(sim):
    bal = frame(sim, "ka90006", DAILY["ka90006"][0]).sort("dt")
    assert (bal["buy_dftr_trde_amt"] > 0).all() and (bal["sel_dftr_trde_qty"] > 0).all()
    for side in ("buy", "sel"):
        amt = bal[f"{side}_dftr_trde_amt"]
        assert (amt.diff().drop_nulls() == bal[f"{side}_dftr_trde_irds_amt"][1:]).all()
    # positions are mostly unwound at the December expiry (the second Thursday)
    before = bal.filter(pl.col("dt") == date(2025, 12, 10)).row(0, named=True)
    expiry = bal.filter(pl.col("dt") == date(2025, 12, 11)).row(0, named=True)
    for side in ("buy", "sel"):
        assert expiry[f"{side}_dftr_trde_amt"] < before[f"{side}_dftr_trde_amt"] / 2


def test_lending_trend_is_the_sum_over_all_stocks(sim):
    trend = frame(sim, "ka10068", DAILY["ka10068"][0], pages=True)
    assert trend["dt"].max() == END and trend["dt"].min() == date(2025, 1, 2)
    assert (trend["dbrt_trde_irds"] == trend["dbrt_trde_cntrcnt"] - trend["dbrt_trde_rpy"]).all()
    s = trend.sort("dt")
    assert (s["rmnd"].diff().drop_nulls() == s["dbrt_trde_irds"][1:]).all()
    row = s.row(-1, named=True)
    figures = [sim.market.short_selling(i.code, END) for i in sim.market.universe.stocks]
    assert row["rmnd"] == sum(f["lending_balance_qty"] for f in figures if f)
    assert row["dbrt_trde_cntrcnt"] == sum(f["lending_new_qty"] for f in figures if f)
    assert row["remn_amt"] == round(sum(f["lending_balance_amount"] for f in figures if f) / 1e6)


# ----------------------------------------------------------------------------- the session


def test_program_session_is_cumulative_through_each_minute(sim):
    body = {"date": "20251230", **KOSPI_PROGRAM}
    rows = frame(sim, "ka90005", body, pages=True)
    times = rows["cntr_tm"].to_list()
    assert len(times) == 381 and None not in times  # 09:01 .. 15:20 and the closing auction
    assert times[0] == time(15, 30) and times[1] == time(15, 20) and times[-1] == time(9, 1)
    assert all(a > b for a, b in pairwise(times))
    up = rows.reverse()
    for col in ("dfrt_trde_sel", "ndiffpro_trde_buy", "all_buy", "ndiffpro_trde_sell_qty"):
        assert (up[col].diff().drop_nulls() >= 0).all(), col
    assert rows["all_netprps"].n_unique() > 100  # nets wander through the day
    day = frame(sim, "ka90010", DAILY["ka90010"][0]).drop("cntr_tm").row(0, named=True)
    last = rows.drop("cntr_tm").row(0, named=True)
    assert last.pop("kosp200") == f"+{round(float(day.pop('kosp200')) * 100)}"  # x100 here, 2 decimals there
    assert last == day


def test_program_session_by_trade_stays_in_the_session_and_ends_at_the_day(sim):
    body = {"date": "20251230", **KOSPI_PROGRAM, "min_tic_tp": "0"}
    ticks = frame(sim, "ka90005", body, pages=True)
    times = ticks["cntr_tm"].to_list()
    assert len(times) > 390
    assert all(cal.SESSION_OPEN <= t <= cal.SESSION_CLOSE for t in times)
    assert all(a >= b for a, b in pairwise(times))
    minutes = frame(sim, "ka90005", {**body, "min_tic_tp": "1"})
    assert ticks.drop("cntr_tm").row(0) == minutes.drop("cntr_tm").row(0)


def test_program_session_grows_with_the_clock():
    clock = datetime(2025, 12, 30, 10, 30, 20, tzinfo=KST)
    sim = Simulator(SimConfig(clock=lambda: clock, rate_limit=None, n_stocks=40))
    rows = frame(sim, "ka90005", {"date": "20251230", **KOSPI_PROGRAM}, pages=True)
    assert rows.height == 90 and rows["cntr_tm"][0] == time(10, 30)
    full = frame(_sim(), "ka90005", {"date": "20251230", **KOSPI_PROGRAM}, pages=True)
    assert rows.equals(full.tail(90)), "the morning does not change once the day is over"
    assert frame(sim, "ka90005", {"date": "20251231", **KOSPI_PROGRAM}).height == 0


def test_intraday_investors_are_cumulative_through_each_minute(sim):
    body = {"mrkt_tp": "000", "amt_qty_tp": "2", "trde_tp": "1", "stk_cd": "005930"}  # buys, shares
    buys = frame(sim, "ka10064", body, pages=True)
    assert buys.height == 381 and buys["tm"][0] == time(15, 30)
    cols = ["frgnr_invsr", "orgn", "invtrt", "insrnc", "bank", "penfnd_etc", "etc_corp", "natn"]
    up = buys.reverse()
    for col in cols:
        assert (up[col].diff().drop_nulls() >= 0).all(), col
        assert up[col][0] < up[col][-1]
    nets = frame(sim, "ka10064", {**body, "trde_tp": "0"}, pages=True)
    day = {"dt": "20251230", "stk_cd": "005930", "amt_qty_tp": "2", "trde_tp": "0", "unit_tp": "1"}
    whole = normalize("ka10059", fetch(sim, "ka10059", day)[0].body).row(0, named=True)
    assert all(nets[col][0] == whole[col] for col in cols if col in whole)
    assert nets["frgnr_invsr"].n_unique() > 100


def test_intraday_program_trading_of_a_stock_is_cumulative(sim):
    rows = frame(sim, "ka90008", {"amt_qty_tp": "2", "stk_cd": "005930", "date": "20251230"}, pages=True)
    up = rows.reverse()
    assert (up["prm_buy_qty"].diff().drop_nulls() >= 0).all()
    assert (up["prm_netprps_qty"].diff().drop_nulls() == up["prm_netprps_qty_irds"][1:]).all()
    day = sim.market.program_trading("005930", END)
    assert rows["prm_buy_qty"][0] == day["buy_qty"] and rows["prm_sell_qty"][0] == day["sell_qty"]


# ----------------------------------------------------------------------------- windows


@pytest.mark.parametrize(("amt_qty_tp", "unit_tp"), [("2", "1"), ("2", "1000"), ("1", "1")])
def test_investor_totals_sum_the_days_of_the_window(sim, amt_qty_tp, unit_tp):
    window = {"stk_cd": "000660", "amt_qty_tp": amt_qty_tp, "trde_tp": "0", "unit_tp": unit_tp}
    (total,) = frame(sim, "ka10061", {**window, "strt_dt": "20251103", "end_dt": "20251230"}).rows(named=True)
    days = frame(sim, "ka10059", {**window, "dt": "20251230"})  # one page reaches back past the start
    days = days.filter(pl.col("dt") >= date(2025, 11, 3))
    assert days.height == len(cal.trading_days(date(2025, 11, 3), END))
    tolerance = 0 if (amt_qty_tp, unit_tp) == ("2", "1") else days.height  # each day rounded apart
    for col in total:
        daily = days["invrtt" if col == "invtrt" else col]  # 투신 is spelt invrtt in ka10059
        assert abs(total[col] - daily.sum()) <= tolerance, col
    shorter = frame(sim, "ka10061", {**window, "strt_dt": "20251201", "end_dt": "20251230"})
    assert shorter.row(0, named=True) != total


def test_institution_trend_accumulates_from_the_start_of_the_window(sim):
    body = {"stk_cd": "005930", "strt_dt": "20251001", "end_dt": "20251230"}
    body |= {"orgn_prsm_unp_tp": "1", "for_prsm_unp_tp": "2"}
    trend = frame(sim, "ka10045", body, pages=True).sort("dt")
    assert trend["dt"].min() == date(2025, 10, 1)
    for who in ("orgn", "for"):
        assert (trend[f"{who}_dt_acc"] == trend[f"{who}_daly_nettrede_qty"].cum_sum()).all()
    day = {"dt": "20251230", "stk_cd": "005930", "amt_qty_tp": "2", "trde_tp": "0", "unit_tp": "1"}
    nets = normalize("ka10059", fetch(sim, "ka10059", day)[0].body).select("dt", "orgn", "frgnr_invsr")
    both = trend.join(nets, on="dt")
    assert both.height > 20
    assert (both["orgn_daly_nettrede_qty"] == both["orgn"]).all()
    assert (both["for_daly_nettrede_qty"] == both["frgnr_invsr"]).all()
    summary = normalize("ka10045", fetch(sim, "ka10045", body)[0].body).row(0, named=True)
    closes = trend["close_pric"]
    for price in (summary["orgn_prsm_avg_pric"], summary["for_prsm_avg_pric"]):
        assert closes.min() * 0.9 < price < closes.max() * 1.1


@pytest.mark.parametrize("mrkt_tp", ["001", "101"])
def test_lending_top_ten_sums_are_the_sums_of_its_rows(sim, mrkt_tp):
    body = {"strt_dt": "20251201", "end_dt": "20251230", "mrkt_tp": mrkt_tp}
    top = frame(sim, "ka10069", body)
    assert top.height == 10
    market = "KOSPI" if mrkt_tp == "001" else "KOSDAQ"
    assert {sim.market.universe.get(c).market for c in top["stk_cd"]} == {market}
    assert top["dbrt_trde_cntrcnt"].to_list() == sorted(top["dbrt_trde_cntrcnt"], reverse=True)
    for col in ("dbrt_trde_cntrcnt", "dbrt_trde_rpy", "rmnd", "remn_amt"):
        assert top[f"{col}_sum"][0] == top[col].sum(), col
        assert 0 < top[f"{col}_rt"][0] <= 100
    other = frame(sim, "ka10069", {**body, "strt_dt": "20251101"})
    assert other["dbrt_trde_cntrcnt_sum"][0] > top["dbrt_trde_cntrcnt_sum"][0]
