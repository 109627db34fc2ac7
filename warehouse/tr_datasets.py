"""The datasets of TRs other than the charts: investors, program trading, short selling, lending, lists.

Each is a row of ``SPECS``: a name, its TR, its family and style, and for series the
row's date or time field and the request options stored as columns.  The build renames
the normalized wire columns to their English names (``schemas.columns``), converts
amounts into won and quantities into shares, and stores the options that decide what the
numbers mean readable (``measure = 'amount'``).  Styles:

- ``series``: one row per symbol (where the TR takes one) and trading day;
- ``intraday``: like series, with the time of day on the request's date (``ts``);
- ``snapshot``: rankings and other answers of "now", keyed on the fetch time;
- ``reference``: the stock and sector lists, each market's list replaced whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import polars as pl

from schemas import calendar as cal
from schemas.calendar import KST, TZ_NAME
from schemas.catalog import TR, Field, catalog
from schemas.columns import OPTION_VALUES, option_column, option_value, tr_columns
from schemas.errors import InputError
from schemas.kinds import KST_TS
from schemas.normalize import output_schema
from warehouse.datasets import (
    RUN_ID,
    RUN_ID_COMMENT,
    Dataset,
    check_symbol,
    default_request,
    fields_of,
    lit_str,
    symbol_param,
    to_date,
)
from warehouse.units import to_base_units, unit_note

__all__ = ["SPECS", "current_day", "tr_dataset"]


def _comment(api_id: str, f: Field, label: str) -> str:
    note = unit_note(f, api_id)
    return label + (f" ({note})" if note else "")


def _column_comments(api_id: str) -> dict[str, str]:
    """The comment of each English column of ``api_id``: the Korean label and the unit it holds."""
    fields = fields_of(api_id)
    out: dict[str, str] = {}
    for col, (name, label, wire) in tr_columns(api_id).items():
        if col == wire:
            out[name] = _comment(api_id, fields[wire], label)
        elif col.endswith("_dir"):
            out[name] = f"{label} 대비 방향 (+1 상승, -1 하락, 0 보합)"
        else:
            out[name] = f"{label} 거래소 (KRX, NXT, SOR)"
    return out


def _option_comment(tr: TR, name: str) -> str:
    spec = next((s for s in tr.request if s["name"] == name), None)
    if spec is None:
        return "요청 조건"
    allowed = spec.get("allowed") or {}
    label = spec.get("label") or name
    column = option_column(tr.id, name)
    if column != name:
        codes = allowed or dict.fromkeys(OPTION_VALUES[(tr.id, name)], "")
        values = ", ".join(
            f"{option_value(tr.id, name, k)}" + (f" ({v})" if v else "") for k, v in codes.items()
        )
        return f"요청 {label} ({name}): {values}"
    values = ", ".join(f"{k}={v}" for k, v in allowed.items())
    return f"요청 {label}" + (f": {values}" if values else "")


@dataclass(frozen=True)
class _Spec:
    name: str
    api_id: str
    family: str
    style: str  # series | intraday | snapshot | reference
    time_field: str | None = None  # the row's date (series) or time-of-day (intraday) field
    options: tuple[str, ...] = ()  # series/intraday: the request options stored as columns
    key_extra: tuple[str, ...] = ()  # reference: row identity


SPECS = (
    # investors
    _Spec("stock_foreign_trading", "ka10008", "investor", "series", "dt"),
    _Spec("stock_institution", "ka10009", "investor", "series", "date"),
    _Spec("daily_institution_trading_stocks", "ka10044", "investor", "snapshot"),
    _Spec(
        "stock_institution_trend",
        "ka10045",
        "investor",
        "series",
        "dt",
        ("orgn_prsm_unp_tp", "for_prsm_unp_tp"),
    ),
    _Spec("sector_investor_net_buying", "ka10051", "investor", "snapshot"),
    _Spec("investor_daily_trading_stocks", "ka10058", "investor", "snapshot"),
    _Spec(
        "stock_investor_institution",
        "ka10059",
        "investor",
        "series",
        "dt",
        ("amt_qty_tp", "trde_tp", "unit_tp"),
    ),
    _Spec(
        "stock_investor_institution_chart",
        "ka10060",
        "investor",
        "series",
        "dt",
        ("amt_qty_tp", "trde_tp", "unit_tp"),
    ),
    _Spec("stock_investor_institution_total", "ka10061", "investor", "snapshot"),
    _Spec("intraday_investor_trading", "ka10063", "investor", "snapshot"),
    _Spec(
        "intraday_investor_trading_chart",
        "ka10064",
        "investor",
        "intraday",
        "tm",
        ("mrkt_tp", "amt_qty_tp", "trde_tp"),
    ),
    _Spec("after_close_investor_trading", "ka10066", "investor", "snapshot"),
    _Spec("institution_foreign_consecutive_trading", "ka10131", "investor", "snapshot"),
    _Spec("gold_investor_status", "ka52301", "investor", "snapshot"),
    _Spec("foreign_institution_top_trading", "ka90009", "investor", "snapshot"),
    # program trading
    _Spec("program_net_buying_top50", "ka90003", "program", "snapshot"),
    _Spec("stock_program_trading_status", "ka90004", "program", "snapshot"),
    _Spec(
        "program_trading_trend_intraday",
        "ka90005",
        "program",
        "intraday",
        "cntr_tm",
        ("amt_qty_tp", "mrkt_tp", "min_tic_tp", "stex_tp"),
    ),
    _Spec("program_arbitrage_balance_trend", "ka90006", "program", "series", "dt", ("stex_tp",)),
    _Spec(
        "program_trading_cumulative_trend",
        "ka90007",
        "program",
        "series",
        "dt",
        ("amt_qty_tp", "mrkt_tp", "stex_tp"),
    ),
    _Spec("stock_program_trading_intraday", "ka90008", "program", "intraday", "tm", ("amt_qty_tp",)),
    _Spec(
        "program_trading_trend_daily",
        "ka90010",
        "program",
        "series",
        "cntr_tm",
        ("amt_qty_tp", "mrkt_tp", "min_tic_tp", "stex_tp"),
    ),
    _Spec("stock_program_trading_daily", "ka90013", "program", "series", "dt", ("amt_qty_tp",)),
    _Spec("sector_program_trading", "ka10010", "program", "snapshot"),
    # short selling and stock lending
    _Spec("short_selling", "ka10014", "short", "series", "dt"),
    _Spec("stock_lending_trend", "ka10068", "short", "series", "dt", ("all_tp",)),
    _Spec("stock_lending_top10", "ka10069", "short", "snapshot"),
    _Spec("stock_lending_trend_by_stock", "ka20068", "short", "series", "dt"),
    _Spec("stock_lending_details", "ka90012", "short", "snapshot"),
    # reference lists
    _Spec("stock_list", "ka10099", "reference", "reference", key_extra=("symbol",)),
    _Spec("sector_list", "ka10101", "reference", "reference", key_extra=("symbol",)),
)


def _spec_options(spec: _Spec, tr: TR) -> tuple[str, ...]:
    if spec.style in ("snapshot", "reference"):
        symbol = symbol_param(tr)
        return tuple(s["name"] for s in tr.request if s["name"] != symbol)
    return spec.options


def current_day(now: datetime) -> date:
    """The day a TR's answer of "today" holds at ``now``: today once the session opened, else the
    last session's (ka10009, ka10064 take no date)."""
    local = now.astimezone(KST)
    today = local.date()
    if cal.is_trading_day(today) and local.time() > cal.SESSION_OPEN:
        return today
    return cal.last_trading_day_on_or_before(today - timedelta(days=1))


def _intraday_base(api_id: str, request: Mapping[str, str], fetched_at: datetime) -> date:
    text = request.get("date") or request.get("dt")
    if not text:
        return current_day(fetched_at)
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise InputError(f"{api_id}: request date {text!r} is not YYYYMMDD") from None


def _tr_build(
    ds: Dataset, api_id: str, frame: pl.DataFrame, request: Mapping[str, str], fetched_at: datetime
) -> pl.DataFrame:
    tr = catalog().tr(api_id)
    spec = _BY_NAME[ds.name]
    lead: dict[str, pl.Expr] = {}
    drop: list[str] = []
    param = symbol_param(tr)
    if ds.symbol and param:
        lead["symbol"] = lit_str(check_symbol(ds, request, param))
    if ds.style == "series":
        assert spec.time_field
        lead["date"] = to_date(pl.col(spec.time_field), frame.schema[spec.time_field])
        drop.append(spec.time_field)
    elif ds.style == "intraday":
        assert spec.time_field
        base = _intraday_base(api_id, request, fetched_at)
        lead["ts"] = (pl.lit(base).dt.combine(pl.col(spec.time_field))).dt.replace_time_zone(
            TZ_NAME, ambiguous="raise", non_existent="raise"
        )
        drop.append(spec.time_field)
    else:
        lead["fetched_at"] = pl.lit(fetched_at.astimezone(KST)).cast(KST_TS)
    for opt, value in ds.option_values(api_id, request).items():
        lead[opt] = lit_str(value)
    if ds.style in ("snapshot", "intraday"):
        lead["row" if ds.style == "snapshot" else "seq"] = pl.int_range(pl.len(), dtype=pl.Int32)
    sent = {**ds.defaults[api_id], **request}
    frame = to_base_units(api_id, frame, tr.row_fields(), sent)
    names = tr_columns(api_id)
    out = frame.select(**lead, **{names[c][0]: pl.col(c) for c in frame.columns if c not in drop})
    if ds.style == "intraday":
        out = out.reverse().with_columns(seq=pl.int_range(pl.len(), dtype=pl.Int32).over("ts")).reverse()
    return out


def tr_dataset(spec: _Spec) -> Dataset:
    """The dataset of one row of ``SPECS``; its schema is what the build makes of an empty answer."""
    tr = catalog().tr(spec.api_id)
    param = symbol_param(tr)
    wire_options = _spec_options(spec, tr)
    defaults = {spec.api_id: default_request(spec.api_id)}
    for (
        opt
    ) in wire_options:  # a series' options are always sent, so its key always says what the numbers mean
        allowed = next((s.get("allowed") for s in tr.request if s["name"] == opt), None)
        if spec.style in ("series", "intraday") and opt not in defaults[spec.api_id] and allowed:
            defaults[spec.api_id][opt] = next(iter(allowed))
    # options that decide what the numbers mean are stored readable: measure = 'amount', not amt_qty_tp = '1'
    option_wires = {option_column(spec.api_id, o): o for o in wire_options}
    options = tuple(option_wires)
    time_col = {"series": "date", "intraday": "ts"}.get(spec.style, "fetched_at")
    symbol = "symbol" if param else None
    lead = (symbol,) if symbol else ()
    if spec.style == "series":
        key = (*lead, *options, "date")
    elif spec.style == "intraday":
        key = (*lead, *options, "ts", "seq")
    elif spec.style == "snapshot":
        key = ("fetched_at", *lead, *options, "row")
    else:
        key = (*options, *spec.key_extra)
    partition = {"series": ("year(date)",), "intraday": ("year(ts)",), "snapshot": ("year(fetched_at)",)}
    columns = tr_columns(spec.api_id)
    time_fields = {spec.time_field} if spec.time_field else set()
    wire = {name: col for col, (name, _, w) in columns.items() if w not in time_fields}
    clash = set(wire) & {*lead, *options, time_col, "row", "seq"}
    if clash:
        raise ValueError(f"{spec.name}: response columns {sorted(clash)} clash with the key columns")
    wire |= option_wires
    if symbol and param:
        wire[symbol] = param
    if spec.time_field:
        wire[time_col] = spec.time_field
    comments = {
        "symbol": "종목코드 (요청의 종목/업종 코드)",
        "date": "일자",
        "ts": "시각 (Asia/Seoul): 요청 일자 + 응답 시간",
        "seq": "같은 시각 안의 순번, 0부터 시간순",
        "fetched_at": "조회 시각 (Asia/Seoul)",
        "row": "응답 안의 순서 (0부터, 순위 순)",
        RUN_ID: RUN_ID_COMMENT,
    }
    comments |= _column_comments(spec.api_id)
    comments |= {o: _option_comment(tr, w) for o, w in option_wires.items()}
    ds = Dataset(
        name=spec.name,
        family=spec.family,
        style=spec.style,
        description=f"{tr.name} ({spec.api_id})",
        sources=(spec.api_id,),
        schema=pl.Schema(),
        key=key,
        time=time_col,
        symbol=symbol,
        options=options,
        partition=partition.get(spec.style, ()),
        comments={},
        defaults=defaults,
        replace_by=(*options,) if spec.style == "reference" else key,
        _build=_tr_build,
        wire=wire,
    )
    # the schema is what the build makes of an empty answer: one source of truth
    empty = pl.DataFrame(schema=output_schema(spec.api_id))
    sample = {param: "000000"} if param else {}
    built = _tr_build(
        ds, spec.api_id, empty, {**defaults[spec.api_id], **sample}, datetime(2000, 1, 1, tzinfo=KST)
    )
    full = pl.Schema({**built.schema, RUN_ID: pl.String()})
    return replace(ds, schema=full, comments={c: comments.get(c, c) for c in full})


_BY_NAME = {s.name: s for s in SPECS}
