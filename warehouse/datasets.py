"""The dataset registry: what each warehouse table holds and how a TR's answer becomes its rows.

A dataset is data, not a module: name, source TRs and default request, the
``pl.Schema`` contract, primary key, time column, partitioning and column
comments. ``Dataset.rows(api_id, frame, request, fetched_at)`` turns a
normalized frame (wire names, typed by ``schemas.normalize``) into the
dataset's canonical columns, without ``run_id`` (the writer adds it).

Families:

- bars (``stock_bars_*``, ``sector_bars_*``, ``gold_bars_*``): canonical OHLCV
  columns, turnover in won, prices positive, index levels as real levels;
- ``series``: one row per symbol (where the TR takes one) and trading day, wire
  column names, the meaning-changing request options as columns;
- ``intraday``: like series, with the time of day on the request's date (``ts``);
- ``snapshot``: rankings and other answers of "now", keyed on the fetch time;
- ``reference``: the stock and sector lists, each market's list replaced whole.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import polars as pl

from schemas.calendar import KST
from schemas.catalog import TR, Field, catalog
from schemas.columns import OPTION_VALUES, option_column, option_value, tr_columns
from schemas.normalize import output_schema
from warehouse.units import to_base_units, unit_note

__all__ = ["BAR_DATASETS", "Dataset", "dataset", "datasets", "default_request", "option_renames", "renames"]

TS = pl.Datetime("us", "Asia/Seoul")
RUN_ID = "run_id"
_DATE_PARAMS = ("strt_dt", "end_dt", "base_dt", "dt", "date", "qry_dt")
_SYMBOL_PARAMS = ("stk_cd", "inds_cd")
# volumes saturate at 2**32 - 1 on the live server (ka10081 and some rankings)
SATURATED_VOLUME = 4_294_967_295


@dataclass(frozen=True)
class Dataset:
    name: str
    family: str  # stock_bars | sector_bars | gold_bars | investor | program | short | reference | realtime
    style: str  # bars | series | intraday | snapshot | reference | stream
    description: str
    sources: tuple[str, ...]  # TR ids, the first one the default
    schema: pl.Schema  # the contract, run_id included
    key: tuple[str, ...]
    time: str  # the time column: date, ts or fetched_at
    symbol: str | None  # the symbol column, if rows belong to one symbol
    options: tuple[str, ...]  # meaning-changing request options, as columns (part of the key)
    partition: tuple[str, ...]  # DuckLake partition expressions
    comments: Mapping[str, str]
    defaults: Mapping[str, Mapping[str, str]]  # per source TR: the request besides symbol and dates
    replace_by: tuple[str, ...]  # a write deletes existing rows matching these columns of the frame
    _build: Callable[[Dataset, str, pl.DataFrame, Mapping[str, str], datetime], pl.DataFrame] = field(
        repr=False, compare=False
    )
    wire: Mapping[str, str] = field(default_factory=dict)  # column -> the wire field or request option

    @property
    def columns(self) -> list[str]:
        return list(self.schema)

    def rows(
        self, api_id: str, frame: pl.DataFrame, request: Mapping[str, str], fetched_at: datetime
    ) -> pl.DataFrame:
        """A normalized answer of ``api_id`` as this dataset's rows (everything but ``run_id``)."""
        if api_id not in self.sources:
            raise ValueError(
                f"{api_id} does not feed dataset {self.name} (sources: {', '.join(self.sources)})"
            )
        out = self._build(self, api_id, frame, request, fetched_at)
        return out.select(c for c in self.columns if c != RUN_ID)

    def option_values(self, api_id: str, request: Mapping[str, str]) -> dict[str, Any]:
        """The option columns' values for rows fetched with ``request`` (what coverage is keyed by)."""
        defaults = self.defaults[api_id]
        out: dict[str, Any] = {}
        for opt in self.options:
            if opt == "adjusted":
                first = self.defaults[self.sources[0]].get("upd_stkpc_tp", "1")
                out[opt] = request.get("upd_stkpc_tp", defaults.get("upd_stkpc_tp", first)) == "1"
            elif opt == "tic_scope":
                out[opt] = int(request.get("tic_scope") or defaults.get("tic_scope") or 1)
            else:
                # an option left out of the request is "" (keys are never null)
                wire = self.wire.get(opt, opt)
                sent = request[wire] if wire in request else defaults.get(wire)
                out[opt] = option_value(api_id, wire, sent or "")
        return out

    def request(
        self,
        api_id: str | None = None,
        symbol: str | None = None,
        start: date | None = None,
        end: date | None = None,
        **options: str,
    ) -> dict[str, str]:
        """A request body for a source TR: its defaults, the options given, the symbol and the window.

        Chart and trend TRs page back from ``end`` (``base_dt``, ``dt``, ``date``);
        range TRs take ``strt_dt``/``end_dt``. Dates the TR does not take are ignored.
        """
        api_id = api_id or self.sources[0]
        tr = catalog().tr(api_id)
        names = {s["name"] for s in tr.request}
        unknown = set(options) - names
        if unknown:
            raise ValueError(f"{api_id} takes no request field {sorted(unknown)} (it takes {sorted(names)})")
        body = dict(self.defaults[api_id])
        body.update(options)
        param = _symbol_param(tr)
        if param:
            if not symbol:
                raise ValueError(f"dataset {self.name} ({api_id}) needs a symbol ({param})")
            body[param] = symbol
        if end is not None:
            for name in ("base_dt", "end_dt", "dt", "date"):
                if name in names and name not in _ENUM_DATE_PARAMS.get(api_id, ()):
                    body[name] = f"{end:%Y%m%d}"
        if start is not None and "strt_dt" in names:
            body["strt_dt"] = f"{start:%Y%m%d}"
        return body


# --------------------------------------------------------------------------- helpers


def default_request(api_id: str) -> dict[str, str]:
    """The reference's request example without symbol and date fields, repaired to allowed values."""
    tr = catalog().tr(api_id)
    example = dict(tr.raw.get("request_example") or {})
    body: dict[str, str] = {}
    for spec in tr.request:
        name, allowed = spec["name"], spec.get("allowed")
        if name in _SYMBOL_PARAMS or (name in _DATE_PARAMS and name not in _ENUM_DATE_PARAMS.get(api_id, ())):
            continue
        value = str(example.get(name, ""))
        if allowed and value not in allowed and (value or spec.get("required")):
            value = next(iter(allowed))
        if value or spec.get("required"):
            body[name] = value
    return body


# ka10131's ``dt`` is a period choice (1, 3, 5 ... days), not a date.
_ENUM_DATE_PARAMS = {"ka10131": ("dt",)}


def _fields(api_id: str) -> dict[str, Field]:
    return {f.column or f.name: f for f in catalog().tr(api_id).row_fields()}


def _comment(api_id: str, f: Field, label: str) -> str:
    note = unit_note(f, api_id)
    return label + (f" ({note})" if note else "")


def _column_comments(api_id: str) -> dict[str, str]:
    """The comment of each English column of ``api_id``: the Korean label and the unit it holds."""
    fields = _fields(api_id)
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


def _to_date(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return col.dt.date() if isinstance(dtype, pl.Datetime) else col


def _lit_str(value: str | None) -> pl.Expr:
    return pl.lit(value, pl.String)


def _check_symbol(ds: Dataset, request: Mapping[str, str], param: str) -> str:
    symbol = request.get(param)
    if not symbol:
        raise ValueError(f"dataset {ds.name}: the request has no {param} (the symbol of these rows)")
    return symbol


# --------------------------------------------------------------------------- bars

_BAR_INTERVALS = ("tick", "minute", "daily", "weekly", "monthly", "yearly")
_BAR_SOURCES: dict[str, dict[str, tuple[str, ...]]] = {
    "stock": {
        "tick": ("ka10079",),
        "minute": ("ka10080",),
        "daily": ("ka10081",),
        "weekly": ("ka10082",),
        "monthly": ("ka10083",),
        "yearly": ("ka10094",),
    },
    "sector": {
        "tick": ("ka20004",),
        "minute": ("ka20005",),
        "daily": ("ka20006",),
        "weekly": ("ka20007",),
        "monthly": ("ka20008",),
        "yearly": ("ka20019",),
    },
    "gold": {
        "tick": ("ka50079", "ka50091"),
        "minute": ("ka50080", "ka50092"),
        "daily": ("ka50081",),
        "weekly": ("ka50082",),
        "monthly": ("ka50083",),
    },
}
_BAR_LABEL = {"stock": "주식", "sector": "업종", "gold": "금현물"}
_BAR_PARTITION = {
    "tick": ("year(ts)", "month(ts)", "day(ts)"),
    "minute": ("year(ts)", "month(ts)"),
    "daily": ("year(date)",),
    "weekly": ("year(date)",),
    "monthly": (),
    "yearly": (),
}
_BAR_COMMENTS = {
    "symbol": "종목코드 (업종은 업종코드)",
    "ts": "체결시간 (Asia/Seoul): 봉의 끝 시각, 틱은 체결 시각",
    "date": "일자 (주봉/월봉/년봉은 기간의 첫 거래일이 아닌 키움이 주는 기준일)",
    "trading_date": "거래일 (Asia/Seoul): ts의 한국 날짜, 일별 집계는 GROUP BY date",
    "tic_scope": "틱/분 범위 (요청 tic_scope: 1, 3, 5, 10, 30 ...)",
    "adjusted": "수정주가 적용 여부 (요청 upd_stkpc_tp = 1)",
    "seq": "같은 체결시간(초) 안의 순번, 0부터 시간순",
    "open": "시가",
    "high": "고가",
    "low": "저가",
    "close": "종가 (틱/분봉은 현재가)",
    "volume": "거래량",
    "turnover": "거래대금 (원)",
    RUN_ID: "이 행을 쓴 실행(run)의 id",
}


def _bar_wire(api_id: str, intraday: bool) -> dict[str, str]:
    """The wire field of each bar column of ``api_id`` (turnover only where the chart sends it)."""
    fields = _fields(api_id)
    out = {"ts": "cntr_tm"} if intraday else {"date": "dt"}
    close = "cur_prc" if "cur_prc" in fields else "cntr_pric"
    out |= {"open": "open_pric", "high": "high_pric", "low": "low_pric", "close": close}
    out["volume"] = "trde_qty" if "trde_qty" in fields else "acc_trde_qty"
    money = next((n for n in ("trde_prica", "acc_trde_prica") if n in fields), None)
    if money and not intraday:
        out["turnover"] = money
    return out


def _bar_build(
    ds: Dataset, api_id: str, frame: pl.DataFrame, request: Mapping[str, str], fetched_at: datetime
) -> pl.DataFrame:
    fields = _fields(api_id)
    param = "inds_cd" if "inds_cd" in {s["name"] for s in catalog().tr(api_id).request} else "stk_cd"
    symbol = _check_symbol(ds, request, param)
    intraday = ds.time == "ts"
    wire = _bar_wire(api_id, intraday)
    volume = wire["volume"]
    cols: dict[str, pl.Expr] = {"symbol": _lit_str(symbol)}
    if intraday:
        cols["ts"] = pl.col("cntr_tm").cast(TS)
        # the KST trading day of ts: a daily aggregate is a plain GROUP BY date
        cols["date"] = pl.col("cntr_tm").cast(TS).dt.date()
    else:
        cols["date"] = _to_date(pl.col("dt"), frame.schema["dt"])
    options = ds.option_values(api_id, request)
    if "tic_scope" in options:
        cols["tic_scope"] = pl.lit(options["tic_scope"], pl.Int16)
    if "adjusted" in options:
        cols["adjusted"] = pl.lit(options["adjusted"], pl.Boolean)
    price_type = ds.schema["close"]
    for out in ("open", "high", "low", "close"):
        cols[out] = pl.col(wire[out]).cast(price_type)
    cols["volume"] = pl.when(~pl.col("__saturated")).then(pl.col(volume).cast(pl.Int64))
    if "turnover" in wire:
        if fields[wire["turnover"]].unit is None:
            raise ValueError(f"{api_id}.{wire['turnover']} has no known unit; cannot express turnover in won")
        cols["turnover"] = pl.col(wire["turnover"]).cast(pl.Int64)
    else:
        cols["turnover"] = pl.lit(None, pl.Int64)
    saturated = (pl.col(volume) == SATURATED_VOLUME).fill_null(False).alias("__saturated")
    bars = to_base_units(api_id, frame.with_columns(saturated), fields.values(), request).select(**cols)
    if "seq" in ds.schema:
        # pages come newest first; seq numbers the trades of one second in time order
        bars = bars.reverse().with_columns(seq=pl.int_range(pl.len(), dtype=pl.Int32).over("ts")).reverse()
    return bars


def _bar_dataset(family: str, interval: str, sources: tuple[str, ...]) -> Dataset:
    intraday = interval in ("tick", "minute")
    prices: pl.DataType = pl.Float64() if family == "sector" else pl.Int64()
    takes = {s["name"] for s in catalog().tr(sources[0]).request}
    cols: dict[str, pl.DataType] = {"symbol": pl.String()}
    cols["ts" if intraday else "date"] = TS if intraday else pl.Date()
    if intraday:
        cols["date"] = pl.Date()
    options: list[str] = []
    if "tic_scope" in takes:
        cols["tic_scope"] = pl.Int16()
        options.append("tic_scope")
    if "upd_stkpc_tp" in takes:
        cols["adjusted"] = pl.Boolean()
        options.append("adjusted")
    if interval == "tick":
        cols["seq"] = pl.Int32()
    cols |= {c: prices for c in ("open", "high", "low", "close")}
    cols |= {"volume": pl.Int64(), "turnover": pl.Int64(), RUN_ID: pl.String()}
    time_col = "ts" if intraday else "date"
    key = ("symbol", *options, time_col) + (("seq",) if interval == "tick" else ())
    defaults = {}
    for api in sources:
        body = default_request(api)
        if "upd_stkpc_tp" in body:
            body["upd_stkpc_tp"] = "1"
        if "tic_scope" in body:
            body["tic_scope"] = "1"
        defaults[api] = body
    comments = {c: _BAR_COMMENTS[c] for c in cols}
    if intraday:
        comments["date"] = _BAR_COMMENTS["trading_date"]
    wire = _bar_wire(sources[0], intraday)
    notes = {unit_note(_fields(api)[_bar_wire(api, intraday)["volume"]], api) for api in sources}
    if len(notes) != 1:
        raise ValueError(f"{family}_bars_{interval}: its sources send volume in different units {notes}")
    comments["volume"] = f"거래량 ({notes.pop()}); 서버가 포화값 4294967295(2^32-1)를 보내면 NULL"
    if "turnover" not in wire:
        comments["turnover"] = "거래대금 (원); 틱/분봉 차트는 보내지 않아 항상 NULL"
    if family == "sector":
        comments |= {c: f"{_BAR_COMMENTS[c]} (지수, 실제 지수값)" for c in ("open", "high", "low", "close")}
    return Dataset(
        name=f"{family}_bars_{interval}",
        family=f"{family}_bars",
        style="bars",
        description=f"{_BAR_LABEL[family]} {interval} bars from {', '.join(sources)}",
        sources=sources,
        schema=pl.Schema(cols),
        key=key,
        time=time_col,
        symbol="symbol",
        options=tuple(options),
        partition=_BAR_PARTITION[interval],
        comments=comments,
        defaults=defaults,
        replace_by=key,
        _build=_bar_build,
        wire=wire,
    )


# --------------------------------------------------------------------------- TR datasets


@dataclass(frozen=True)
class _Spec:
    name: str
    api_id: str
    family: str
    style: str  # series | intraday | snapshot | reference
    time_field: str | None = None  # the row's date (series) or time-of-day (intraday) field
    options: tuple[str, ...] = ()  # series/intraday: the request options stored as columns
    key_extra: tuple[str, ...] = ()  # reference: row identity


_SPECS = (
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


def _symbol_param(tr: TR) -> str | None:
    names = {s["name"] for s in tr.request}
    return next((p for p in _SYMBOL_PARAMS if p in names), None)


def _spec_options(spec: _Spec, tr: TR) -> tuple[str, ...]:
    if spec.style in ("snapshot", "reference"):
        symbol = _symbol_param(tr)
        return tuple(s["name"] for s in tr.request if s["name"] != symbol)
    return spec.options


def _intraday_base(api_id: str, request: Mapping[str, str], fetched_at: datetime) -> date:
    text = request.get("date") or request.get("dt")
    if not text:
        return fetched_at.astimezone(KST).date()
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{api_id}: request date {text!r} is not YYYYMMDD") from None


def _tr_build(
    ds: Dataset, api_id: str, frame: pl.DataFrame, request: Mapping[str, str], fetched_at: datetime
) -> pl.DataFrame:
    tr = catalog().tr(api_id)
    spec = _SPEC_BY_NAME[ds.name]
    lead: dict[str, pl.Expr] = {}
    drop: list[str] = []
    param = _symbol_param(tr)
    if ds.symbol and param:
        lead["symbol"] = _lit_str(_check_symbol(ds, request, param))
    if ds.style == "series":
        assert spec.time_field
        lead["date"] = _to_date(pl.col(spec.time_field), frame.schema[spec.time_field])
        drop.append(spec.time_field)
    elif ds.style == "intraday":
        assert spec.time_field
        base = _intraday_base(api_id, request, fetched_at)
        lead["ts"] = (pl.lit(base).dt.combine(pl.col(spec.time_field))).dt.replace_time_zone(
            "Asia/Seoul", ambiguous="raise", non_existent="raise"
        )
        drop.append(spec.time_field)
    else:
        lead["fetched_at"] = pl.lit(fetched_at.astimezone(KST)).cast(TS)
    for opt, value in ds.option_values(api_id, request).items():
        lead[opt] = _lit_str(value)
    if ds.style in ("snapshot", "intraday"):
        lead["row" if ds.style == "snapshot" else "seq"] = pl.int_range(pl.len(), dtype=pl.Int32)
    sent = {**ds.defaults[api_id], **request}
    frame = to_base_units(api_id, frame, tr.row_fields(), sent)
    names = tr_columns(api_id)
    out = frame.select(**lead, **{names[c][0]: pl.col(c) for c in frame.columns if c not in drop})
    if ds.style == "intraday":
        out = out.reverse().with_columns(seq=pl.int_range(pl.len(), dtype=pl.Int32).over("ts")).reverse()
    return out


def _tr_dataset(spec: _Spec) -> Dataset:
    tr = catalog().tr(spec.api_id)
    param = _symbol_param(tr)
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
        RUN_ID: _BAR_COMMENTS[RUN_ID],
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


_SPEC_BY_NAME = {s.name: s for s in _SPECS}


@functools.cache
def _registry() -> dict[str, Dataset]:
    out: dict[str, Dataset] = {}
    for family, intervals in _BAR_SOURCES.items():
        for interval in _BAR_INTERVALS:
            if interval in intervals:
                ds = _bar_dataset(family, interval, intervals[interval])
                out[ds.name] = ds
    for spec in _SPECS:
        out[spec.name] = _tr_dataset(spec)
    from warehouse.stream_datasets import stream_datasets  # it builds Dataset entries of this module

    out |= {ds.name: ds for ds in stream_datasets()}
    return out


BAR_DATASETS = tuple(
    f"{family}_bars_{interval}"
    for family, ivs in _BAR_SOURCES.items()
    for interval in _BAR_INTERVALS
    if interval in ivs
)


@functools.cache
def renames() -> dict[str, dict[str, str]]:
    """Per TR dataset, each column's former (wire) name -> its English name, where they differ.

    What a lake written before the English names needs: ``ALTER TABLE t RENAME COLUMN old TO new``.
    Stream and bar datasets were never renamed.
    """
    out: dict[str, dict[str, str]] = {}
    for spec in _SPECS:
        ds = _registry()[spec.name]
        moved = {ds.wire[c]: c for c in ds.columns if c in ds.wire and c not in (ds.symbol, ds.time)}
        out[spec.name] = {old: new for old, new in moved.items() if old != new}
    return out


@functools.cache
def option_renames() -> dict[str, dict[str, dict[str, str]]]:
    """Per TR dataset, each readable option column -> its former wire code -> its value now.

    After ``renames()``, ``UPDATE t SET measure = CASE measure WHEN '1' THEN 'amount' ... END``;
    coverage and cursor keys (``options_key``) hold the same codes under the wire names.
    """
    out: dict[str, dict[str, dict[str, str]]] = {}
    for spec in _SPECS:
        ds = _registry()[spec.name]
        values = {
            opt: dict(OPTION_VALUES[(spec.api_id, ds.wire[opt])])
            for opt in ds.options
            if (spec.api_id, ds.wire.get(opt, opt)) in OPTION_VALUES
        }
        if values:
            out[spec.name] = values
    return out


def datasets() -> dict[str, Dataset]:
    """Every dataset by name."""
    return dict(_registry())


def dataset(name: str) -> Dataset:
    try:
        return _registry()[name]
    except KeyError:
        known = ", ".join(sorted(_registry()))
        raise KeyError(f"unknown dataset {name!r}; known: {known}") from None
