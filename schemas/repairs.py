"""Reviewed repairs of the reference's text-extraction damage (see ``WIRE_NOTES.md``).

Every entry is checked by ``schemas.build_catalog`` against the TR's examples:
a repaired key must appear in the example, an alias must be a spelling the
example shows, and an entry for a TR or key the reference lacks fails the build.
"""

from __future__ import annotations

__all__ = [
    "ALIASES",
    "ALLOWED_VALUES",
    "AMNT_SPELLING_TRS",
    "BROKEN_EXAMPLES",
    "BROKEN_IN_BOTH",
    "BROKEN_KEYS",
    "CONDITION_SEARCH",
    "DAMAGED_EXAMPLE_VALUES",
    "LIST_KEYS",
    "NOT_A_LIST",
    "PATHS",
    "REALTIME_BROKEN_EXAMPLES",
    "REQUEST_KEYS",
    "UNREADABLE_EXAMPLES",
    "WRONG_EXAMPLES",
    "WRONG_LABELS",
]

# (TR, field) -> the label the reference should print.  ka10060/ka10061 label the
# investment-trust column 특신, a word KRX does not use: the same column is 투신 in
# ka10059, and 투신 is one of ka10058/ka10063's request values for the investor kind.
WRONG_LABELS: dict[tuple[str, str], str] = {
    ("ka10060", "invrtt"): "투신",
    ("ka10061", "invtrt"): "투신",
}

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
    # spellings only a later row or a later example block shows
    ("ka10131", "prid_stkpc_fiu_rt"): ("prid_stkpc_flu_rt",),
    ("ka10131", "orgn_nettrde_amt"): ("orgn_netrde_amt",),
    ("ka10131", "orgn_nettrde_qty"): ("orgn_netrde_qty",),
    ("ka10131", "frgnr_nettrde_amt"): ("frgnr_netrde_amt",),
    ("ka10131", "frgnr_nettrde_qty"): ("frgnr_netrde_qty",),
    ("ka10059", "invrtt"): ("invrtr",),
    **{
        ("ka52301", f"all_dftr_trst_{what}"): (f"all_dfrt_trst_{what}",)
        for what in ("sell_qty", "sell_amt", "buy_qty", "buy_amt", "netprps_amt")
    },
    ("ka90005", "kosp200"): ("kospi200",),
    ("ka90010", "kosp200"): ("kospi200",),
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

# (TR, request field as printed) -> the key the server takes, as the TR's own
# request example shows it (the table's spelling is refused by the server).
REQUEST_KEYS: dict[tuple[str, str], str] = {
    ("ka10025", "prps_cncr_rt"): "prps_cnctr_rt",
    ("ka30001", "basis_aset_cd"): "bsis_aset_cd",
    ("ka30003", "basis_aset_cd"): "bsis_aset_cd",
    ("ka30004", "basis_aset_cd"): "bsis_aset_cd",
    ("ka30005", "basis_aset_cd"): "bsis_aset_cd",
    ("ka30005", "rht_tp"): "rght_tp",
    ("ka40004", "trace_idx"): "trace_idex",
}

# (TR, request field) -> allowed values, where the reference copied another TR's text:
# the sector and gold minute charts take minutes, not the tick chart's tick counts.
_MINUTES = {m: f"{m}분" for m in ("1", "3", "5", "10", "15", "30", "45", "60")}
ALLOWED_VALUES: dict[tuple[str, str], dict[str, str]] = {
    ("ka20005", "tic_scope"): _MINUTES,
    ("ka50092", "tic_scope"): _MINUTES,
}

# TR -> (path the server answers on, the path the reference prints).  The stock
# lending TRs live at /api/dostk/slb per the vendor's machine-readable spec and two
# public clients; the client falls back to the printed path once on 1504.
_LENDING = ("/api/dostk/slb", "/api/dostk/slbt")
PATHS: dict[str, tuple[str, str]] = {tr: _LENDING for tr in ("ka10068", "ka10069", "ka20068", "ka90012")}

# (TR, element) printed with type LIST that is a plain field of each row: the
# example shows ``"marketCode": "0"`` in every row of ka10101's list.
NOT_A_LIST: dict[tuple[str, str], str] = {("ka10101", "marketCode"): "String"}

# Examples whose values are shifted against their keys (a value of one field
# printed under another).  Their kinds come from the rules and overrides, not
# from these values; values that do not fit are blanked in the stored example,
# each blanking recorded in the TR's example_repairs.
DAMAGED_EXAMPLE_VALUES: dict[str, str] = {
    "ka10001": "values from high_pric on are shifted: upl_pric '20241016' and base_pric "
    "'20231024' are dates, cur_prc '0.00' and lst_pric '-47.41' are rates",
}

# Condition search runs over the WebSocket with its own frames; its tables
# use Korean placeholders as element names.  Catalogued as printed.
CONDITION_SEARCH = ("ka10171", "ka10172", "ka10173", "ka10174")
