"""Response bodies: row contexts written with the TR's own field names and wire conventions.

``FIELD_MAP`` says which context value a wire field shows. A field it does not
name (or a value the context lacks) shows the reference example's value for
that field, so every body has every catalogued key and nothing else.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from schemas.catalog import TR, Field, catalog
from schemas.kinds import Kind
from simulator.rows import Ctx, Rows
from simulator.wire import SUCCESS_MSG, format_value

__all__ = ["FIELD_MAP", "build_body"]

FIELD_MAP: dict[str, str] = {
    # bars and quotes
    "cur_prc": "close",
    "close_pric": "close",
    "cntr_pric": "close",
    "lastPrice": "close",
    "open_pric": "open",
    "high_pric": "high",
    "low_pric": "low",
    "trde_qty": "volume",
    "dt_trde_qty": "volume",
    "acc_trde_qty": "acc_volume",
    "trde_prica": "turnover",
    "acc_trde_prica": "acc_turnover",
    "pred_pre": "change",
    "pre": "change",
    "pred_pre_sig": "sign",
    "pre_sig": "sign",
    "flu_sig": "sign",
    "flu_rt": "change_rate",
    "pre_rt": "change_rate",
    "trde_tern_rt": "turnover_rate",
    "dt": "date",
    "date": "date",
    "cntr_tm": "ts",
    "tm": "time",
    "stk_cd": "code",
    "code": "code",
    "inds_cd": "code",
    "stk_nm": "name",
    "name": "name",
    "inds_nm": "name",
    "listCount": "shares",
    "regDay": "listed",
    "marketCode": "market_code",
    "marketName": "market_name",
    # investors
    "ind_invsr": "individual",
    "ind_netprps": "individual",
    "frgnr_invsr": "foreign",
    "frgnr_netprps": "foreign",
    "frgnr_daly_netrde": "foreign",
    "orgn": "institution",
    "orgn_netprps": "institution",
    "orgn_daly_netrde": "institution",
    "fnnc_invt": "financial_investment",
    "sc_netprps": "financial_investment",
    "insrnc": "insurance",
    "insrnc_netprps": "insurance",
    "invtrt": "investment_trust",
    "invrtt": "investment_trust",
    "invtrt_netprps": "investment_trust",
    "etc_fnnc": "other_financial",
    "bank": "bank",
    "bank_netprps": "bank",
    "penfnd_etc": "pension_fund",
    "endw_netprps": "pension_fund",
    "samo_fund": "private_fund",
    "samo_fund_netprps": "private_fund",
    "natn": "government",
    "natn_netprps": "government",
    "etc_corp": "other_corp",
    "etc_corp_netprps": "other_corp",
    "natfor": "domestic_foreign",
    "native_trmt_frgnr_netprps": "domestic_foreign",
    # program trading
    "prm_sell_amt": "prm_sell_amount",
    "prm_buy_amt": "prm_buy_amount",
    "prm_netprps_amt": "prm_net_amount",
    "prm_sell_qty": "prm_sell_qty",
    "prm_buy_qty": "prm_buy_qty",
    "prm_netprps_qty": "prm_net_qty",
    "prm_netprps_amt_irds": "prm_net_amount_change",
    "prm_netprps_qty_irds": "prm_net_qty_change",
    "buy_cntr_qty": "prm_buy_qty",
    "buy_cntr_amt": "prm_buy_amount",
    "sel_cntr_qty": "prm_sell_qty",
    "sel_cntr_amt": "prm_sell_amount",
    "netprps_prica": "prm_net_amount",
    # short selling and stock lending
    "shrts_qty": "short_qty",
    "ovr_shrts_qty": "short_balance_qty",
    "trde_wght": "short_weight",
    "shrts_trde_prica": "short_amount",
    "shrts_avg_pric": "short_avg_price",
    "dbrt_trde_cntrcnt": "lending_new_qty",
    "dbrt_trde_rpy": "lending_repaid_qty",
    "rmnd": "lending_balance_qty",
    "dbrt_trde_irds": "lending_change",
    "remn_amt": "lending_balance_amount",
    # foreign holdings
    "chg_qty": "foreign_change",
    "poss_stkcnt": "foreign_holding",
    "wght": "foreign_ratio",
    "gain_pos_stkcnt": "foreign_available",
    "frgnr_limit": "foreign_limit",
    "limit_exh_rt": "foreign_exhaustion",
    "frgnr_qota_rt": "foreign_ratio",
}


@cache
def _examples(api_id: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The reference example's scalars and rows (empty when it is unreadable)."""
    tr = catalog().tr(api_id)
    ex = tr.example if isinstance(tr.example, dict) and not tr.example_broken else {}
    rows = ex.get(tr.main.key) if tr.main else None
    scalars = {k: v for k, v in ex.items() if isinstance(v, str)}
    return scalars, [r for r in rows or () if isinstance(r, dict)]


def _example_value(f: Field, example: dict[str, str]) -> str:
    for name in (f.wire or f.name, *f.aliases):
        value = example.get(name)
        if isinstance(value, str):
            return value
    return ""


def _value(f: Field, ctx: Ctx, direction: bool, example: dict[str, str]) -> str:
    key = FIELD_MAP.get(f.wire or f.name)
    if key == "ts" and f.kind == Kind.TIME:
        key = "time"
    if key is None:  # a field the market does not model: the reference's own example value
        return _example_value(f, example)
    value = ctx[key]
    if value is None:  # modelled, but no value here (no previous close, no flows that day)
        return ""
    if f.kind in (Kind.TEXT, Kind.ENUM) and isinstance(value, int | float):
        return str(round(value))
    return format_value(f, value, ctx.get("prev_close"), direction)


def build_body(tr: TR, rows: Rows) -> dict[str, Any]:
    """The JSON body of one page."""
    scalars, examples = _examples(tr.id)
    body: dict[str, Any] = {f.name: _value(f, rows.scalars, rows.direction, scalars) for f in tr.response}
    main = tr.main
    if main is not None:
        body[main.key] = [
            {
                f.name: _value(f, ctx, rows.direction, examples[_row(ctx, i, examples)] if examples else {})
                for f in main.items
            }
            for i, ctx in enumerate(rows.rows)
        ]
    body["return_code"] = 0
    body["return_msg"] = SUCCESS_MSG
    return body


def _row(ctx: Ctx, i: int, examples: list[dict[str, str]]) -> int:
    return int(dict.get(ctx, "example_row", i)) % len(examples)
