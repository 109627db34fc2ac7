"""How Kiwoom writes each value the simulator models: the reviewed wire table.

DESIGN.md decision 11: what the simulator puts on the wire comes from this table, not
from the client's catalog, so a wrong unit or kind in ``schemas/catalog.json`` makes a
test fail instead of passing both ends. Sources, in the ``why`` of each entry: the
reference's field descriptions (``kiwoom_rest_api.txt``), the arithmetic of its response
examples (e.g. volume x close / turnover), WIRE_NOTES.md ("Facts from the vendor's
machine-readable spec") and issue 10. Only the unit vocabulary is shared with the client
(``schemas.kinds.Unit``); no kind or unit is read from the catalog.

Shape: ``DEFAULTS`` (field name -> ``Wire``) holds the conventions shared by every TR
(prices direction-signed, changes arithmetic, rates with two decimals, volumes in
shares, dates ``YYYYMMDD`` ...); ``BY_TR`` (api-id -> field -> ``Wire`` or ``None``)
holds what differs per TR, and every amount: an amount has no default unit. ``None``
means "not modelled here": the body shows the reference example's value. A ``Wire``'s
unit is fixed (``unit``) or chosen by a request option (``by``, a rule of ``RULES``).
Values reach ``simulator.wire.format_value`` in won and shares (index points, percent);
the unit divides them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from schemas.kinds import Unit

__all__ = [
    "BY_TR",
    "DEFAULTS",
    "RULES",
    "Style",
    "Wire",
    "investor_unit",
    "program_unit",
    "unit_of",
    "wire_for",
]


class Style(StrEnum):
    PRICE = "price"  # direction sign against the previous close: "+74800", "-42900", "70000"
    PLAIN = "plain"  # unsigned integer: volumes, quantities, amounts, unsigned prices
    LEVEL_X100 = "level_x100"  # index level x100 without the point, direction-signed: "252127"
    LEVEL_DECIMAL = "level_decimal"  # index level with the point and a direction sign: "-2394.49"
    SIGNED = "signed"  # arithmetic sign: "+500", "-500", "0"
    SIGNED_X100 = "signed_x100"  # arithmetic, two implied decimals: "+18031" is 180.31
    SIGNED_DECIMAL = "signed_decimal"  # arithmetic with the point: "-278.47"
    RATE = "rate"  # percent with two decimals and a sign: "+29.86", "-0.07", "0.00"
    RATE_X100 = "rate_x100"  # percent x100, signed: "+698" is 6.98 %
    RATIO_X100 = "ratio_x100"  # share x100, unsigned: "7061" is 70.61 %
    DATE = "date"  # YYYYMMDD
    TIME = "time"  # HHMMSS
    TIME_HHMM = "time_hhmm"  # HH:MM
    TIMESTAMP = "timestamp"  # YYYYMMDDHHMMSS
    TEXT = "text"  # codes, names, enumerations: as they are


@dataclass(frozen=True)
class Wire:
    style: Style
    unit: Unit | None = None  # the wire unit of an amount or quantity
    by: str | None = None  # or the rule of ``RULES`` that picks it from the request
    doubled: bool = False  # a negative value is sent with a doubled sign: "--3472"
    width: int = 0  # zero-padded to this many digits
    why: str = ""


# ---- units chosen by a request option ---------------------------------------------------
def investor_unit(options: Mapping[str, str]) -> Unit:
    """ka10059/ka10060/ka10061/ka10064/ka10066: ``amt_qty_tp`` 1 amounts (백만원: KRX's
    investor tables), 2 quantities, in thousands of shares when ``unit_tp`` is 1000."""
    amount = options.get("amt_qty_tp", "2") == ("0" if "netslmt_tp" in options else "1")
    if amount:
        return Unit.MILLION_WON
    return Unit.THOUSAND_SHARES if options.get("unit_tp") == "1000" else Unit.SHARES


def program_unit(options: Mapping[str, str]) -> Unit:
    """ka90005/ka90010 request text "1:금액(백만원), 2:수량(천주)"; ka90007 the same."""
    return Unit.MILLION_WON if options.get("amt_qty_tp") == "1" else Unit.THOUSAND_SHARES


RULES: dict[str, Callable[[Mapping[str, str]], Unit]] = {
    "amt_qty_tp/unit_tp": investor_unit,
    "amt_qty_tp:program": program_unit,
}

# ---- conventions shared by every TR -------------------------------------------------------
_P = Wire(Style.PRICE, why="WIRE_NOTES: prices carry a direction sign against the previous close")
_CHG = Wire(Style.SIGNED, why="WIRE_NOTES: changes carry an arithmetic sign (won)")
_RATE = Wire(Style.RATE, why="examples: '+29.86', '-0.07', '0.00'")
_VOL = Wire(Style.PLAIN, Unit.SHARES, why="stock volumes in shares (examples: ka10081 9263135)")
_TXT = Wire(Style.TEXT)
_DATE = Wire(Style.DATE, why="WIRE_NOTES: YYYYMMDD")
_TIME = Wire(Style.TIME, why="WIRE_NOTES: HHMMSS")
_TS = Wire(Style.TIMESTAMP, why="examples: '20250917132000'")

DEFAULTS: dict[str, Wire] = {
    **dict.fromkeys(("cur_prc", "close_pric", "cntr_pric", "open_pric", "high_pric", "low_pric"), _P),
    **dict.fromkeys(("pred_pre", "pre"), _CHG),
    **dict.fromkeys(("flu_rt", "pre_rt", "trde_tern_rt"), _RATE),
    **dict.fromkeys(("trde_qty", "acc_trde_qty", "dt_trde_qty"), _VOL),
    **dict.fromkeys(("pred_pre_sig", "pre_sig", "flu_sig"), Wire(Style.TEXT, why="sign code 1-5")),
    **dict.fromkeys(("stk_cd", "code", "inds_cd", "stk_nm", "name", "inds_nm"), _TXT),
    **dict.fromkeys(("dt", "date"), _DATE),
    "tm": _TIME,
    "cntr_tm": _TIME,
}

# ---- per TR ---------------------------------------------------------------------------------
_KRW = Wire(Style.PLAIN, Unit.WON, why="volume x close / turnover is 0.93-1.18 in the examples")
_M = Wire(Style.PLAIN, Unit.MILLION_WON, why="volume x close / turnover is ~1e6 in the examples")
_M_ASSUMED = Wire(Style.PLAIN, Unit.MILLION_WON, why="example is 0: 백만원 as the daily quotes (ka10081)")
_LX = Wire(Style.LEVEL_X100, why="description: 지수 값은 소수점 제거 후 100배 값으로 반환")
_LD = Wire(Style.LEVEL_DECIMAL, why="examples: '-2394.49' (point and direction sign)")
_SECTOR_VOL = Wire(
    Style.PLAIN, Unit.THOUSAND_SHARES, why="vendor CLI on the live server (ka20006); ka20019 example"
)
_SECTOR_TURNOVER = Wire(
    Style.PLAIN, Unit.MILLION_WON, why="examples: 천주 x 백만원 give 20-30k won a share (ka20006, ka20019)"
)
_INV = Wire(
    Style.SIGNED, by="amt_qty_tp/unit_tp", why="request: amt_qty_tp 1 금액 / 2 수량, unit_tp 천주/단주"
)
_INV2 = Wire(Style.SIGNED, by="amt_qty_tp/unit_tp", doubled=True, why="example '--40142'; vendor live: '--N'")
_NET_SHR = Wire(Style.SIGNED, Unit.SHARES, why="net quantity in shares (examples beside the day's volume)")
_PRG_AMT = Wire(Style.PLAIN, Unit.MILLION_WON, why="ka90008 example: 58,173 shares x 245,500 = 14245 백만원")
_PRG_NET = Wire(Style.SIGNED, Unit.MILLION_WON, doubled=True, why="ka90008 example '--3472' (백만원)")
_PRG_QTY = Wire(Style.PLAIN, Unit.SHARES, why="ka90008 example: quantities in shares (see amounts)")
_PRG_NET_QTY = Wire(Style.SIGNED, Unit.SHARES, doubled=True, why="ka90008 example '--14240'")
_PRG_IRDS = Wire(Style.SIGNED, Unit.MILLION_WON, why="change of the net amount, same unit (example '+771')")
_PRG_IRDS_QTY = Wire(Style.SIGNED, Unit.SHARES, why="change of the net quantity (example '+3142')")
_MKT = Wire(Style.PLAIN, by="amt_qty_tp:program", why="request: 1:금액(백만원), 2:수량(천주)")
_MKT_NET = Wire(Style.SIGNED, by="amt_qty_tp:program", doubled=True, why="request text; vendor live '--N'")
_MKT_QTY = Wire(Style.PLAIN, Unit.THOUSAND_SHARES, why="vendor spec: *_qty in 천주")
_MKT_NET_QTY = Wire(Style.SIGNED, Unit.THOUSAND_SHARES, doubled=True, why="vendor spec: 천주; live '--N'")
_LEND_QTY = Wire(Style.PLAIN, Unit.SHARES, why="ka20068 example: 98,242,435 shares x ~55,500 = remn_amt")
_LEND_AMT = Wire(Style.PLAIN, Unit.MILLION_WON, why="vendor spec 백만원; ka20068/ka90012 examples agree")
_LEND_RT = Wire(Style.RATIO_X100, why="description: 소수점 제거 된 100배 값 ('7061' = 70.61 %)")

_STOCK_BARS = {"trde_qty": _VOL, "cntr_tm": _TS}
_SECTOR_CHART = {
    **dict.fromkeys(("cur_prc", "open_pric", "high_pric", "low_pric"), _LX),
    "trde_qty": _SECTOR_VOL,
    "acc_trde_qty": _SECTOR_VOL,
    "trde_prica": _SECTOR_TURNOVER,
    "cntr_tm": _TS,
}
_SECTOR_X100_CHANGE = Wire(
    Style.SIGNED_X100, why="cur_prc - previous close with cur_prc x100: '18031' beside '388193'"
)
_SECTOR_QUOTE = {
    **dict.fromkeys(("cur_prc", "open_pric", "high_pric", "low_pric"), _LD),
    "pred_pre": Wire(Style.SIGNED_DECIMAL, why="example '-278.47'"),
    "trde_qty": Wire(
        Style.PLAIN, Unit.THOUSAND_SHARES, why="example 890 with 41867 백만원: ~47k won a share"
    ),
    "trde_prica": Wire(Style.PLAIN, Unit.MILLION_WON, why="example 41867 beside 890 천주"),
}
_GOLD_TS = {"dt": _TS, "cntr_tm": _TS}
_INVESTORS = ("ind_invsr", "frgnr_invsr", "orgn", "fnnc_invt", "insrnc", "invtrt", "invrtt", "etc_fnnc",
              "bank", "penfnd_etc", "samo_fund", "natn", "etc_corp", "natfor")  # fmt: skip
_TOP_AMT = Wire(Style.SIGNED, Unit.TEN_MILLION_WON, why="example -130811 beside -50312 천주: ~26k won")
_TOP_QTY = Wire(Style.SIGNED, Unit.THOUSAND_SHARES, why="request text: 수량(천)")
_BASIS = Wire(Style.SIGNED_DECIMAL, why="futures - KOSPI200 in points, two decimals ('0.00')")
_PROGRAM_MARKET = {
    **dict.fromkeys(("dfrt_trde_sel", "dfrt_trde_buy", "ndiffpro_trde_sel", "ndiffpro_trde_buy"), _MKT),
    **dict.fromkeys(("all_sel", "all_buy"), _MKT),
    **dict.fromkeys(("dfrt_trde_netprps", "ndiffpro_trde_netprps", "all_netprps"), _MKT_NET),
    **dict.fromkeys(("dfrt_trde_sell_qty", "dfrt_trde_buy_qty", "ndiffpro_trde_sell_qty"), _MKT_QTY),
    "ndiffpro_trde_buy_qty": _MKT_QTY,
    **dict.fromkeys(("dfrt_trde_netprps_qty", "ndiffpro_trde_netprps_qty"), _MKT_NET_QTY),
    "kosp200": _TXT,
    "basis": _BASIS,
}
_PROGRAM_STOCK = {
    **dict.fromkeys(("prm_sell_amt", "prm_buy_amt"), _PRG_AMT),
    "prm_netprps_amt": _PRG_NET,
    **dict.fromkeys(("prm_sell_qty", "prm_buy_qty"), _PRG_QTY),
    "prm_netprps_qty": _PRG_NET_QTY,
    "prm_netprps_amt_irds": _PRG_IRDS,
    "prm_netprps_qty_irds": _PRG_IRDS_QTY,
}
_LENDING = {
    **dict.fromkeys(("dbrt_trde_cntrcnt", "dbrt_trde_rpy", "rmnd"), _LEND_QTY),
    "dbrt_trde_irds": Wire(Style.SIGNED, Unit.SHARES, why="example '-1482754' = new - repaid (ka20068)"),
    "remn_amt": _LEND_AMT,
}

_STOCK_LIST = {
    "lastPrice": Wire(Style.PLAIN, Unit.WON, width=8, why="example '00000197'"),
    "listCount": Wire(Style.PLAIN, Unit.SHARES, width=16, why="example '0000000123759593'"),
    "regDay": _DATE,
    "marketCode": _TXT,
    "marketName": _TXT,
}
_BASIC_INFO = {  # ka10001: the example is shifted by a few fields; these follow the labels
    **dict.fromkeys(("upl_pric", "lst_pric"), Wire(Style.PRICE, why="limits: '+' upper, '-' lower")),
    "base_pric": Wire(Style.PLAIN, Unit.WON, why="기준가: the previous close, unsigned"),
    **dict.fromkeys(("oyr_hgst", "oyr_lwst", "250hgst", "250lwst"), Wire(Style.PRICE, why="'+181400'")),
    **dict.fromkeys(("250hgst_pric_dt", "250lwst_pric_dt"), _DATE),
    **dict.fromkeys(("250hgst_pric_pre_rt", "250lwst_pric_pre_rt"), _RATE),
    "flo_stk": Wire(Style.PLAIN, Unit.THOUSAND_SHARES, why="'25527' for 키움증권's 26M shares (ka10007 too)"),
    "mac": Wire(Style.PLAIN, Unit.HUNDRED_MILLION_WON, why="'24352' 억 = 25.5M shares x 95,400 (example)"),
    "for_exh_rt": _RATE,
    "exp_cntr_pric": _P,
    "exp_cntr_qty": _VOL,
}
_SECTOR_NETS = ("sc_netprps", "insrnc_netprps", "invtrt_netprps", "bank_netprps", "endw_netprps",
                "etc_corp_netprps", "ind_netprps", "frgnr_netprps", "native_trmt_frgnr_netprps",
                "natn_netprps", "samo_fund_netprps", "orgn_netprps")  # fmt: skip
# mapped names that mean something the market does not model in these TRs: the example's value
_NOT_MODELLED: dict[str, Mapping[str, Wire | None]] = {
    "ka10051": dict.fromkeys(_SECTOR_NETS),  # the market models no sector's investors
    "ka50012": dict.fromkeys(("ind_netprps", "orgn_netprps")),  # gold: no investor model
    "ka10034": dict.fromkeys(("gain_pos_stkcnt",)),  # rankings of the example's stocks
    "ka10035": dict.fromkeys(("limit_exh_rt",)),
    "ka10036": dict.fromkeys(("gain_pos_stkcnt", "limit_exh_rt", "poss_stkcnt")),
    "ka10037": dict.fromkeys(("netprps_prica", "trde_prica")),
    "ka20003": dict.fromkeys(("wght",)),
    "ka30003": dict.fromkeys(("chg_qty", "trde_prica", "wght")),  # ELW and ETF figures
    **{t: dict.fromkeys(("trde_prica",)) for t in ("ka30005", "ka30009", "ka30010", "ka40006")},
    **{t: dict.fromkeys(("acc_trde_prica",)) for t in ("ka40003", "ka50010", "ka50101")},
    "ka52301": dict.fromkeys(("chg_qty",)),
}

_TABLE: dict[str, Mapping[str, Wire | None]] = {
    # stock charts: daily turnover in 백만원, longer periods in won (issue 10, fact 1)
    "ka10079": _STOCK_BARS,
    "ka10080": _STOCK_BARS,
    "ka10081": {"trde_prica": _M},
    "ka10082": {"trde_prica": _KRW},
    "ka10083": {"trde_prica": _KRW},
    "ka10094": {"trde_prica": _KRW},
    # gold charts: timestamps in dt; turnover 백만원 daily (vendor spec: ka50081/ka50082), won monthly
    "ka50079": _GOLD_TS,
    "ka50080": _GOLD_TS,
    "ka50081": {"acc_trde_prica": _M},
    "ka50082": {**_GOLD_TS, "acc_trde_prica": Wire(Style.PLAIN, Unit.MILLION_WON, why="vendor spec")},
    "ka50083": {**_GOLD_TS, "acc_trde_prica": _KRW},
    "ka50091": _GOLD_TS,
    "ka50092": {**_GOLD_TS, "acc_trde_prica": Wire(Style.PLAIN, Unit.MILLION_WON, why="as ka50081")},
    "ka50012": {"acc_trde_prica": _M},
    # sector charts: levels x100, volume 천주, turnover 백만원; intraday changes x100 too
    "ka20004": {**_SECTOR_CHART, "pred_pre": _SECTOR_X100_CHANGE},
    "ka20005": {
        **_SECTOR_CHART,
        "pred_pre": Wire(Style.SIGNED_X100, doubled=True, why="as ka20004; vendor live: '--N'"),
    },
    "ka20006": _SECTOR_CHART,
    "ka20007": _SECTOR_CHART,
    "ka20008": _SECTOR_CHART,
    "ka20019": _SECTOR_CHART,
    # sector quotes: levels with the point and a direction sign
    "ka20001": _SECTOR_QUOTE,
    "ka20003": _SECTOR_QUOTE,
    "ka20009": _SECTOR_QUOTE,
    "ka10051": {  # sectors' investors: the levels like ka20006, the rest as the example
        "cur_prc": _LX,
        "pred_pre": Wire(Style.SIGNED_X100, why="'+9030' beside '+265381': 90.30 points on 2653.81"),
        "flu_rt": Wire(Style.RATE_X100, why="'352': 90.30 / (2653.81 - 90.30) = 3.52 % (example)"),
        "trde_qty": Wire(Style.PLAIN, Unit.THOUSAND_SHARES, why="sector volume, as ka20006"),
    },
    "ka30011": {"cur_prc": None, "pred_pre": None},  # an ELW's figures, not a stock's price
    # quotes and lists with a turnover
    "ka10001": _BASIC_INFO,
    "ka10003": {"acc_trde_prica": _KRW},
    "ka10084": {"acc_trde_prica": Wire(Style.PLAIN, Unit.WON, why="the trade list of ka10003")},
    **{t: {"acc_trde_prica": _M} for t in ("ka10046", "ka10047", "ka10055", "ka10098")},
    **{t: {"trde_prica": _M_ASSUMED} for t in ("ka10006", "ka10007")},
    "ka10032": {"trde_prica": Wire(Style.PLAIN, Unit.MILLION_WON, why="ranking '5308092': trillions of won")},
    "ka10095": {"trde_prica": _M},
    "ka10099": _STOCK_LIST,
    "ka10100": _STOCK_LIST,
    "ka10101": {"marketCode": Wire(Style.TEXT, why="a field of each row (example '0')"), "group": _TXT},
    "ka10075": {"tm": Wire(Style.TIME_HHMM, why="issue 10: '10:00'"), "ind_invsr": None},
    "ka10048": {"dt": None},  # a time of day here ("000000")
    # investors of a stock: unit by amt_qty_tp/unit_tp
    "ka10059": dict.fromkeys(_INVESTORS, _INV)
    | {"acc_trde_prica": _M, "flu_rt": Wire(Style.RATE_X100, why="'+698' beside '+61300', '+4000': 6.98 %")},
    "ka10060": dict.fromkeys(_INVESTORS, _INV) | {"acc_trde_prica": _M},
    **{t: dict.fromkeys(_INVESTORS, _INV) for t in ("ka10064", "ka10066")},
    "ka10061": dict.fromkeys(_INVESTORS, _INV2),
    **{
        t: dict.fromkeys(("ind_netprps", "orgn_netprps"), _NET_SHR) | {"trde_prica": _M_ASSUMED}
        for t in ("ka10005", "ka10015")
    },
    "ka10086": {
        **dict.fromkeys(("ind_netprps", "orgn_netprps", "orgn"), _NET_SHR),
        "ind_netprps": Wire(Style.SIGNED, Unit.SHARES, doubled=True, why="example '--714'"),
    },
    "ka10045": dict.fromkeys(
        ("orgn_daly_nettrede_qty", "for_daly_nettrede_qty", "orgn_dt_acc", "for_dt_acc"), _NET_SHR
    )
    | dict.fromkeys(("orgn_prsm_avg_pric", "for_prsm_avg_pric"), _P)
    | {"limit_exh_rt": _RATE},
    "ka10009": dict.fromkeys(("orgn_daly_netrde", "frgnr_daly_netrde", "orgn_dt_acc"), _NET_SHR)
    | {"frgnr_qota_rt": _RATE},
    "ka10008": {  # foreign holdings
        "chg_qty": _NET_SHR,
        **dict.fromkeys(("poss_stkcnt", "gain_pos_stkcnt", "frgnr_limit"), Wire(Style.PLAIN, Unit.SHARES)),
        "wght": _RATE,
        "limit_exh_rt": _RATE,
    },
    # short selling: quantities in shares, turnover 천원, the average price unsigned
    "ka10014": {
        "shrts_qty": Wire(Style.PLAIN, Unit.SHARES),
        "ovr_shrts_qty": Wire(Style.PLAIN, Unit.SHARES, why="running sum of shrts_qty over the period"),
        "trde_wght": Wire(Style.RATE, why="shrts_qty / trde_qty % ('+8.58')"),
        "shrts_trde_prica": Wire(Style.PLAIN, Unit.THOUSAND_WON, why="841407 x 55841 = 46985302 천원"),
        "shrts_avg_pric": Wire(Style.PLAIN, Unit.WON, why="example '55841' unsigned beside '-55800'"),
    },
    "ka10043": {"trde_wght": _RATE},
    # program trading of a stock (백만원, shares)
    "ka90008": {**_PROGRAM_STOCK, "tm": _TIME},
    "ka90013": _PROGRAM_STOCK,
    "ka90003": {
        **dict.fromkeys(("prm_sell_amt", "prm_buy_amt"), _PRG_AMT),
        "prm_netprps_amt": Wire(Style.SIGNED, Unit.MILLION_WON, why="issue 10: 백만원"),
    },
    "ka90004": {
        **dict.fromkeys(
            ("buy_cntr_qty", "sel_cntr_qty"), Wire(Style.PLAIN, Unit.THOUSAND_SHARES, why="spec")
        ),
        **dict.fromkeys(("buy_cntr_amt", "sel_cntr_amt"), Wire(Style.PLAIN, Unit.MILLION_WON, why="spec")),
        "netprps_prica": Wire(Style.SIGNED, Unit.MILLION_WON, why="vendor spec: 백만원"),
    },
    # program trading of a market: unit by amt_qty_tp
    "ka90005": {**_PROGRAM_MARKET, "cntr_tm": _TIME},
    "ka90010": {**_PROGRAM_MARKET, "cntr_tm": Wire(Style.TIMESTAMP, why="example '20241125000000'")},
    "ka90007": {
        "basis": _BASIS,
        **{f"{k}_{p}": _MKT_NET for k in ("dfrt_trde", "ndiffpro_trde", "all") for p in ("tdy", "acc")},
        "kospi200": Wire(
            Style.SIGNED_DECIMAL, why="KOSPI200 level with the point ('+47839' x100 in ka90005)"
        ),
    },
    "ka90006": {
        **dict.fromkeys(("buy_dftr_trde_qty", "sel_dftr_trde_qty"), Wire(Style.PLAIN, Unit.THOUSAND_SHARES)),
        **dict.fromkeys(("buy_dftr_trde_amt", "sel_dftr_trde_amt"), Wire(Style.PLAIN, Unit.MILLION_WON)),
        **dict.fromkeys(
            ("buy_dftr_trde_irds_amt", "sel_dftr_trde_irds_amt"), Wire(Style.SIGNED, Unit.MILLION_WON)
        ),
    },
    # foreign and institution rankings: amt_qty_tp picks the ranking; both columns always sent,
    # amounts in 천만원 and quantities in 천주 (request text "1:금액(천만), 2:수량(천)")
    "ka90009": {
        **{
            f"{who}_{side}_{f}": _TXT
            for who in ("for", "orgn")
            for side in ("netslmt", "netprps")
            for f in ("stk_cd", "stk_nm")
        },
        **{f"{who}_{side}_amt": _TOP_AMT for who in ("for", "orgn") for side in ("netslmt", "netprps")},
        **{f"{who}_{side}_qty": _TOP_QTY for who in ("for", "orgn") for side in ("netslmt", "netprps")},
    },
    # stock lending (served at /api/dostk/slb)
    "ka10068": _LENDING,
    "ka20068": _LENDING,
    "ka90012": _LENDING,
    "ka10069": {
        **_LENDING,
        **{f"{k}_sum": _LENDING[k] for k in ("dbrt_trde_cntrcnt", "dbrt_trde_rpy", "rmnd", "remn_amt")},
        **{f"{k}_rt": _LEND_RT for k in ("dbrt_trde_cntrcnt", "dbrt_trde_rpy", "rmnd", "remn_amt")},
    },
}


def _merge(*tables: Mapping[str, Mapping[str, Wire | None]]) -> dict[str, dict[str, Wire | None]]:
    """One table from several; a field listed twice for a TR is a mistake."""
    out: dict[str, dict[str, Wire | None]] = {}
    for table in tables:
        for api_id, fields in table.items():
            got = out.setdefault(api_id, {})
            if twice := got.keys() & fields.keys():
                raise ValueError(f"{api_id}: {sorted(twice)} listed twice in the wire table")
            got.update(fields)
    return out


BY_TR = _merge(_TABLE, _NOT_MODELLED)


def wire_for(api_id: str, name: str) -> Wire | None:
    """How ``api_id`` writes field ``name``; None when the simulator does not model it."""
    per_tr = BY_TR.get(api_id, {})
    if name in per_tr:
        return per_tr[name]
    return DEFAULTS.get(name)


def unit_of(w: Wire, options: Mapping[str, str]) -> Unit | None:
    """The wire unit of ``w`` for a request with ``options``."""
    return RULES[w.by](options) if w.by else w.unit
