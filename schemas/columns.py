"""Canonical English column names of the TR datasets, with their Korean labels.

The dataset layer (``warehouse.datasets``) renames each normalized wire column
to the English snake_case name below; the docs (``python -m warehouse.docs``)
list the wire name beside it.  One concept has one name in every table: 투신
is ``investment_trust`` whether a TR spells it ``invrtt`` or ``invtrt`` (and
whether the reference labels it 투신 or, in ka10060/ka10061, 특신: 투신 is
KRX's investor category, the one ka10058/ka10063 list among their request
values; 특신 is a typo), 순매수 is ``net_buy``, 순매도 ``net_sell``, 순매매 ``net``.

``COLUMNS`` holds names shared by every TR; ``TR_COLUMNS`` the few wire names that
mean something else in one TR.  A label here replaces the reference's where the
reference is wrong or carries a wire unit the warehouse no longer stores in.

Request options that decide what the numbers mean become readable columns
(``OPTION_COLUMNS``): ``measure`` (amount or quantity), ``side`` (buy, sell, net
...) and ``quantity_unit``, with the wire codes translated per TR (``OPTION_VALUES``).
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.catalog import catalog
from schemas.errors import InputError

__all__ = [
    "COLUMNS",
    "OPTION_COLUMNS",
    "OPTION_VALUES",
    "TR_COLUMNS",
    "column_name",
    "option_column",
    "option_value",
    "option_wire",
]

# investor categories: one name each, whatever the TR calls them
_INVESTORS = {
    "individual": "개인",
    "foreign": "외국인",
    "institution": "기관계",
    "financial_investment": "금융투자",
    "insurance": "보험",
    "investment_trust": "투신",
    "other_finance": "기타금융",
    "bank": "은행",
    "pension_fund": "연기금등",
    "private_fund": "사모펀드",
    "government": "국가",
    "other_corporation": "기타법인",
    "domestic_foreign": "내외국인 (내국인대우외국인)",
}


def _inv(name: str, suffix: str = "") -> tuple[str, str]:
    return name, _INVESTORS[name] + suffix


def _program(prefix: str, label: str) -> dict[str, tuple[str, str]]:
    """ka90005/ka90010's arbitrage, non-arbitrage and total trading, amounts or quantities."""
    name = {"dfrt_trde": "arbitrage", "ndiffpro_trde": "non_arbitrage", "all": "total"}[prefix]
    return {
        f"{prefix}_sel": (f"{name}_sell", f"{label}매도"),
        f"{prefix}_buy": (f"{name}_buy", f"{label}매수"),
        f"{prefix}_netprps": (f"{name}_net_buy", f"{label}순매수"),
        f"{prefix}_sell_qty": (f"{name}_sell_quantity", f"{label}매도수량"),
        f"{prefix}_buy_qty": (f"{name}_buy_quantity", f"{label}매수수량"),
        f"{prefix}_netprps_qty": (f"{name}_net_buy_quantity", f"{label}순매수수량"),
        # ka90007's day and running totals are net buying ("+10734"; the day's equals ka90010's net)
        f"{prefix}_tdy": (f"{name}_net_buy_day", f"{label} 순매수 당일"),
        f"{prefix}_acc": (f"{name}_net_buy_cum", f"{label} 순매수 누적"),
    }


def _consigned(prefix: str, label: str) -> dict[str, tuple[str, str]]:
    """ka10010's consigned (customer) arbitrage and non-arbitrage trading of a sector."""
    name = {"dfrt_trst": "arbitrage", "ndiffpro_trst": "non_arbitrage", "all_dfrt_trst": "total"}[prefix]
    out = {}
    for side, side_name, side_label in (
        ("sell", "sell", "매도"),
        ("buy", "buy", "매수"),
        ("netprps", "net_buy", "순매수"),
    ):
        out[f"{prefix}_{side}_qty"] = (
            f"{name}_consigned_{side_name}_quantity",
            f"{label}위탁{side_label}수량",
        )
        out[f"{prefix}_{side}_amt"] = (f"{name}_consigned_{side_name}_amount", f"{label}위탁{side_label}금액")
    return out


def _ranked(who: str, name: str, label: str) -> dict[str, tuple[str, str]]:
    """ka90009's four rankings side by side: foreign/institution net sellers and net buyers."""
    out = {}
    for side, side_name, side_label in (("netslmt", "net_sell", "순매도"), ("netprps", "net_buy", "순매수")):
        base, lab = f"{name}_{side_name}", f"{label}{side_label}"
        out[f"{who}_{side}_stk_cd"] = (f"{base}_symbol", f"{lab}종목코드")
        out[f"{who}_{side}_stk_nm"] = (f"{base}_name", f"{lab}종목명")
        out[f"{who}_{side}_amt"] = (f"{base}_amount", f"{lab}금액")
        out[f"{who}_{side}_qty"] = (f"{base}_quantity", f"{lab}수량")
    return out


def _lending() -> dict[str, tuple[str, str]]:
    base = {
        "dbrt_trde_cntrcnt": ("lending_new_quantity", "대차거래체결주수"),
        "dbrt_trde_rpy": ("lending_repaid_quantity", "대차거래상환주수"),
        "rmnd": ("lending_balance_quantity", "잔고주수"),
        "remn_amt": ("lending_balance_amount", "잔고금액"),
    }
    out = dict(base)
    for wire, (name, label) in base.items():
        out[f"{wire}_sum"] = (f"{name}_sum", f"{label}합")
        out[f"{wire}_rt"] = (f"{name}_rate", f"{label}비율")
    out["dbrt_trde_irds"] = ("lending_change_quantity", "대차거래증감")
    out["dbtr_trde_rpy_sum"] = ("lending_repaid_quantity_sum", "대차거래상환주수합")
    return out


# wire name -> (English column, Korean label), the same in every TR that sends it
COLUMNS: dict[str, tuple[str, str]] = {
    # the row's day and time (the dataset's date or ts column is made from them)
    "dt": ("date", "일자"),
    "date": ("date", "일자"),
    "tm": ("time", "시간"),
    "cntr_tm": ("time", "체결시간"),
    # quotes
    "cur_prc": ("price", "현재가"),
    "close_pric": ("close", "종가"),
    "pred_pre": ("change", "전일대비"),
    "pre": ("change", "전일대비"),
    "pre_sig": ("change_sign", "전일대비기호"),
    "pred_pre_sig": ("change_sign", "전일대비기호"),
    "flu_sig": ("change_sign", "전일대비기호"),
    "pre_smbol": ("change_sign", "전일대비기호"),
    "flu_rt": ("change_rate", "등락률"),
    "trde_qty": ("volume", "거래량"),
    "acc_trde_qty": ("cum_volume", "누적거래량"),
    "acc_trde_prica": ("cum_turnover", "누적거래대금"),
    "dt_trde_qty": ("period_volume", "기간거래량"),
    "stk_cd": ("symbol", "종목코드"),
    "stk_nm": ("name", "종목명"),
    "inds_cd": ("symbol", "업종코드"),
    "inds_nm": ("name", "업종명"),
    "rank": ("rank", "순위"),
    "stex_tp": ("exchange", "거래소구분"),
    "base_pric_tm": ("base_price_time", "기준가시간"),
    "kosp200": ("kospi200", "KOSPI200"),
    "kospi200": ("kospi200", "KOSPI200"),
    "basis": ("basis", "베이시스 (BASIS)"),
    "prsm_avg_pric": ("est_avg_price", "추정평균가"),
    "avg_pric_pre": ("avg_price_change", "평균가대비"),
    "pre_rt": ("avg_price_change_rate", "평균가대비율"),
    "prid_stkpc_fiu_rt": ("period_change_rate", "기간중주가등락률"),
    # investors by type (ka10059, ka10060, ka10061, ka10064, ka10066)
    "ind_invsr": _inv("individual"),
    "frgnr_invsr": _inv("foreign"),
    "orgn": _inv("institution"),
    "fnnc_invt": _inv("financial_investment"),
    "insrnc": _inv("insurance"),
    "invrtt": _inv("investment_trust"),
    "invtrt": _inv("investment_trust"),
    "etc_fnnc": _inv("other_finance"),
    "bank": _inv("bank"),
    "penfnd_etc": _inv("pension_fund"),
    "samo_fund": _inv("private_fund"),
    "natn": _inv("government"),
    "etc_corp": _inv("other_corporation"),
    "natfor": _inv("domestic_foreign"),
    # the same categories as net buying of a sector (ka10051); 증권 is 금융투자's old name,
    # 종신금 (종금 + 신금) is counted with 기타금융, 기금 with 연기금 in KRX's current categories
    "ind_netprps": _inv("individual", " 순매수"),
    "frgnr_netprps": _inv("foreign", " 순매수"),
    "orgn_netprps": _inv("institution", " 순매수"),
    "sc_netprps": ("financial_investment", "금융투자 (증권) 순매수"),
    "insrnc_netprps": _inv("insurance", " 순매수"),
    "invtrt_netprps": _inv("investment_trust", " 순매수"),
    "jnsinkm_netprps": ("other_finance", "기타금융 (종신금) 순매수"),
    "bank_netprps": _inv("bank", " 순매수"),
    "endw_netprps": ("pension_fund", "연기금등 (기금) 순매수"),
    "samo_fund_netprps": _inv("private_fund", " 순매수"),
    "natn_netprps": _inv("government", " 순매수"),
    "etc_corp_netprps": _inv("other_corporation", " 순매수"),
    "native_trmt_frgnr_netprps": _inv("domestic_foreign", " 순매수"),
    # foreign holdings (ka10008) and institution/foreign trends (ka10009, ka10045)
    "chg_qty": ("foreign_holding_change", "외국인 보유 변동수량"),
    "poss_stkcnt": ("foreign_holding", "외국인 보유주식수"),
    "wght": ("foreign_holding_rate", "외국인 보유 비중"),
    "gain_pos_stkcnt": ("foreign_acquirable", "외국인 취득가능주식수"),
    "frgnr_limit": ("foreign_limit", "외국인한도"),
    "frgnr_limit_irds": ("foreign_limit_change", "외국인한도증감"),
    "limit_exh_rt": ("foreign_limit_exhaustion_rate", "외국인 한도소진률"),
    "frgnr_qota_rt": ("foreign_ownership_rate", "외국인지분율"),
    "orgn_dt_acc": ("institution_period_net", "기관기간누적 순매매"),
    "for_dt_acc": ("foreign_period_net", "외국인기간누적 순매매"),
    "orgn_daly_netrde": ("institution_net_quantity", "기관일별순매매수량"),
    "frgnr_daly_netrde": ("foreign_net_quantity", "외국인일별순매매수량"),
    "orgn_daly_nettrede_qty": ("institution_net_quantity", "기관일별순매매수량"),
    "for_daly_nettrede_qty": ("foreign_net_quantity", "외국인일별순매매수량"),
    "orgn_prsm_avg_pric": ("institution_est_avg_price", "기관추정평균가"),
    "for_prsm_avg_pric": ("foreign_est_avg_price", "외국인추정평균가"),
    # buying and selling of one investor type (ka10044, ka10058, ka10063, ka52301)
    "netprps_qty": ("net_buy_quantity", "순매수수량"),
    "netprps_amt": ("net_buy_amount", "순매수금액"),
    "netslmt_qty": ("net_sell_quantity", "순매도수량"),
    "netslmt_amt": ("net_sell_amount", "순매도금액"),
    "prev_netprps_amt": ("prev_net_buy_amount", "이전순매수금액"),
    "prev_pot_netprps_qty": ("prev_net_buy_quantity", "이전시점순매수수량"),
    "netprps_amt_irds": ("net_buy_amount_change", "순매수금액증감"),
    "netprps_qty_irds": ("net_buy_quantity_change", "순매수수량증감"),
    "netprps_irds": ("net_buy_quantity_change", "순매수수량증감"),
    "buy_amt": ("buy_amount", "매수금액"),
    "buy_amt_irds": ("buy_amount_change", "매수금액증감"),
    "sell_amt": ("sell_amount", "매도금액"),
    "sell_amt_irds": ("sell_amount_change", "매도금액증감"),
    "buy_qty": ("buy_quantity", "매수수량"),
    "buy_qty_irds": ("buy_quantity_change", "매수수량증감"),
    "sell_qty": ("sell_quantity", "매도수량"),
    "sell_qty_irds": ("sell_quantity_change", "매도수량증감"),
    # consecutive net buying (ka10131)
    "orgn_nettrde_amt": ("institution_net_amount", "기관순매매금액"),
    "orgn_nettrde_qty": ("institution_net_quantity", "기관순매매수량"),
    "orgn_cont_netprps_dys": ("institution_consecutive_days", "기관계연속순매수일수"),
    "orgn_cont_netprps_qty": ("institution_consecutive_net_buy_quantity", "기관계연속순매수량"),
    "orgn_cont_netprps_amt": ("institution_consecutive_net_buy_amount", "기관계연속순매수금액"),
    "frgnr_nettrde_amt": ("foreign_net_amount", "외국인순매매금액"),
    "frgnr_nettrde_qty": ("foreign_net_quantity", "외국인순매매수량"),
    "frgnr_cont_netprps_dys": ("foreign_consecutive_days", "외국인연속순매수일수"),
    "frgnr_cont_netprps_qty": ("foreign_consecutive_net_buy_quantity", "외국인연속순매수량"),
    "frgnr_cont_netprps_amt": ("foreign_consecutive_net_buy_amount", "외국인연속순매수금액"),
    "nettrde_amt": ("net_amount", "순매매금액"),
    "nettrde_qty": ("net_quantity", "순매매수량"),
    "tot_cont_netprps_dys": ("total_consecutive_days", "합계연속순매수일수"),
    "tot_cont_nettrde_qty": ("total_consecutive_net_buy_quantity", "합계연속순매수량"),
    "tot_cont_netprps_amt": ("total_consecutive_net_buy_amount", "합계연속순매수금액"),
    # foreign and institution top trading (ka90009)
    **_ranked("for", "foreign", "외국인"),
    **_ranked("orgn", "institution", "기관"),
    # program trading of a stock (ka90003, ka90004, ka90008, ka90013)
    "prm_sell_amt": ("program_sell_amount", "프로그램매도금액"),
    "prm_buy_amt": ("program_buy_amount", "프로그램매수금액"),
    "prm_netprps_amt": ("program_net_buy_amount", "프로그램순매수금액"),
    "prm_netprps_amt_irds": ("program_net_buy_amount_change", "프로그램순매수금액증감"),
    "prm_sell_qty": ("program_sell_quantity", "프로그램매도수량"),
    "prm_buy_qty": ("program_buy_quantity", "프로그램매수수량"),
    "prm_netprps_qty": ("program_net_buy_quantity", "프로그램순매수수량"),
    "prm_netprps_qty_irds": ("program_net_buy_quantity_change", "프로그램순매수수량증감"),
    "buy_cntr_qty": ("program_buy_quantity", "프로그램매수체결수량"),
    "buy_cntr_amt": ("program_buy_amount", "프로그램매수체결금액"),
    "sel_cntr_qty": ("program_sell_quantity", "프로그램매도체결수량"),
    "sel_cntr_amt": ("program_sell_amount", "프로그램매도체결금액"),
    "netprps_prica": ("program_net_buy_amount", "프로그램순매수대금"),
    "all_trde_rt": ("program_share_rate", "전체거래 중 프로그램 비율"),
    "tot_1": ("total_program_buy_quantity", "매수체결수량합계"),
    "tot_2": ("total_program_buy_amount", "매수체결금액합계"),
    "tot_3": ("total_program_sell_quantity", "매도체결수량합계"),
    "tot_4": ("total_program_sell_amount", "매도체결금액합계"),
    "tot_5": ("total_program_net_buy_amount", "순매수대금합계"),
    "tot_6": ("total_6", "합계6 (의미 미상)"),
    "remn_rcvord_sum": ("balance_order_sum", "잔고수주합"),
    # program trading of a market (ka90005, ka90007, ka90010) and its arbitrage balance (ka90006)
    **_program("dfrt_trde", "차익거래"),
    **_program("ndiffpro_trde", "비차익거래"),
    **_program("all", "전체"),
    "buy_dftr_trde_qty": ("buy_arbitrage_quantity", "매수차익거래수량"),
    "buy_dftr_trde_amt": ("buy_arbitrage_amount", "매수차익거래금액"),
    "buy_dftr_trde_irds_amt": ("buy_arbitrage_amount_change", "매수차익거래증감액"),
    "sel_dftr_trde_qty": ("sell_arbitrage_quantity", "매도차익거래수량"),
    "sel_dftr_trde_amt": ("sell_arbitrage_amount", "매도차익거래금액"),
    "sel_dftr_trde_irds_amt": ("sell_arbitrage_amount_change", "매도차익거래증감액"),
    # program trading of a sector (ka10010)
    **_consigned("dfrt_trst", "차익"),
    **_consigned("ndiffpro_trst", "비차익"),
    **_consigned("all_dfrt_trst", "전체차익"),
    # short selling (ka10014)
    "shrts_qty": ("short_volume", "공매도량"),
    "ovr_shrts_qty": ("cum_short_volume", "누적공매도량 (조회 기간)"),
    "trde_wght": ("short_ratio", "공매도 매매비중 (거래량 대비 %)"),
    "shrts_trde_prica": ("short_turnover", "공매도거래대금"),
    "shrts_avg_pric": ("short_avg_price", "공매도평균가"),
    # stock lending (ka10068, ka10069, ka20068, ka90012; ka90008/ka90013's repaid total)
    **_lending(),
    # the stock list (ka10099) and the sector list (ka10101)
    "code": ("symbol", "종목코드"),
    "name": ("name", "종목명"),
    "listCount": ("listed_shares", "상장주식수"),
    "auditInfo": ("audit_info", "감리구분"),
    "regDay": ("listing_date", "상장일"),
    "lastPrice": ("prev_close", "전일종가"),
    "state": ("state", "종목상태"),
    "marketCode": ("market_code", "시장구분코드"),
    "marketName": ("market_name", "시장명"),
    "upName": ("sector_name", "업종명"),
    "upSizeName": ("size_class", "회사크기분류"),
    "companyClassName": ("company_class", "회사분류"),
    "orderWarning": ("order_warning", "투자유의종목여부"),
    "nxtEnable": ("nxt_enabled", "NXT가능여부"),
    "group": ("sector_group", "그룹"),
}

# (TR, wire name) -> (English column, Korean label) where a TR uses a wire name for something else
TR_COLUMNS: dict[tuple[str, str], tuple[str, str]] = {
    ("ka10101", "code"): ("symbol", "업종코드"),
    ("ka10101", "name"): ("name", "업종명"),
    ("ka10051", "cur_prc"): ("price", "현재가 (지수)"),
    # gold investors: rows are investor types, not stocks
    ("ka52301", "stk_cd"): ("investor_code", "투자자 코드"),
    ("ka52301", "stk_nm"): ("investor_name", "투자자 구분명"),
    ("ka52301", "all_dftr_trst_sell_qty"): ("sell_quantity", "매도수량"),
    ("ka52301", "all_dftr_trst_sell_amt"): ("sell_amount", "매도금액"),
    ("ka52301", "all_dftr_trst_buy_qty"): ("buy_quantity", "매수수량"),
    ("ka52301", "all_dftr_trst_buy_amt"): ("buy_amount", "매수금액"),
    ("ka52301", "all_dftr_trst_netprps_qty"): ("net_buy_quantity", "순매수수량"),
    ("ka52301", "all_dftr_trst_netprps_amt"): ("net_buy_amount", "순매수금액"),
    ("ka52301", "acc_netprps_amt"): ("cum_net_buy_amount", "누적순매수금액"),
    ("ka52301", "acc_netprps_qty"): ("cum_net_buy_quantity", "누적순매수수량"),
    ("ka52301", "sell_uv"): ("sell_avg_price", "매도단가"),
    ("ka52301", "buy_uv"): ("buy_avg_price", "매수단가"),
    ("ka52301", "chg_qty"): ("quantity_change", "변동수량 (레퍼런스 설명 없음)"),
    ("ka52301", "mont_trde_qty"): ("month_volume", "월 거래량 (레퍼런스 설명 없음)"),
}

# wire request option -> the readable column that records it
OPTION_COLUMNS: dict[str, tuple[str, str]] = {
    "amt_qty_tp": ("measure", "금액/수량 구분"),
    "trde_tp": ("side", "매매구분"),
    "trde_upper_tp": ("side", "매매상위구분"),
    "netslmt_tp": ("side", "순매도수구분"),
    "unit_tp": ("quantity_unit", "요청한 수량 단위 (값은 주로 환산됨)"),
}

_AMOUNT_1_QUANTITY_2 = {"1": "amount", "2": "quantity"}
_NET_BUY_SELL = {"0": "net", "1": "buy", "2": "sell"}
_RANK_SIDE = {"1": "net_sell", "2": "net_buy"}
_UNITS = {"1000": "thousand_shares", "1": "shares"}

# (TR, wire option) -> wire code -> readable value (from each TR's request text)
OPTION_VALUES: dict[tuple[str, str], dict[str, str]] = {
    **{
        (tr, "amt_qty_tp"): _AMOUNT_1_QUANTITY_2
        for tr in (
            "ka10059", "ka10060", "ka10061", "ka10064", "ka10066",
            "ka90003", "ka90005", "ka90007", "ka90008", "ka90009", "ka90010", "ka90013",
        )
    },
    ("ka10051", "amt_qty_tp"): {"0": "amount", "1": "quantity"},
    ("ka10131", "amt_qty_tp"): {"0": "amount", "1": "quantity"},
    ("ka10063", "amt_qty_tp"): {"1": "amount_and_quantity"},
    **{(tr, "trde_tp"): _NET_BUY_SELL for tr in ("ka10059", "ka10060", "ka10061", "ka10064", "ka10066")},
    ("ka10044", "trde_tp"): _RANK_SIDE,
    ("ka10058", "trde_tp"): _RANK_SIDE,
    ("ka90003", "trde_upper_tp"): _RANK_SIDE,
    ("ka10131", "netslmt_tp"): {"2": "net_buy"},
    **{(tr, "unit_tp"): _UNITS for tr in ("ka10059", "ka10060", "ka10061")},
}  # fmt: skip


def column_name(api_id: str, wire: str) -> tuple[str, str] | None:
    """(English column, Korean label) of a normalized wire column of ``api_id``; None if unnamed."""
    return TR_COLUMNS.get((api_id, wire)) or COLUMNS.get(wire)


def option_column(api_id: str, wire: str) -> str:
    """The column a request option of ``api_id`` is stored in: readable when it has readable values."""
    if (api_id, wire) in OPTION_VALUES:
        return OPTION_COLUMNS[wire][0]
    return wire


def option_value(api_id: str, wire: str, code: str) -> str:
    """The readable value of request option ``wire`` = ``code`` ("" stays "": the option was not sent)."""
    values = OPTION_VALUES.get((api_id, wire))
    if values is None or code == "":
        return code
    try:
        return values[code]
    except KeyError:
        known = ", ".join(f"{k} ({v})" for k, v in values.items())
        raise ValueError(f"{api_id}: {wire}={code!r} has no readable meaning (known: {known})") from None


def option_wire(api_id: str, options: Mapping[str, str]) -> dict[str, str]:
    """Options as ``api_id``'s request fields: readable ones (``measure='amount'``) translated back.

    Wire fields (``amt_qty_tp='1'``) pass as they are.
    """
    out: dict[str, str] = {}
    for column, value in options.items():
        wire = next((w for (tr, w) in OPTION_VALUES if tr == api_id and OPTION_COLUMNS[w][0] == column), None)
        if wire is None:
            out[column] = value
            continue
        values = OPTION_VALUES[(api_id, wire)]
        code = next((k for k, v in values.items() if v == value), None)
        if code is None:
            raise InputError(f"{api_id}: {column}={value!r} is not one of {', '.join(values.values())}")
        out[wire] = code
    return out


def tr_columns(api_id: str) -> dict[str, tuple[str, str, str]]:
    """Every normalized column of ``api_id`` -> (English column, Korean label, wire field).

    A field's direction (``_dir``) and venue (``_venue``) columns follow its name.
    Raises on a field with no English name or two fields given one name.
    """
    out: dict[str, tuple[str, str, str]] = {}
    taken: dict[str, str] = {}
    for f in catalog().tr(api_id).row_fields():
        named = column_name(api_id, f.name)
        if named is None:
            raise KeyError(f"{api_id}.{f.name} ({f.label}) has no English column name in schemas/columns.py")
        english, label = named
        for col in f.output_schema(f.name):
            suffix = col[len(f.name) :]
            name = english + suffix
            if name in taken:
                raise ValueError(f"{api_id}: {taken[name]} and {col} are both named {name}")
            taken[name] = col
            out[col] = (name, label, f.name)
    return out
