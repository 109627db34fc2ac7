"""The catalog's unit table: what unit each amount and quantity arrives in.

The reference rarely states units.  Each entry below is a reviewed fact with
its source: the reference's own text (a label such as ``금액(억)`` or a request
option such as ``1:금액(백만원), 2:수량(천주)``), the arithmetic of its
response examples (volume x price / turnover), or the vendor's
machine-readable spec and live captures summarized in ``WIRE_NOTES.md``.

"No unit" means one thing everywhere: the catalog does not know it.  The
dataset layer then stores the value as sent and says so in the column's
comment; it never guesses (DESIGN.md decision 12).

A unit can depend on the request (``amt_qty_tp`` decides amount or quantity,
``unit_tp`` thousands of shares or shares): ``UNIT_RULES`` records the
dependency as ordered rules; a rule's unit is ``None`` where the option's
meaning is known but its unit is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.kinds import Unit
from schemas.overrides import INVESTOR_COLUMNS, PROGRAM_TREND

__all__ = ["UNIT_OVERRIDES", "UNIT_RULES", "Unit", "UnitRule", "resolve_unit"]

KRW, KRW_1e3, KRW_1e6, KRW_1e7, KRW_1e8 = (
    Unit.WON,
    Unit.THOUSAND_WON,
    Unit.MILLION_WON,
    Unit.TEN_MILLION_WON,
    Unit.HUNDRED_MILLION_WON,
)
SHR, SHR_1e3 = Unit.SHARES, Unit.THOUSAND_SHARES


def _each(trs: tuple[str, ...], names: tuple[str, ...], unit: Unit) -> dict[tuple[str, str], Unit]:
    return {(tr, name): unit for tr in trs for name in names}


_PROGRAM_AMOUNTS = ("prm_sell_amt", "prm_buy_amt", "prm_netprps_amt", "prm_netprps_amt_irds")
_PROGRAM_MARKET = (
    "dfrt_trde_sel",
    "dfrt_trde_buy",
    "dfrt_trde_netprps",
    "ndiffpro_trde_sel",
    "ndiffpro_trde_buy",
    "ndiffpro_trde_netprps",
    "all_sel",
    "all_buy",
    "all_netprps",
)
_PROGRAM_MARKET_QTY = (
    "dfrt_trde_sell_qty",
    "dfrt_trde_buy_qty",
    "dfrt_trde_netprps_qty",
    "ndiffpro_trde_sell_qty",
    "ndiffpro_trde_buy_qty",
    "ndiffpro_trde_netprps_qty",
)
_GOLD_INVESTOR_QTY = (
    "all_dftr_trst_sell_qty",
    "sell_qty_irds",
    "all_dftr_trst_buy_qty",
    "buy_qty_irds",
    "all_dftr_trst_netprps_qty",
    "netprps_qty_irds",
    "acc_netprps_qty",
)

# (TR or realtime type, field) -> wire unit.  Fields not listed: unit unknown.
UNIT_OVERRIDES: dict[tuple[str, str], Unit] = {
    # Chart turnover.  Daily in 백만원 (ka10081's example: 1,105,968 shares x 61,300 won
    # / 64,215 = 1.06e6); weekly, monthly and yearly in 원 (their examples give
    # volume x close / turnover of 0.93-1.18; the vendor's spec says 원).
    ("ka10081", "trde_prica"): KRW_1e6,
    **_each(("ka10082", "ka10083", "ka10094"), ("trde_prica",), KRW),
    **_each(("ka50081", "ka50082", "ka50092"), ("acc_trde_prica",), KRW_1e6),
    ("ka50083", "acc_trde_prica"): KRW,
    # Sector charts: turnover in 백만원 and volume in thousands of shares at every
    # interval (ka20006: 393,564 thousand shares, 10,582,466 백만원: 26,890 won a share).
    **_each(("ka20006", "ka20007", "ka20008", "ka20019"), ("trde_prica",), KRW_1e6),
    **_each(("ka20004", "ka20005", "ka20006", "ka20007", "ka20008", "ka20019"), ("trde_qty",), SHR_1e3),
    ("ka20005", "acc_trde_qty"): SHR_1e3,
    # the realtime trade's cumulative turnover (FID 14), as in Kiwoom's OpenAPI+
    ("0B", "14"): KRW_1e6,
    # short sales: shrts_qty x shrts_avg_pric / shrts_trde_prica is 1000 in every example row
    ("ka10014", "shrts_trde_prica"): KRW_1e3,
    # investors (the vendor's spec states 백만원; ka10059's example: 1,105,968 shares x
    # 61,300 won / acc_trde_prica 64,215 = 1.06e6)
    ("ka10044", "netprps_amt"): KRW_1e6,
    ("ka10059", "acc_trde_prica"): KRW_1e6,
    ("ka10060", "acc_trde_prica"): KRW_1e6,
    **_each(
        ("ka10063",),
        (
            "netprps_amt",
            "prev_netprps_amt",
            "buy_amt",
            "netprps_amt_irds",
            "buy_amt_irds",
            "sell_amt",
            "sell_amt_irds",
        ),
        KRW_1e6,
    ),
    **_each(
        ("ka10131",),
        (
            "orgn_nettrde_amt",
            "orgn_cont_netprps_amt",
            "frgnr_nettrde_amt",
            "frgnr_cont_netprps_amt",
            "nettrde_amt",
            "tot_cont_netprps_amt",
        ),
        KRW_1e6,
    ),
    # ka90009 says it in its request: 1:금액(천만), 2:수량(천); both columns are always sent
    **_each(
        ("ka90009",),
        ("for_netslmt_amt", "for_netprps_amt", "orgn_netslmt_amt", "orgn_netprps_amt"),
        KRW_1e7,
    ),
    **_each(
        ("ka90009",),
        ("for_netslmt_qty", "for_netprps_qty", "orgn_netslmt_qty", "orgn_netprps_qty"),
        SHR_1e3,
    ),
    # gold investors: labels say 금액(억) and 수량(천) (buy_amt_irds lost its "(억)")
    **_each(
        ("ka52301",),
        (
            "all_dftr_trst_sell_amt",
            "sell_amt_irds",
            "all_dftr_trst_buy_amt",
            "buy_amt_irds",
            "all_dftr_trst_netprps_amt",
            "netprps_amt_irds",
            "acc_netprps_amt",
        ),
        KRW_1e8,
    ),
    **_each(("ka52301",), _GOLD_INVESTOR_QTY, SHR_1e3),
    # stock lending balances in 백만원 (ka10068: 2,460,259,444 shares, 73,956,254 백만원)
    **_each(("ka10068", "ka10069", "ka20068", "ka90012"), ("remn_amt",), KRW_1e6),
    ("ka10069", "remn_amt_sum"): KRW_1e6,
    # program trading: amounts in 백만원 (ka90008's example: 58,173 shares x 245,500 won
    # = 14,281 백만원, sent as prm_sell_amt 14245); stock quantities in shares
    **_each(("ka90003",), _PROGRAM_AMOUNTS[:3], KRW_1e6),
    **_each(("ka90008", "ka90013"), _PROGRAM_AMOUNTS, KRW_1e6),
    **_each(
        ("ka90004",), ("tot_2", "tot_4", "tot_5", "buy_cntr_amt", "sel_cntr_amt", "netprps_prica"), KRW_1e6
    ),
    **_each(("ka90004",), ("tot_1", "tot_3", "buy_cntr_qty", "sel_cntr_qty"), SHR_1e3),
    # ka90005/ka90010's *_qty columns are quantities whatever the request: 수량(천주)
    **_each(("ka90005", "ka90010"), _PROGRAM_MARKET_QTY, SHR_1e3),
    # turnover of quotes and rankings, by their examples' arithmetic (volume x price / turnover):
    # ka10003 in 원 (8,735 shares x 53,500 won / 524,269,500 = 0.89), the others in 백만원
    ("ka10003", "acc_trde_prica"): KRW,
    **_each(("ka10046", "ka10047", "ka10055", "ka10098"), ("acc_trde_prica",), KRW_1e6),
    ("ka10095", "trde_prica"): KRW_1e6,
    # sector snapshots as the sector charts: 천주 and 백만원 (ka20003: 46,494 백만원 over
    # 993 thousand shares is 46,821 won a share)
    **_each(("ka20001", "ka20003", "ka20009"), ("trde_qty",), SHR_1e3),
    **_each(("ka20001", "ka20003", "ka20009"), ("trde_prica",), KRW_1e6),
    ("ka20001", "acc_trde_qty_n"): SHR_1e3,
    ("ka20001", "trde_qty_n"): SHR_1e3,
    ("ka20009", "acc_trde_qty_n"): SHR_1e3,
    ("ka10051", "trde_qty"): SHR_1e3,
    # Kiwoom's convention for the basic quote: listed shares in 천주, market cap in 억원
    ("ka10001", "flo_stk"): SHR_1e3,
    ("ka10001", "mac"): KRW_1e8,
    # Stock chart volume in shares: the same arithmetic that fixes the turnovers above
    # (ka10081: 1,105,968 x 61,300 won / 64,215 백만원 = 1.06e6; weekly to yearly in 원
    # at 0.93-1.18) holds only with volume in shares; the tick and minute charts are the
    # same series cut finer (ka10080's acc_trde_qty is the day's running volume).
    **_each(("ka10079", "ka10080", "ka10081", "ka10082", "ka10083", "ka10094"), ("trde_qty",), SHR),
    ("ka10080", "acc_trde_qty"): SHR,
    # short sales (ka10014's example for 005930): trde_wght 8.58 = shrts_qty 841,407 /
    # trde_qty 9,802,105, and 9.8 million is the stock's daily volume in shares at 55,800 won
    **_each(("ka10014",), ("trde_qty", "shrts_qty", "ovr_shrts_qty"), SHR),
    # lending (ka10068's example): cntrcnt - rpy = irds, and rmnd 2,460,259,444 against
    # remn_amt 73,956,254 백만원 is 30,060 won a share (in 천주 it would be 30 won)
    **_each(
        ("ka10068", "ka10069", "ka20068", "ka90012"),
        ("dbrt_trde_cntrcnt", "dbrt_trde_rpy", "rmnd"),
        SHR,
    ),
    **_each(("ka10068", "ka20068"), ("dbrt_trde_irds",), SHR),
    **_each(("ka10069",), ("dbrt_trde_cntrcnt_sum", "dbrt_trde_rpy_sum", "rmnd_sum"), SHR),
    # program trading by stock: ka90008's example 58,173 shares x 245,500 won = 14,281
    # 백만원 against prm_sell_amt 14245 (trde_qty 104,006 is the day's volume so far)
    **_each(
        ("ka90008", "ka90013"),
        ("trde_qty", "prm_sell_qty", "prm_buy_qty", "prm_netprps_qty", "prm_netprps_qty_irds"),
        SHR,
    ),
}


class UnitRule:
    """``unit`` applies when the request's options equal ``when`` (a rule of ``UNIT_RULES``)."""

    __slots__ = ("unit", "when")

    def __init__(self, when: Mapping[str, str], unit: Unit | None) -> None:
        self.when = dict(when)
        self.unit = unit

    def as_json(self) -> dict[str, object]:
        return {"when": self.when, "unit": self.unit.value if self.unit else None}


_SECTOR_NETS = (
    "sc_netprps",
    "insrnc_netprps",
    "invtrt_netprps",
    "bank_netprps",
    "jnsinkm_netprps",
    "endw_netprps",
    "etc_corp_netprps",
    "ind_netprps",
    "frgnr_netprps",
    "native_trmt_frgnr_netprps",
    "natn_netprps",
    "samo_fund_netprps",
    "orgn_netprps",
)
# amounts in 백만원 (ka10059's example beside its 백만원 turnover), quantities as unit_tp says
_BY_AMOUNT_AND_UNIT = (
    UnitRule({"amt_qty_tp": "1"}, KRW_1e6),
    UnitRule({"amt_qty_tp": "2", "unit_tp": "1000"}, SHR_1e3),
    UnitRule({"amt_qty_tp": "2", "unit_tp": "1"}, SHR),
)
# amount or quantity is known; the unit of each is not stated anywhere we can check
_BY_AMOUNT_UNKNOWN = (UnitRule({"amt_qty_tp": "1"}, None), UnitRule({"amt_qty_tp": "2"}, None))

# ka90005/ka90010 request text: "1:금액(백만원), 2:수량(천주)"
_BY_PROGRAM_OPTION = (UnitRule({"amt_qty_tp": "1"}, KRW_1e6), UnitRule({"amt_qty_tp": "2"}, SHR_1e3))

# (TR, field) -> rules, first match wins; the deciding options are part of the dataset key.
UNIT_RULES: dict[tuple[str, str], tuple[UnitRule, ...]] = {
    **{(tr, n): _BY_PROGRAM_OPTION for tr in ("ka90005", "ka90010") for n in _PROGRAM_MARKET},
    **{
        (tr, n): _BY_AMOUNT_AND_UNIT for tr in ("ka10059", "ka10060", "ka10061") for n in INVESTOR_COLUMNS[tr]
    },
    **{(tr, n): _BY_AMOUNT_UNKNOWN for tr in ("ka10064", "ka10066") for n in INVESTOR_COLUMNS[tr]},
    **{
        ("ka10051", n): (UnitRule({"amt_qty_tp": "0"}, None), UnitRule({"amt_qty_tp": "1"}, None))
        for n in _SECTOR_NETS
    },
    **{("ka90007", n): _BY_AMOUNT_UNKNOWN for n in PROGRAM_TREND},
}


def resolve_unit(rules: Sequence[Mapping[str, Any]], request: Mapping[str, str]) -> Unit | None:
    """The unit of the first rule (as the catalog stores it) whose options the request carries.

    None: no rule matches, or the matching rule's unit is unknown.
    """
    for rule in rules:
        if all(request.get(k) == v for k, v in rule["when"].items()):
            return Unit(rule["unit"]) if rule["unit"] else None
    return None
