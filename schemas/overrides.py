"""Reviewed corrections to what the kind rules infer, and canonical realtime names.

``schemas.kinds.infer_kind`` assigns each field a kind from its name, label
and description; the entries here are where those rules are wrong, each with
the evidence (usually the reference's own example values).  The build fails
on an entry for a TR or field the reference does not have.
"""

from __future__ import annotations

from schemas.kinds import Kind

__all__ = [
    "CANONICAL_REALTIME",
    "DECIMALS",
    "INVESTOR_COLUMNS",
    "KIND_OVERRIDES",
    "LENDING_RATIOS",
    "PROGRAM_TREND",
]

# Investor-by-type columns, as each TR lists them.
INVESTOR_COLUMNS: dict[str, tuple[str, ...]] = {
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

# ka90007's program-trading columns: arbitrage, non-arbitrage and all, the day's and cumulative.
PROGRAM_TREND = (
    "dfrt_trde_tdy",
    "dfrt_trde_acc",
    "ndiffpro_trde_tdy",
    "ndiffpro_trde_acc",
    "all_tdy",
    "all_acc",
)
# ka10069's four ratios of the top-10 lending stocks to the market
LENDING_RATIOS = ("dbrt_trde_cntrcnt_rt", "dbrt_trde_rpy_rt", "rmnd_rt", "remn_amt_rt")

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
    **{(tr, name): Kind.SIGNED for tr, names in INVESTOR_COLUMNS.items() for name in names},
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
    **{("ka90007", name): Kind.SIGNED for name in PROGRAM_TREND},
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
    # sector levels sent with a decimal point AND a direction sign ("-2394.49" is 2394.49,
    # down); the rules saw the point and made them rates, which kept the sign
    **{
        (tr, name): Kind.LEVEL
        for tr in ("ka20001", "ka20009")
        for name in ("cur_prc", "open_pric", "high_pric", "low_pric", "52wk_hgst_pric", "52wk_lwst_pric")
    },
    ("ka20001", "cur_prc_n"): Kind.LEVEL,
    ("ka20009", "cur_prc_n"): Kind.LEVEL,
    ("ka20003", "cur_prc"): Kind.LEVEL,
    # counts of stocks at the upper limit, rising, unchanged, falling, at the lower limit
    **{
        (tr, name): Kind.QTY
        for tr in ("ka20001", "ka20003", "ka20009")
        for name in ("upl", "rising", "stdns", "fall", "lst")
    },
    # index changes beside x100 levels are x100 too ("18031" beside "388193": 180.31 points)
    ("ka20004", "pred_pre"): Kind.RATE,
    ("ka20005", "pred_pre"): Kind.RATE,
    # the ETF's tracked index: level x100 and its change x100 (ka40004 "trace_idex" "+164680")
    ("ka40003", "trace_cur_prc"): Kind.INDEX,
    ("ka40003", "trace_pred_pre"): Kind.RATE,
    # stock-lending top-10 ratios: "소수점 제거 된 100배 값" ("7061" is 70.61 %)
    **{("ka10069", name): Kind.RATE for name in LENDING_RATIOS},
    # the 1-5 up/down sign code, not a number; the sector's level, change and rate are x100
    # (90.30 / (2653.81 - 90.30) = 3.52 %, sent as flu_rt "352")
    ("ka10051", "pre_smbol"): Kind.ENUM,
    ("ka10051", "cur_prc"): Kind.INDEX,
    ("ka10051", "pred_pre"): Kind.RATE,
    ("ka10051", "flu_rt"): Kind.RATE,
    # a net figure despite its label: "--261000" in the example
    ("ka10063", "buy_qty"): Kind.SIGNED,
    ("ka10063", "sell_qty"): Kind.SIGNED,
    # ka10001's example is shifted (schemas.repairs.DAMAGED_EXAMPLE_VALUES): the price
    # fields are prices and the 250-day dates are dates, whatever the example shows
    **{
        ("ka10001", name): Kind.PRICE
        for name in ("cur_prc", "lst_pric", "exp_cntr_pric", "upl_pric", "base_pric")
    },
    ("ka10001", "250hgst_pric_dt"): Kind.DATE,
    ("ka10001", "250lwst_pric_dt"): Kind.DATE,
}

# (TR, field) -> implied decimals of a RATE or INDEX override above.
DECIMALS: dict[tuple[str, str], int] = {
    ("ka10051", "pred_pre"): 2,
    ("ka10051", "flu_rt"): 2,
    ("ka20004", "pred_pre"): 2,
    ("ka20005", "pred_pre"): 2,
    ("ka40003", "trace_pred_pre"): 2,
    **{("ka10069", name): 2 for name in LENDING_RATIOS},
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
