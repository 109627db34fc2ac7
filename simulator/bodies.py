"""Response bodies: row contexts written with the TR's own field names and wire conventions.

``FIELD_MAP`` says which context value a wire field shows (``TR_FIELD_MAP`` first,
for a name that means something else in other TRs); ``simulator.units`` says how the
TR writes it. A field either does not name shows the reference example's value for
that field, so every body has every catalogued key and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from schemas.catalog import TR, Field, catalog
from simulator.rows import Ctx, Rows
from simulator.units import unit_of, wire_for
from simulator.universe import strip_venue
from simulator.wire import SUCCESS_MSG, format_value

__all__ = ["FIELD_MAP", "TR_FIELD_MAP", "build_body"]

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
    # program trading of a market (simulator.rows_market): amounts or quantities as asked
    "dfrt_trde_sel": "arb_sell",
    "dfrt_trde_buy": "arb_buy",
    "dfrt_trde_netprps": "arb_net",
    "ndiffpro_trde_sel": "nonarb_sell",
    "ndiffpro_trde_buy": "nonarb_buy",
    "ndiffpro_trde_netprps": "nonarb_net",
    "dfrt_trde_sell_qty": "arb_sell_qty",
    "dfrt_trde_buy_qty": "arb_buy_qty",
    "dfrt_trde_netprps_qty": "arb_net_qty",
    "ndiffpro_trde_sell_qty": "nonarb_sell_qty",
    "ndiffpro_trde_buy_qty": "nonarb_buy_qty",
    "ndiffpro_trde_netprps_qty": "nonarb_net_qty",
    "all_sel": "all_sell",
    "all_buy": "all_buy",
    "all_netprps": "all_net",
    "kosp200": "kospi200_text",
    "kospi200": "kospi200",
    "dfrt_trde_tdy": "arb_net",
    "dfrt_trde_acc": "arb_net_acc",
    "ndiffpro_trde_tdy": "nonarb_net",
    "ndiffpro_trde_acc": "nonarb_net_acc",
    "all_tdy": "all_net",
    "all_acc": "all_net_acc",
    "buy_dftr_trde_qty": "buy_arb_balance_qty",
    "buy_dftr_trde_amt": "buy_arb_balance_amount",
    "buy_dftr_trde_irds_amt": "buy_arb_balance_change",
    "sel_dftr_trde_qty": "sell_arb_balance_qty",
    "sel_dftr_trde_amt": "sell_arb_balance_amount",
    "sel_dftr_trde_irds_amt": "sell_arb_balance_change",
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
    "dbrt_trde_cntrcnt_sum": "lending_new_qty_sum",
    "dbrt_trde_rpy_sum": "lending_repaid_qty_sum",
    "rmnd_sum": "lending_balance_qty_sum",
    "remn_amt_sum": "lending_balance_amount_sum",
    "dbrt_trde_cntrcnt_rt": "lending_new_qty_share",
    "dbrt_trde_rpy_rt": "lending_repaid_qty_share",
    "rmnd_rt": "lending_balance_qty_share",
    "remn_amt_rt": "lending_balance_amount_share",
    # institution and foreign over a window (ka10045)
    "orgn_daly_nettrede_qty": "institution",
    "for_daly_nettrede_qty": "foreign",
    "orgn_dt_acc": "institution_acc",
    "for_dt_acc": "foreign_acc",
    "orgn_prsm_avg_pric": "institution_avg_price",
    "for_prsm_avg_pric": "foreign_avg_price",
    # foreign holdings
    "chg_qty": "foreign_change",
    "poss_stkcnt": "foreign_holding",
    "wght": "foreign_ratio",
    "gain_pos_stkcnt": "foreign_available",
    "frgnr_limit": "foreign_limit",
    "limit_exh_rt": "foreign_exhaustion",
    "frgnr_qota_rt": "foreign_ratio",
}
# api-id -> wire field -> context value, where the name means something else elsewhere
# (``basis`` is an ELW's in ka30004)
TR_FIELD_MAP: dict[str, dict[str, str]] = {
    "ka90005": {"basis": "basis"},
    "ka90007": {"basis": "basis"},
    "ka90010": {"basis": "basis"},
    "ka10101": {"marketCode": "sector_market", "group": "sector_group"},
    "ka90009": {
        f"{who}_{side}_{field}": f"{col}_{side_key}_{key}"
        for who, col in (("for", "foreign"), ("orgn", "institution"))
        for side, side_key in (("netslmt", "sell"), ("netprps", "buy"))
        for field, key in (("stk_cd", "code"), ("stk_nm", "name"), ("amt", "amount"), ("qty", "qty"))
    },
    "ka10001": {
        "upl_pric": "upper_limit",
        "lst_pric": "lower_limit",
        "base_pric": "base_price",
        "oyr_hgst": "year_high",
        "oyr_lwst": "year_low",
        "250hgst": "d250_high",
        "250lwst": "d250_low",
        "250hgst_pric_dt": "d250_high_day",
        "250lwst_pric_dt": "d250_low_day",
        "250hgst_pric_pre_rt": "d250_high_rate",
        "250lwst_pric_pre_rt": "d250_low_rate",
        "flo_stk": "shares",
        "mac": "market_cap",
        "for_exh_rt": "foreign_exhaustion",
        "exp_cntr_pric": "expected_price",
        "exp_cntr_qty": "expected_qty",
    },
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


def _value(f: Field, ctx: Ctx, direction: bool, example: dict[str, str], req: _Request) -> str:
    name = f.wire or f.name
    w = wire_for(req.api_id, name)
    key = TR_FIELD_MAP.get(req.api_id, {}).get(name) or FIELD_MAP.get(name)
    if w is None or key is None:  # a field the market does not model: the reference's own example value
        return _example_value(f, example)
    value = ctx[key]
    if value is None:  # modelled, but no value here (no previous close, no flows that day)
        return ""
    if key == "code" and req.venue and value == req.code:
        return f"{value}{req.venue}"  # the server echoes the venue asked for
    return format_value(w, value, ctx.get("prev_close"), direction, unit_of(w, req.options))


@dataclass(frozen=True)
class _Request:
    api_id: str
    options: Mapping[str, str]
    code: str = ""  # the requested symbol without its venue suffix
    venue: str = ""  # "_NX", "_AL" or ""


def build_body(
    tr: TR, rows: Rows, options: Mapping[str, str] | None = None, symbol: str = ""
) -> dict[str, Any]:
    """The JSON body of one page; ``symbol`` is the requested code as sent (with its venue suffix)."""
    code = strip_venue(symbol)
    req = _Request(tr.id, options or {}, code, symbol[len(code) :])
    scalars, examples = _examples(tr.id)
    body: dict[str, Any] = {
        f.name: _value(f, rows.scalars, rows.direction, scalars, req) for f in tr.response
    }
    main = tr.main
    if main is not None:
        body[main.key] = [
            {
                f.name: _value(
                    f, ctx, rows.direction, examples[_row(ctx, i, examples)] if examples else {}, req
                )
                for f in main.items
            }
            for i, ctx in enumerate(rows.rows)
        ]
    body["return_code"] = 0
    body["return_msg"] = SUCCESS_MSG
    return body


def _row(ctx: Ctx, i: int, examples: list[dict[str, str]]) -> int:
    return int(dict.get(ctx, "example_row", i)) % len(examples)
