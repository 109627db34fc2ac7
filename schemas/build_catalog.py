"""Build ``schemas/catalog.json`` from the vendor's reference.

    python -m schemas.build_catalog [--reference PATH] [--out PATH] [--check]

The reference is a PDF turned into text, damaged in known ways (see
``../shared/kiwoom-api/WIRE_NOTES.md``).  Every repair is listed below,
reviewed by hand, and cross-checked against the TR's response example: the
build fails loudly when a repaired key is not in the example, when a key is
still damaged, or when a TR's list key matches neither the table nor the
example without an entry here.

Where the table and the example spell a field differently and nothing tells
which is the wire's, the table's name is the column name and the example's
spelling is kept as an *alias*: ``normalize`` accepts either on the wire.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from schemas.kinds import Inferred, Kind, infer_kind
from schemas.reference import RawField, RawTR, parse_example_blocks, parse_reference

ROOT = Path(__file__).resolve().parent
DEFAULT_REFERENCE = ROOT.parent.parent / "shared" / "kiwoom-api" / "kiwoom_rest_api.txt"
DEFAULT_OUT = ROOT / "catalog.json"

# --- reviewed repairs -----------------------------------------------------------

# (TR, key as printed) -> key on the wire.  Line wraps inside a table cell
# split these keys; each fixed key must appear in the TR's response example.
BROKEN_KEYS: dict[tuple[str, str], str] = {
    ("ka10081", "stk_dt_pole_chart_qr y"): "stk_dt_pole_chart_qry",
    ("ka10064", "opmr_invsr_trde_cha rt"): "opmr_invsr_trde_chart",
    ("ka10042", "netprps_trde_ori_ran k"): "netprps_trde_ori_rank",
    ("ka20009", "inds_cur_prc_daly_re pt"): "inds_cur_prc_daly_rept",
    ("ka10051", "native_trmt_frgnr_n etprps"): "native_trmt_frgnr_netprps",
    ("ka10004", "buy_10th_pre_req_pr_e"): "buy_10th_pre_req_pre",
    ("ka10069", "dbrt_trde_cntrcnt_su m"): "dbrt_trde_cntrcnt_sum",
    ("kt00012", "assr_30ord_alow_am t"): "assr_30ord_alow_amt",
    ("kt00012", "assr_40ord_alow_am t"): "assr_40ord_alow_amt",
    ("kt00012", "assr_50ord_alow_am t"): "assr_50ord_alow_amt",
    ("kt00012", "assr_60ord_alow_am t"): "assr_60ord_alow_amt",
}

# Damage the example shares (its key has the same space): the repaired key is
# the column and the damaged spelling stays an accepted alias on the wire.
BROKEN_IN_BOTH: dict[tuple[str, str], str] = {
    ("ka10007", "trde strt_dt"): "trde_strt_dt",
    ("ka10025", "pric strt"): "pric_strt",
    ("ka10031", "rank strt"): "rank_strt",  # a request field; the request example has rank_strt
}

# (TR, list key in the table) -> list key in the example.  The list key decides
# where the rows are, so a disagreement is never left to an alias.
LIST_KEYS: dict[tuple[str, str], str] = {
    ("ka10011", "newstk_recvrt_mpr"): "newstk_recvrvht_mrpr",
    ("ka10025", "prps_cncr"): "prps_cnctr",
    ("ka10062", "eql_netrde_rank"): "eqq_nettrde_rank",
    ("ka10098", "ovt_sigpric_flu_rt_rank"): "ovt_sigpric_fiu_rt_rank",
    ("ka40001", "etfprft_rt_lst"): "etfpftrt_lst",
    ("ka10029", "exp_cntr_flu_rt_uppe"): "exp_cntr_fiu_rt_upper",
    ("ka10035", "for_cont_nettrde_upper"): "for_cont_nettnde_upper",
    ("ka10037", "frgn_wicket_trde_up_per"): "frgn_wicket_trde_upper",
    ("ka10065", "opmr_invsr_trde_uppper"): "opmr_invsr_trde_upper",
    ("ka20003", "all_inds_index"): "all_inds_idx",
    ("ka30002", "trde_ori_elwnettrde_upper"): "trde_ori_elwnetrde_upper",
    ("ka40006", "etftisl_trnsn"): "etftsl_trnsn",
    ("ka40007", "etftisl_cntr_array"): "efttislntr_array",
    ("ka90008", "stk_tm_prm_trde_trn_sn"): "stk_tm_prm_trde_trnsn",
    ("ka90009", "frgnr_orgn_trde_uppper"): "frgnr_orgn_trde_upper",
    ("ka90013", "stk_daly_prm_trde_trnnsn"): "stk_daly_prm_trde_trnsn",
    ("kt00008", "acnt_nxdy_setl_frcs_p_rps_array"): "acct_nxdy_setl_frcs_prps_array",
    ("kt00009", "acnt_ord_cntr_prst_a"): "acct_ord_cntr_prst_array",
}

# (TR, field in the table) -> spellings seen in the example.  Reviewed: the
# same field by label and position, a one- or two-letter slip on one side.
ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("ka01690", "tot_evltn_amt"): ("tot_evlt_amt",),
    ("ka01690", "tot_evltn_prft"): ("tot_evltv_prft",),
    ("ka10005", "for_posst"): ("for_poss",),
    ("ka10009", "frgnr_daly_netrde"): ("frgnr_daly_nettnde",),
    ("ka10009", "orgn_daly_netrde"): ("orgn_daly_nettnde",),
    ("ka10038", "mcmc_nm"): ("mmcm_nm",),
    ("ka10039", "prid_stkpc_fiu"): ("prid_stkpc_flu",),
    ("ka10075", "mang_empno"): ("mang_emplno",),
    ("ka10087", "ovt_sigpric_fiu_rt"): ("ovt_sigpric_flu_rt",),
    ("ka10095", "innr_vltl"): ("innr_vlth",),
    ("ka10095", "ptry"): ("prty",),
    ("ka10131", "nettrde_qty"): ("netrde_qty",),
    ("ka10131", "nettrde_amt"): ("netrde_amt",),
    ("ka10131", "tot_cont_nettrde_qty"): ("tot_cont_netrde_qty",),
    ("ka30003", "flu_rt"): ("flr_rt",),
    ("ka30005", "ppty"): ("prty",),
    ("ka40001", "cntr_prft_rt"): ("cntr_pftrt",),
    ("ka40001", "etfprft_rt"): ("etfpftrt",),
    ("ka40006", "pred_pre"): ("pred_pric",),
    ("ka40007", "etfobjt_idex_cd"): ("etfobjt_idx_cd",),
    ("ka40007", "etfobjt_idex_nm"): ("etfobjt_idx_nm",),
    ("ka40007", "objt_idex_pre_rt"): ("objt_idx_pre_rt",),
    ("ka40007", "pred_pre"): ("pred_prc",),
    ("ka50010", "cntr_pric"): ("cntr_princ",),
    ("ka50012", "pred_pre"): ("pred_prc",),
    ("kt00002", "prsm_dpst_aset_amt_bnrc_skip"): ("prsm_dpst_aset_amt_bncr_skip",),
    ("kt00010", "profa_20ord_alowq"): ("profa_20ord_alowa",),
    ("kt00015", "vlbl_nowrm"): ("lbl_nowrm",),
    ("kt00016", "evlty_prft"): ("evltv_prft",),
    ("kt00016", "ls_evlta_fr"): ("ls_evlt_fr",),
    ("kt00016", "ls_evlta_to"): ("ls_evlt_to",),
    ("kt00016", "rght_evlta_fr"): ("rght_evlt_fr",),
    ("kt00016", "rght_evlta_to"): ("rght_evlt_to",),
    ("kt00016", "termin_tot_inq"): ("termin_tot_inc",),
    ("kt00017", "crd_loan_evlta_d2"): ("crd_loan_evlt_a_d2",),
    ("kt00017", "crd_ls_evlta_d2"): ("crd_ls_evlt_a_d2",),
    ("kt00001", "bncr_buy_alowa"): ("bnrc_buy_alowa",),
    ("kt00001", "bncr_profa_ch"): ("bnrc_profa_ch",),
    ("kt00001", "bncr_remn_repl_evlta"): ("bnrc_remn_repl_evlta",),
    ("kt00001", "nqry_loan"): ("nrpy_loan",),
    ("kt00001", "nxdy_bncr_sell_exct"): ("nxndy_bnrc_sell_exct",),
    ("kt00001", "shrts_prica"): ("shirts_prica",),
    ("kt00001", "repl_amt"): ("rep1_amnt",),
    ("kt00005", "dpst_grnt_use_amt_a_mt"): ("dpst_grnt_use_amt_amnt",),
    ("kt50020", "net_entr"): ("het_entr",),
}

# The account TRs' examples spell every ``amt`` as ``amnt``.  One reviewed rule
# instead of forty entries; each generated alias is still checked on the example.
AMNT_SPELLING_TRS = ("kt00001", "kt00005", "kt00009")

# Examples broken in the reference itself: normalizing them is not expected.
# Unreadable ones must fail to parse (the entry goes stale otherwise) ...
UNREADABLE_EXAMPLES: dict[str, str] = {
    "ka10173": "condition-search WebSocket frame without its opening brace",
    "ka30012": "page break inside a key and unquoted numbers",
    "kt50031": "page break inside a list item, keys lost",
}
# ... wrong ones parse but show another body.
WRONG_EXAMPLES: dict[str, str] = {
    "ka10171": "condition-search WebSocket frame, rows are positional arrays",
    "ka10172": "condition-search WebSocket frame, not a REST body",
    "ka20005": "the example is ka20006's daily body (inds_dt_pole_qry), not minute bars",
    "ka40004": "the second page opens with a stray quote ('{\"') and drops the list's closing bracket",
    "ka90003": "the example is ka90005's body (prm_trde_trnsn), not the top-50 ranking",
}
BROKEN_EXAMPLES = {**UNREADABLE_EXAMPLES, **WRONG_EXAMPLES}

REALTIME_BROKEN_EXAMPLES: dict[str, str] = {
    "0s": "'item' is followed by a lone double quote; the next page repeats the closing brackets",
    "0w": "the REAL frame's opening lines are replaced by a REG request's 'data' block",
}

# Condition search runs over the WebSocket with its own frames; its tables
# use Korean placeholders as element names.  Catalogued as printed.
CONDITION_SEARCH = ("ka10171", "ka10172", "ka10173", "ka10174")

# Investor-by-type columns, as each TR lists them.
_INVESTOR_COLUMNS: dict[str, tuple[str, ...]] = {
    "ka10059": (
        "ind_invsr", "frgnr_invsr", "orgn", "fnnc_invt", "insrnc", "invrtt", "etc_fnnc",
        "bank", "penfnd_etc", "samo_fund", "natn", "etc_corp", "natfor",
    ),
    "ka10060": (
        "ind_invsr", "frgnr_invsr", "orgn", "fnnc_invt", "insrnc", "invrtt", "etc_fnnc",
        "bank", "penfnd_etc", "samo_fund", "natn", "etc_corp", "natfor",
    ),
    "ka10061": (
        "ind_invsr", "frgnr_invsr", "orgn", "fnnc_invt", "insrnc", "invtrt", "etc_fnnc",
        "bank", "penfnd_etc", "samo_fund", "natn", "etc_corp", "natfor",
    ),
    "ka10064": ("frgnr_invsr", "orgn", "insrnc", "invtrt", "bank", "penfnd_etc", "natn", "etc_corp"),
    "ka10066": (
        "ind_invsr", "frgnr_invsr", "orgn", "fnnc_invt", "insrnc", "invtrt", "etc_fnnc",
        "bank", "penfnd_etc", "samo_fund", "natn", "etc_corp",
    ),
}  # fmt: skip

# Kinds the name/label rules get wrong, reviewed.  Key: (TR or "*", field).
KIND_OVERRIDES: dict[tuple[str, str], Kind] = {
    ("*", "pred_pre_sig"): Kind.ENUM,
    ("*", "flu_sig"): Kind.ENUM,
    ("*", "stex_tp"): Kind.ENUM,
    ("*", "trde_tern_rt"): Kind.RATE,
    ("*", "listCount"): Kind.QTY,
    ("*", "lastPrice"): Kind.PRICE,
    ("*", "regDay"): Kind.DATE,
    ("*", "marketCode"): Kind.CODE,
    ("*", "marketName"): Kind.TEXT,
    ("*", "upName"): Kind.TEXT,
    ("*", "upSizeName"): Kind.TEXT,
    ("*", "companyClassName"): Kind.TEXT,
    ("*", "orderWarning"): Kind.ENUM,
    ("*", "nxtEnable"): Kind.ENUM,
    ("*", "auditInfo"): Kind.TEXT,
    ("*", "state"): Kind.TEXT,
    ("0B", "15"): Kind.SIDE_QTY,
    # ka20005's example is a daily body, so nothing shows its time format;
    # the sector minute chart uses the stock minute chart's (ka10080) timestamps
    ("ka20005", "cntr_tm"): Kind.TIMESTAMP,
    # investor-by-type columns are net figures with an arithmetic sign
    # ("-639", "--28837"); the rules left them text and took 국가 (natn) for a price
    **{(tr, name): Kind.SIGNED for tr, names in _INVESTOR_COLUMNS.items() for name in names},
    # program trading: arbitrage / non-arbitrage sell, buy, today and cumulative
    # ("+10734", "+327778"); ka90007's KOSPI200 is the index level ("+341.13").
    # kosp200 of ka90005/ka90010 stays text: its examples disagree on scale
    # ("+47839" in one, "0.00" in the other).
    **{
        (tr, name): Kind.SIGNED
        for tr in ("ka90005", "ka90010")
        for name in (
            "dfrt_trde_sel",
            "dfrt_trde_buy",
            "ndiffpro_trde_sel",
            "ndiffpro_trde_buy",
            "all_sel",
            "all_buy",
        )
    },
    **{
        ("ka90007", name): Kind.SIGNED
        for name in (
            "dfrt_trde_tdy",
            "dfrt_trde_acc",
            "ndiffpro_trde_tdy",
            "ndiffpro_trde_acc",
            "all_tdy",
            "all_acc",
        )
    },
    ("ka90007", "kospi200"): Kind.RATE,
    # program trading by stock: repaid lending and balance totals, share counts
    **{
        (tr, name): Kind.QTY
        for tr in ("ka90008", "ka90013")
        for name in ("dbtr_trde_rpy_sum", "remn_rcvord_sum")
    },
    # stock lending: new, repaid and outstanding shares ("62932490", "2355269107")
    **{
        (tr, name): Kind.QTY
        for tr in ("ka10068", "ka10069", "ka20068", "ka90012")
        for name in ("dbrt_trde_cntrcnt", "dbrt_trde_rpy", "rmnd")
    },
    **{("ka10069", name): Kind.QTY for name in ("dbrt_trde_cntrcnt_sum", "dbrt_trde_rpy_sum", "rmnd_sum")},
    # cumulative net buying over the period ("158", "28315"); the foreign limit in shares
    ("ka10009", "orgn_dt_acc"): Kind.SIGNED,
    ("ka10045", "orgn_dt_acc"): Kind.SIGNED,
    ("ka10045", "for_dt_acc"): Kind.SIGNED,
    ("ka10008", "frgnr_limit"): Kind.QTY,
}

# Turnover units the reference leaves unsaid, checked against its examples
# (volume x price of the example rows): chart TRs and the 0B trade stream
# report turnover in millions of won.
_MILLION = "KRW_1e6"
_THOUSAND = "KRW_1e3"
UNIT_OVERRIDES: dict[tuple[str, str], str] = {
    **{
        (tr, "trde_prica"): _MILLION
        for tr in (
            "ka10081",
            "ka10082",
            "ka10083",
            "ka10094",
            "ka20006",
            "ka20007",
            "ka20008",
            "ka20019",
        )
    },
    **{(tr, "acc_trde_prica"): _MILLION for tr in ("ka50081", "ka50082", "ka50083", "ka50092")},
    ("0B", "14"): _MILLION,
    # short sales' turnover is in thousands of won: in every example row
    # shrts_qty x shrts_avg_pric / shrts_trde_prica is 1000 (607315 x 57404 = 34,862,310,260
    # won, sent as 34862170; the average price is rounded)
    ("ka10014", "shrts_trde_prica"): _THOUSAND,
}

# Realtime FIDs that get canonical English column names (0B trades, 0D book).
CANONICAL_REALTIME: dict[str, dict[str, str]] = {
    "0B": {
        "20": "time",
        "10": "price",
        "11": "change",
        "12": "change_rate",
        "27": "best_ask",
        "28": "best_bid",
        "15": "size",
        "13": "cum_volume",
        "14": "cum_turnover",
        "16": "open",
        "17": "high",
        "18": "low",
        "25": "change_sign",
        "26": "volume_vs_prev_day",
        "29": "turnover_change",
        "30": "volume_vs_prev_day_rate",
        "31": "turnover_rate",
        "32": "trade_cost",
        "228": "strength",
        "311": "market_cap",
        "290": "session",
        "691": "ko_access",
        "567": "upper_limit_time",
        "568": "lower_limit_time",
        "851": "volume_vs_prev_same_time_rate",
        "1890": "open_time",
        "1891": "high_time",
        "1892": "low_time",
        "1030": "sell_volume",
        "1031": "buy_volume",
        "1032": "buy_ratio",
        "1071": "sell_count",
        "1072": "buy_count",
        "1313": "instant_turnover",
        "1315": "sell_size_single",
        "1316": "buy_size_single",
        "1314": "net_buy_volume",
        "1497": "cfd_margin",
        "1498": "maintenance_margin",
        "620": "vwap",
        "732": "cfd_cost",
        "852": "short_cost",
        "9081": "exchange",
    },
    "0D": {
        **{"21": "time"},
        **{str(40 + i): f"ask_px_{i}" for i in range(1, 11)},
        **{str(50 + i): f"bid_px_{i}" for i in range(1, 11)},
        **{str(60 + i): f"ask_qty_{i}" for i in range(1, 11)},
        **{str(70 + i): f"bid_qty_{i}" for i in range(1, 11)},
        **{str(80 + i): f"ask_qty_chg_{i}" for i in range(1, 11)},
        **{str(90 + i): f"bid_qty_chg_{i}" for i in range(1, 11)},
        "121": "ask_qty_total",
        "122": "ask_qty_total_chg",
        "125": "bid_qty_total",
        "126": "bid_qty_total_chg",
        "23": "exp_price",
        "24": "exp_qty",
        "128": "net_bid_qty",
        "129": "bid_ratio",
        "138": "net_ask_qty",
        "139": "ask_ratio",
        "200": "exp_change",
        "201": "exp_change_rate",
        "238": "exp_change_sign",
        "291": "exp_price_2",
        "292": "exp_volume",
        "293": "exp_change_sign_2",
        "294": "exp_change_2",
        "295": "exp_change_rate_2",
        "13": "cum_volume",
        "299": "exp_volume_vs_prev_rate",
        "215": "session",
        "216": "investor_ticker",
    },
}

ORDER_PREFIXES = ("kt1", "kt5000")  # kt10000-kt10009 stock orders, kt50000-kt50003 gold
_ORDER_SUBCATEGORIES = ("주문", "신용주문")
_VALID_KEY = re.compile(r"^[A-Za-z0-9_]+$")
_ENUM_ITEM = re.compile(r"([0-9A-Za-z]+)\s*[:.]\s*([^,:]+?)(?=(?:,|\s+[0-9A-Za-z]+\s*[:.])|$)")


class CatalogBuildError(RuntimeError):
    pass


def _allowed_values(description: str) -> dict[str, str] | None:
    """Enumerations such as ``1:KRX, 2:NXT 3.통합`` -> {"1": "KRX", ...}."""
    if ":" not in description:
        return None
    items = _ENUM_ITEM.findall(description)
    if len(items) < 2:
        return None
    out = {code: text.strip().rstrip(",").strip() for code, text in items}
    return out or None


def _realtime_code(api_id: str) -> str:
    """Realtime codes are printed with the letter O for the digit 0."""
    return "0" + api_id[1:] if api_id[:1] == "O" else api_id


def _example_keys(value: Any) -> set[str]:
    keys: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys.update(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return keys


def _fits(kind: Kind, value: Any) -> bool:
    """Build-time check of one example value against a kind (not the hot path)."""
    if not isinstance(value, str):
        return kind in (Kind.TEXT, Kind.ENUM, Kind.CODE)
    v = value
    if v == "":
        return True
    if kind in (Kind.PRICE, Kind.SIGNED, Kind.AMOUNT, Kind.SIDE_QTY, Kind.INDEX):
        return re.fullmatch(r"[+-]{0,2}\d+", v) is not None
    if kind == Kind.QTY:
        return re.fullmatch(r"\+?\d+", v) is not None
    if kind == Kind.RATE:
        return re.fullmatch(r"[+-]{0,2}(\d+(\.\d*)?|\.\d+)", v) is not None
    if kind == Kind.DATE:
        return re.fullmatch(r"(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])", v) is not None
    if kind == Kind.TIME:
        return re.fullmatch(r"([01]\d|2[0-3])[0-5]\d[0-5]\d", v) is not None
    if kind == Kind.TIMESTAMP:
        return re.fullmatch(r"(19|20)\d{6}([01]\d|2[0-3])[0-5]\d[0-5]\d", v) is not None
    return True


# When an example contradicts the inferred kind, the first of these that fits
# every example value wins and the field records why.
_FALLBACKS: dict[Kind, tuple[Kind, ...]] = {
    Kind.DATE: (Kind.TIMESTAMP, Kind.TIME, Kind.TEXT),
    Kind.TIME: (Kind.TIMESTAMP, Kind.DATE, Kind.TEXT),
    Kind.TIMESTAMP: (Kind.DATE, Kind.TIME, Kind.TEXT),
    Kind.QTY: (Kind.SIGNED, Kind.RATE, Kind.TEXT),
    Kind.PRICE: (Kind.RATE, Kind.TEXT),
    Kind.SIGNED: (Kind.RATE, Kind.TEXT),
    Kind.AMOUNT: (Kind.RATE, Kind.TEXT),
    Kind.INDEX: (Kind.RATE, Kind.TEXT),
    Kind.SIDE_QTY: (Kind.RATE, Kind.TEXT),
    Kind.RATE: (Kind.TEXT,),
}


def _field_entry(
    api_id: str, raw: RawField, name: str, example_values: list[Any], aliases: tuple[str, ...]
) -> dict[str, Any]:
    override = KIND_OVERRIDES.get((api_id, name)) or KIND_OVERRIDES.get(("*", name))
    inferred = (
        Inferred(override, reason="override") if override else infer_kind(name, raw.label, raw.description)
    )
    kind, reason, decimals = inferred.kind, inferred.reason, inferred.decimals
    if not all(_fits(kind, v) for v in example_values):
        for candidate in _FALLBACKS.get(kind, ()):
            if all(_fits(candidate, v) for v in example_values):
                bad = next(v for v in example_values if not _fits(kind, v))
                reason = f"example {bad!r} is not a {kind.value}; was: {reason}"
                kind, decimals = candidate, 0
                break
    entry: dict[str, Any] = {
        "name": name,
        "label": raw.label,
        "description": raw.description,
        "kind": kind.value,
        "kind_reason": reason,
    }
    if decimals:
        entry["decimals"] = decimals
    unit = UNIT_OVERRIDES.get((api_id, name)) or inferred.unit
    if kind in (Kind.AMOUNT, Kind.SIGNED, Kind.RATE) and unit:
        entry["unit"] = unit
    if kind == Kind.CODE and (name == "stk_cd" or name.endswith("_stk_cd")):
        entry["venue"] = True
    if aliases:
        entry["aliases"] = list(aliases)
    if raw.name != name:
        entry["printed_as"] = raw.name
    return entry


def _collect_values(example: Any, key_names: set[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    stack = [example]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k in key_names and not isinstance(v, dict | list):
                    out.setdefault(k, []).append(v)
                else:
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _build_tr(raw: RawTR, toc: dict[str, list[str]], log: list[str]) -> dict[str, Any]:
    api_id = raw.api_id
    name, category, subcategory = toc.get(api_id, [raw.name, "", ""])
    example: Any = None
    example_repairs: list[str] = []
    example_error = None
    if raw.response_example.blocks:
        try:
            example, example_repairs = parse_example_blocks(raw.response_example.blocks)
        except ValueError as exc:
            example_error = str(exc)
    broken_reason = BROKEN_EXAMPLES.get(api_id)
    if example_error and not broken_reason:
        raise CatalogBuildError(
            f"{api_id}: response example unreadable ({example_error}) and not listed as broken"
        )
    if api_id in UNREADABLE_EXAMPLES and example_error is None and example is not None:
        raise CatalogBuildError(f"{api_id}: listed as broken but its example parses; remove the entry")
    ex_keys = _example_keys(example) if example is not None and not broken_reason else set()

    request_example = None
    request_example_error = None
    if raw.request_example.blocks:
        try:
            request_example, _ = parse_example_blocks(raw.request_example.blocks)
        except ValueError as exc:  # kept in the catalog: only responses are normalized
            request_example_error = str(exc)

    def fix(printed: str, is_list: bool, is_request: bool = False) -> str:
        if (api_id, printed) in BROKEN_IN_BOTH:
            fixed = BROKEN_IN_BOTH[(api_id, printed)]
            if ex_keys and printed not in ex_keys and fixed not in ex_keys and not is_request:
                raise CatalogBuildError(f"{api_id}: {printed!r} is in neither spelling in the example")
            return fixed
        fixed = BROKEN_KEYS.get((api_id, printed), printed)
        if is_list:
            fixed = LIST_KEYS.get((api_id, fixed), fixed)
        if fixed != printed and ex_keys and fixed not in ex_keys:
            raise CatalogBuildError(
                f"{api_id}: repaired key {fixed!r} (printed {printed!r}) is not in the example"
            )
        if fixed != printed and not ex_keys and not broken_reason:
            raise CatalogBuildError(f"{api_id}: repair of {printed!r} cannot be checked: no example")
        if not _VALID_KEY.match(fixed) and api_id not in CONDITION_SEARCH:
            raise CatalogBuildError(f"{api_id}: damaged key {printed!r} has no reviewed repair")
        return fixed

    request = []
    for f in raw.request:
        if f.name in ("api-id", "authorization", "cont-yn", "next-key"):
            continue
        entry: dict[str, Any] = {
            "name": fix(f.name, False, is_request=True),
            "label": f.label,
            "required": f.required,
            "length": int(f.length) if f.length.isdigit() else None,
            "description": f.description,
        }
        allowed = None if f.name.endswith("cd") else _allowed_values(f.description)
        if allowed:
            entry["allowed"] = allowed
        if f.depth:
            entry["depth"] = f.depth
        request.append(entry)

    # response: scalars, lists and their items
    table_names = []
    scalars_raw: list[tuple[RawField, str]] = []
    lists: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for f in raw.response:
        if f.name in ("api-id", "cont-yn", "next-key"):
            continue
        is_list = f.type.upper() == "LIST"
        key = fix(f.name, is_list)
        table_names.append(key)
        if is_list and f.depth == 0:
            current = {"key": key, "label": f.label, "items": []}
            lists.append(current)
        elif f.depth == 0:
            current = None
            scalars_raw.append((f, key))
        elif current is not None:
            current["items"].append((f, key, is_list))

    alias_map: dict[str, tuple[str, ...]] = {}
    for (tr_id, printed), fixed in BROKEN_IN_BOTH.items():
        if tr_id == api_id and printed in ex_keys:
            alias_map[fixed] = (printed,)
    for (tr_id, field), spellings in ALIASES.items():
        if tr_id == api_id:
            alias_map[field] = spellings
    if api_id in AMNT_SPELLING_TRS:
        for key in table_names:
            if "amt" in key and key not in alias_map:
                alt = re.sub(r"amt(?=_|$)", "amnt", key)
                if alt != key and alt in ex_keys:
                    alias_map[key] = (alt,)
    for field, spellings in alias_map.items():
        if field not in table_names:
            raise CatalogBuildError(f"{api_id}: alias entry for {field!r}, which the table does not list")
        for s in spellings:
            if ex_keys and s not in ex_keys:
                raise CatalogBuildError(f"{api_id}: alias {s!r} of {field!r} is not in the example")

    every_alias = {a for spellings in alias_map.values() for a in spellings}
    all_names = set(table_names) | every_alias | ex_keys
    values = _collect_values(example, all_names) if example is not None and not broken_reason else {}

    def entry_for(f: RawField, key: str) -> dict[str, Any]:
        aliases = alias_map.get(key, ())
        vals = list(values.get(key, []))
        for a in aliases:
            vals.extend(values.get(a, []))
        return _field_entry(api_id, f, key, vals, aliases)

    scalars = [entry_for(f, key) for f, key in scalars_raw if key not in ("return_code", "return_msg")]
    out_lists = []
    for lst in lists:
        items = [entry_for(f, key) for f, key, is_list in lst["items"] if not is_list]
        nested = [key for f, key, is_list in lst["items"] if is_list]
        out_list: dict[str, Any] = {"key": lst["key"], "label": lst["label"], "items": items}
        if nested:
            out_list["nested_lists"] = nested
        out_lists.append(out_list)

    # list keys must agree with the example
    for lst in out_lists:
        if ex_keys and lst["key"] not in ex_keys and not broken_reason:
            raise CatalogBuildError(
                f"{api_id}: list key {lst['key']!r} is in neither the example nor LIST_KEYS"
            )

    # keys only the example shows: real wire fields the table forgot
    known = set(table_names) | every_alias | {"return_code", "return_msg"}
    extra = sorted(ex_keys - known)
    if extra and example is not None:
        main = out_lists[0] if out_lists else None
        first_item = None
        if main is not None and isinstance(example, dict):
            rows = example.get(main["key"])
            if isinstance(rows, list) and rows and isinstance(rows[0], dict):
                first_item = set(rows[0])
        for key in extra:
            raw_field = RawField(key, "", "String", False, "", "", 0)
            entry = _field_entry(api_id, raw_field, key, values.get(key, []), ())
            entry["source"] = "example"
            if first_item is not None and key in first_item and main is not None:
                main["items"].append(entry)
            elif isinstance(example, dict) and key in example:
                scalars.append(entry)
            else:
                continue
            log.append(f"{api_id}: field {key!r} only in the example, added")

    is_order = subcategory in _ORDER_SUBCATEGORIES or api_id.startswith(ORDER_PREFIXES)
    tr: dict[str, Any] = {
        "id": api_id,
        "name": name or raw.name,
        "category": category,
        "subcategory": subcategory,
        "menu": raw.menu,
        "method": raw.method,
        "path": raw.url,
        "transport": "websocket" if "websocket" in raw.url else "rest",
        "paper_supported": not raw.paper_unsupported,
        "paper_note": "KRX only" if "KRX" in raw.paper_domain else "",
        "is_order": is_order,
        "request": request,
        "response": scalars,
        "lists": out_lists,
        "main_list": out_lists[0]["key"] if out_lists else None,
        "request_example": request_example,
        "response_example": example if not broken_reason else None,
        "example_repairs": example_repairs,
        "reference_line": raw.first_line,
    }
    if broken_reason:
        tr["example_broken"] = broken_reason
    if request_example_error:
        tr["request_example_error"] = request_example_error
    return tr


def _drop_registration_ack(blocks: list[str]) -> list[str]:
    """A realtime example prints the REG ack, then the REAL frame: keep the frame."""
    out = []
    for block in blocks:
        m = re.search(r"\{[^{}]*['\"]trnm['\"]\s*:\s*['\"]REG['\"][^{}]*\}", block)
        if m:
            block = block[: m.start()] + block[m.end() :]
        if block.strip(" \n\t#요청"):
            out.append(block)
    return out


def _build_realtime(raw: RawTR, log: list[str]) -> dict[str, Any]:
    code = _realtime_code(raw.api_id)
    blocks = _drop_registration_ack(raw.response_example.blocks)
    example: Any = None
    repairs: list[str] = []
    try:
        example, repairs = parse_example_blocks(blocks)
    except ValueError as exc:
        if code not in REALTIME_BROKEN_EXAMPLES:
            raise CatalogBuildError(f"realtime {code}: example unreadable: {exc}") from exc
    if isinstance(example, list):
        example = next((d for d in example if isinstance(d, dict) and d.get("trnm") == "REAL"), None)
    is_frame = isinstance(example, dict) and example.get("trnm") == "REAL"
    if is_frame and code in REALTIME_BROKEN_EXAMPLES:
        raise CatalogBuildError(f"realtime {code}: listed as broken but its example is a REAL frame")
    if not is_frame:
        if code not in REALTIME_BROKEN_EXAMPLES:
            raise CatalogBuildError(f"realtime {code}: example is not a REAL frame")
        example = None
    if example is not None and isinstance(example.get("data"), list):
        for entry in example["data"]:
            if isinstance(entry, dict) and isinstance(entry.get("type"), str):
                if _realtime_code(entry["type"]) != code:
                    repairs.append(f"type printed as {entry['type']!r}, set to {code!r}")
                elif entry["type"] != code:
                    repairs.append(f"type printed as {entry['type']!r} (letter O)")
                entry["type"] = code
    value_fids = [f for f in raw.response if f.depth == 2]
    ex_values: dict[str, list[Any]] = {}
    if example is not None:
        for entry in example.get("data", []):
            for fid, v in (entry.get("values") or {}).items():
                ex_values.setdefault(fid, []).append(v)
    canonical = CANONICAL_REALTIME.get(code, {})
    fields = []
    for f in value_fids:
        entry = _field_entry(code, f, f.name, ex_values.get(f.name, []), ())
        entry["fid"] = entry.pop("name")
        if f.name in canonical:
            entry["column"] = canonical[f.name]
        fields.append(entry)
    unknown = sorted(set(ex_values) - {f.name for f in value_fids})
    if unknown:
        log.append(f"realtime {code}: FIDs only in the example: {unknown}")
    missing = sorted(set(canonical) - {f.name for f in value_fids})
    if missing:
        raise CatalogBuildError(f"realtime {code}: canonical FIDs not in the table: {missing}")
    return {
        "code": code,
        "printed_as": raw.api_id if raw.api_id != code else None,
        "name": raw.name,
        "fields": fields,
        "example": example,
        "example_repairs": repairs,
        **({"example_broken": REALTIME_BROKEN_EXAMPLES[code]} if code in REALTIME_BROKEN_EXAMPLES else {}),
        "reference_line": raw.first_line,
    }


def build(reference: Path) -> tuple[dict[str, Any], list[str]]:
    text = reference.read_text(encoding="utf-8")
    sections, toc, errors = parse_reference(text)
    toc = {_realtime_code(k): v for k, v in toc.items()}
    log: list[str] = []
    trs: dict[str, Any] = {}
    realtime: dict[str, Any] = {}
    for raw in sections:
        code = _realtime_code(raw.api_id)
        if code in trs or code in realtime:
            raise CatalogBuildError(f"{code}: printed twice in the reference")
        if raw.url.endswith("/websocket") and toc.get(code, ["", "", ""])[2] == "실시간시세":
            realtime[code] = _build_realtime(raw, log)
        else:
            trs[raw.api_id] = _build_tr(raw, toc, log)
    missing = sorted(set(toc) - set(trs) - set(realtime) - {"공통"})
    if missing:
        raise CatalogBuildError(f"in the table of contents but not parsed: {missing}")
    for (tr, _), _fixed in {**BROKEN_KEYS, **LIST_KEYS}.items():
        if tr not in trs:
            raise CatalogBuildError(f"repair for unknown TR {tr}")
    for tr_id, name in (*KIND_OVERRIDES, *UNIT_OVERRIDES):
        if tr_id == "*":
            continue
        entry = trs.get(tr_id) or realtime.get(tr_id)
        if entry is None:
            raise CatalogBuildError(f"override for unknown TR {tr_id}")
        names = {f.get("name") or f.get("fid") for f in _all_fields(entry)}
        if name not in names:
            raise CatalogBuildError(f"override for {tr_id}.{name}, which the TR does not have")
    catalog = {
        "source": reference.name,
        "source_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "trs": trs,
        "realtime": realtime,
        "errors": errors,
    }
    return catalog, log


def _all_fields(entry: dict[str, Any]) -> list[dict[str, Any]]:
    if "fields" in entry:
        return list(entry["fields"])
    return [*entry["response"], *(f for lst in entry["lists"] for f in lst["items"])]


def dumps(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, ensure_ascii=False, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail if the committed catalog differs")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        catalog, log = build(args.reference)
    except CatalogBuildError as exc:
        print(f"catalog build failed: {exc}", file=sys.stderr)
        return 1
    text = dumps(catalog)
    if args.verbose:
        print("\n".join(log))
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("catalog is up to date" if same else f"{args.out} is stale: rebuild it")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    n_fields = sum(
        len(t["response"]) + sum(len(lst["items"]) for lst in t["lists"]) for t in catalog["trs"].values()
    )
    trs, realtime = len(catalog["trs"]), len(catalog["realtime"])
    print(f"wrote {args.out}: {trs} TRs, {realtime} realtime types, {n_fields} fields")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
