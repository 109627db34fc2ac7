"""The simulator's bodies: every query TR, shaped as the reference says, consistent across TRs."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

import httpx
import polars as pl
import pytest

from connectors import KiwoomClient, Page, RateLimiter, RateLimits, Settings
from schemas import calendar as cal
from schemas import catalog, normalize
from simulator.app import SimConfig, Simulator

KST = cal.KST
AFTER_CLOSE = datetime(2025, 12, 30, 16, 0, tzinfo=KST)
QUERY_TRS = sorted(
    t.id
    for t in catalog().trs.values()
    if t.transport == "rest" and not t.is_order and not t.path.startswith("/oauth2/")
)


FILL = {"stk_cd": "005930", "inds_cd": "001", "basis_aset_cd": "005930", "rank_strt": "1", "rank_end": "10"}


def valid_request(api_id: str) -> dict[str, str]:
    """The reference's request example, repaired where its text is damaged (misspelled or
    missing required fields, values outside the documented set)."""
    tr = catalog().tr(api_id)
    body = dict(tr.raw["request_example"])
    for spec in tr.request:
        name, allowed, value = spec["name"], spec.get("allowed"), body.get(spec["name"], "")
        if allowed and value not in allowed and (value or spec.get("required")):
            body[name] = next(iter(allowed))
        elif spec.get("required") and value == "":
            is_date = name.endswith("_dt") or name in ("dt", "date")
            body[name] = FILL.get(name, "20251230" if is_date else "0")
    return body


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None, n_stocks=40))


def fetch(sim: Simulator, api_id: str, body: dict[str, Any], pages: bool = False) -> list[Page]:
    """One page, or with ``pages`` every page of the answer."""
    settings = Settings.load(base_url="http://sim.test", env={}, env_file=None, token_cache=None)

    async def go() -> list[Page]:
        transport = httpx.ASGITransport(app=sim)
        async with KiwoomClient(
            settings, transport=transport, limiter=RateLimiter(RateLimits(total=None))
        ) as kw:
            if pages:
                return [p async for p in kw.pages(api_id, body)]
            return [await kw.request(api_id, body)]

    return asyncio.run(go())


@pytest.mark.parametrize("api_id", QUERY_TRS)
def test_every_query_tr_answers_its_reference_request_and_normalizes(sim, api_id):
    tr = catalog().tr(api_id)
    (page,) = fetch(sim, api_id, valid_request(api_id))
    body = page.body
    assert body["return_code"] == 0
    # exactly the catalogued keys, every value a string
    expected = (
        {f.name for f in tr.response} | ({tr.main.key} if tr.main else set()) | {"return_code", "return_msg"}
    )
    assert set(body) == expected
    if tr.main:
        for row in body[tr.main.key]:
            assert set(row) == {f.name for f in tr.main.items}
            assert all(isinstance(v, str) for v in row.values())
    frame = normalize(api_id, body)  # strict: raises on any value that does not fit its kind
    assert frame.height == (len(body[tr.main.key]) if tr.main else 1)


def test_daily_bar_equals_the_aggregate_of_its_minute_bars(sim):
    (daily,) = fetch(sim, "ka10081", {"stk_cd": "000660", "base_dt": "20251230", "upd_stkpc_tp": "1"})
    day = normalize("ka10081", daily.body).filter(pl.col("dt") == date(2025, 12, 30)).row(0, named=True)
    (page,) = fetch(sim, "ka10080", {"stk_cd": "000660", "tic_scope": "1", "upd_stkpc_tp": "1"})
    minutes = normalize("ka10080", page.body).filter(pl.col("cntr_tm").dt.date() == date(2025, 12, 30))
    assert minutes.height == 381  # 09:01 .. 15:20 and the closing auction at 15:30
    agg = minutes.sort("cntr_tm")
    assert agg["open_pric"][0] == day["open_pric"]
    assert agg["cur_prc"][-1] == day["cur_prc"]
    assert agg["high_pric"].max() == day["high_pric"]
    assert agg["low_pric"].min() == day["low_pric"]
    assert agg["trde_qty"].sum() == day["trde_qty"]
    assert agg["acc_trde_qty"][-1] == day["trde_qty"]


def test_weekly_bars_aggregate_daily_bars(sim):
    body = {"stk_cd": "005930", "base_dt": "20251230", "upd_stkpc_tp": "1"}
    daily = normalize("ka10081", fetch(sim, "ka10081", body)[0].body)
    weekly = normalize("ka10082", fetch(sim, "ka10082", body)[0].body)
    week = weekly.sort("dt").row(-3, named=True)
    start = week["dt"]
    days = daily.filter((pl.col("dt") >= start) & (pl.col("dt") < pl.lit(start) + pl.duration(days=7))).sort(
        "dt"
    )
    assert days.height >= 3
    assert (days["open_pric"][0], days["cur_prc"][-1]) == (week["open_pric"], week["cur_prc"])
    assert (days["high_pric"].max(), days["low_pric"].min()) == (week["high_pric"], week["low_pric"])
    assert days["trde_qty"].sum() == week["trde_qty"]


def test_prices_are_positive_with_direction_markers_and_indices_x100(sim):
    (minute,) = fetch(sim, "ka10080", {"stk_cd": "005930", "tic_scope": "1", "upd_stkpc_tp": "1"})
    rows = minute.body["stk_min_pole_chart_qry"]
    assert any(r["cur_prc"][0] in "+-" for r in rows)  # direction against the previous close
    frame = normalize("ka10080", minute.body)
    assert (frame["cur_prc"] > 0).all()
    (index,) = fetch(sim, "ka20006", {"inds_cd": "001", "base_dt": "20251230"})
    levels = normalize("ka20006", index.body)["cur_prc"]
    assert 500 < levels.median() < 10_000  # KOSPI-like levels once the x100 is undone


def test_stock_list_has_the_universe(sim):
    (kospi,) = fetch(sim, "ka10099", {"mrkt_tp": "0"})
    frame = normalize("ka10099", kospi.body)
    names = dict(zip(frame["code"], frame["name"], strict=True))
    assert names["005930"] == "삼성전자" and names["000660"] == "SK하이닉스"
    (sectors,) = fetch(sim, "ka10101", {"mrkt_tp": "0"})
    assert "001" in set(normalize("ka10101", sectors.body)["code"])


def test_todays_session_grows_with_the_clock():
    def minutes_at(hh: int, mm: int) -> int:
        sim = Simulator(SimConfig(clock=lambda: datetime(2025, 12, 30, hh, mm, tzinfo=KST), rate_limit=None))
        (page,) = fetch(sim, "ka10080", {"stk_cd": "005930", "tic_scope": "1", "upd_stkpc_tp": "1"})
        ts = normalize("ka10080", page.body)["cntr_tm"]
        return ts.filter(ts.dt.date() == date(2025, 12, 30)).len()

    assert minutes_at(8, 30) == 0
    assert minutes_at(10, 0) == 60
    assert minutes_at(15, 25) == 380  # the closing call auction: nothing until 15:30
    assert minutes_at(16, 0) == 381


def test_deterministic_across_instances():
    body = {"stk_cd": "035420", "base_dt": "20240628", "upd_stkpc_tp": "1"}
    a = fetch(Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None)), "ka10081", body)[0].body
    b = fetch(Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None)), "ka10081", body)[0].body
    assert a == b


def test_next_key_is_bound_to_its_request(sim):
    body = {"stk_cd": "005930", "base_dt": "20251230", "upd_stkpc_tp": "1"}
    (page,) = fetch(sim, "ka10081", body)
    assert page.cont and page.next_key

    async def go() -> dict:
        transport = httpx.ASGITransport(app=sim)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as http:
            token = (
                await http.post(
                    "/oauth2/token",
                    json={"grant_type": "client_credentials", "appkey": "a", "secretkey": "b"},
                )
            ).json()["token"]
            headers = {
                "authorization": f"Bearer {token}",
                "api-id": "ka10081",
                "cont-yn": "Y",
                "next-key": page.next_key,
            }
            other = {**body, "stk_cd": "000660"}
            return (await http.post("/api/dostk/chart", json=other, headers=headers)).json()

    answer = asyncio.run(go())
    assert "[1517:" in answer["return_msg"]


@pytest.mark.parametrize("api_id", ["ka10081", "ka10082", "ka10083"])
def test_pages_join_into_the_unpaged_series(api_id):
    """A period is never cut at a page boundary: small pages join into the one big answer."""
    body = {"stk_cd": "005930", "base_dt": "20251230", "upd_stkpc_tp": "1"}

    def series(size: int) -> pl.DataFrame:
        sizes = {"daily": size, "weekly": size, "monthly": size}
        sim = Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None, n_stocks=40, page_sizes=sizes))
        return pl.concat(normalize(api_id, p.body) for p in fetch(sim, api_id, body, pages=True))

    paged, whole = series(57), series(5000)
    assert paged.height > 2 * 57
    assert paged.equals(whole)


def test_investor_nets_are_signed_and_balance(sim):
    # quantities in shares: the top-level investor types' nets sum to zero, so they carry both signs
    body = {"dt": "20251230", "stk_cd": "005930", "amt_qty_tp": "2", "trde_tp": "0", "unit_tp": "1"}
    frame = normalize("ka10059", fetch(sim, "ka10059", body)[0].body)
    top = ["ind_invsr", "frgnr_invsr", "orgn", "natn", "etc_corp", "natfor"]
    assert frame.height and frame.select(pl.sum_horizontal(top)).to_series().eq(0).all()
    assert frame.select(pl.min_horizontal(top)).to_series().lt(0).all()


def test_short_selling_turnover_is_sent_in_thousands_of_won(sim):
    body = {"stk_cd": "005930", "tm_tp": "1", "strt_dt": "20251201", "end_dt": "20251230"}
    frame = normalize("ka10014", fetch(sim, "ka10014", body)[0].body).filter(pl.col("shrts_qty") > 0)
    assert frame.height
    won = frame["shrts_qty"] * frame["shrts_avg_pric"]
    ratio = won / frame["shrts_trde_prica"]
    assert ratio.min() > 999 and ratio.max() < 1001
