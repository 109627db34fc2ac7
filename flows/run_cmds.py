"""``kwh backfill``, ``kwh daily``, ``kwh universe``: the flows from the command line.

A run is in-process by default (``flows.runner``: no Prefect, no server); with
``--prefect`` or ``PREFECT_API_URL`` set it runs as a Prefect flow. Exit codes:
0 done, 1 failed (jobs failed, host unreachable, keys refused), 2 bad input,
75 another batch run holds the warehouse, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer
from rich.console import RenderableType
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from connectors import ConfigError, KiwoomError, Settings
from flows.lake_cmds import WarehouseOpt, console, fail, frame_table
from schemas import calendar as cal
from schemas.errors import InputError

if TYPE_CHECKING:
    from flows.progress import RunProgress

BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="Kiwoom-compatible base URL, e.g. the simulator's", show_default=False),
]
HostOpt = Annotated[str | None, typer.Option("--host", help="prod or paper (default $KIWOOM_HOST or prod)")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="show what would be fetched; fetch nothing")]
PrefectOpt = Annotated[
    bool,
    typer.Option(
        "--prefect",
        help="run as a Prefect flow (PREFECT_API_URL's server, else one started for this run); "
        "default: in-process, or Prefect when PREFECT_API_URL is set",
    ),
]
WaitOpt = Annotated[
    bool,
    typer.Option("--wait", help="if another batch run holds the warehouse, wait for it instead of exiting"),
]

EXIT_FAILED, EXIT_BUSY, EXIT_INTERRUPTED = 1, 75, 130


def _quiet_prefect() -> None:
    """Prefect's per-task INFO lines would bury the progress bar; PREFECT_LOGGING_LEVEL still wins."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


_quiet_prefect()  # before anything imports prefect: its settings are read once


def _parse_date(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{name} {text!r} is not a date (YYYY-MM-DD)", 2) from None


def _options(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--option {pair!r}: use FIELD=VALUE, e.g. upd_stkpc_tp=0", 2)
        out[key.strip()] = value.strip()
    return out


def _settings(base_url: str | None, host: str | None) -> Settings:
    try:
        return Settings.load(base_url=base_url, host=host)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None


def _dry_run(jobs: list[Any], rate: float) -> None:
    from flows.estimate import estimate

    if not jobs:
        console.print("nothing to fetch: coverage already has every window asked for")
        return
    est = estimate(jobs, rate)
    console.print(frame_table(est.table, title="dry run: would fetch (nothing fetched)"))
    console.print(
        f"about {est.requests} requests, {timedelta(seconds=round(est.seconds))} at {rate:g} requests/s"
    )


def _check_symbols(names: list[str], symbols: str) -> None:
    """Each code given must fit one of the datasets asked for (a sector code needs sector bars)."""
    from flows.symbols import fits
    from warehouse import dataset

    takers = [dataset(n) for n in names if dataset(n).symbol]
    tokens = [t.strip() for t in symbols.split(",") if t.strip()]
    unfit = [t for t in tokens if takers and not any(fits(ds, t) for ds in takers)]
    if unfit:
        raise fail(
            f"--symbols {', '.join(unfit)}: no dataset asked for takes such codes "
            "(sector codes such as 001 go with sector_bars, gold codes M... with gold_bars)",
            2,
        )


def _plan_rate(base_url: str | None, host: str | None) -> float:
    """The configured request rate, for a plan: no credentials needed (a dry run sends nothing)."""
    try:
        settings = Settings.load(base_url=base_url, host=host, app_key="plan", secret_key="plan")
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    return settings.limits.total or 5.0


def _run_flow(fn: Any, *, prefect: bool = False, wait: bool = False, **params: Any) -> dict[str, Any]:
    """Run the flow ``fn`` (a ``flows.pipeline`` flow or its name) with a progress bar: in-process,
    or under Prefect with ``prefect`` or ``PREFECT_API_URL`` set. Exits 75 when another run holds the lake."""
    from flows import runner
    from flows.lease import LeaseHeld, StoppedWaiting
    from flows.progress import RunProgress

    name = str(getattr(fn, "name", fn))
    use_prefect = prefect or bool(os.environ.get("PREFECT_API_URL"))
    model = RunProgress()
    with _RunBar(model) as progress, _warnings_above(progress):

        def notify(message: str) -> None:
            console.print(f"[yellow]{message}[/yellow]")

        try:
            if not use_prefect:
                return runner.run_in_process(name, params, wait=wait, notify=notify, progress=model)
            return _run_prefect(name, params, model, notify)
        except LeaseHeld as exc:
            raise fail(str(exc), EXIT_INTERRUPTED if isinstance(exc, StoppedWaiting) else EXIT_BUSY) from None
        except runner.RunAborted as exc:  # before the lake was created: nothing recorded
            raise fail(str(exc), EXIT_FAILED) from None


class _RunBar(Progress):
    """One line: what the run does, a bar of requests sent of the estimate, then requests, rows,
    jobs and the ETA at the limiter's rate. Rich redraws it on its own timer (10 a second), reading
    the model each time, so it moves with each request; off a terminal it prints once, at the end."""

    def __init__(self, model: RunProgress) -> None:
        self.model = model  # before Progress's own set-up, which may draw
        super().__init__(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.add_task("planning", total=None, counts="")

    def get_renderables(self) -> Iterator[RenderableType]:
        now = self.model.snapshot()
        finished = now.planned and now.done >= now.total
        for task in self.tasks:  # the one line
            self.update(
                task.id,
                description="done" if finished else now.label[:48],
                completed=max(now.estimated, 1) if finished else min(now.requests, now.estimated),
                total=max(now.estimated, 1) if now.planned else None,
                counts=now.line(),
            )
        yield from super().get_renderables()


@contextmanager
def _warnings_above(progress: Progress) -> Iterator[None]:
    """The client's retry and fallback warnings print above the progress bar, never through it."""
    from rich.logging import RichHandler

    log = logging.getLogger("connectors")
    handler = RichHandler(console=progress.console, show_path=False, show_time=False, markup=False)
    handler.setLevel(logging.WARNING)
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def _run_prefect(name: str, params: dict[str, Any], hook: Any, notify: Any) -> dict[str, Any]:
    """The flow under Prefect; Ctrl-C exits 130 at once (`kwh status` then shows the run interrupted)."""
    import signal

    from flows.prefect_api import prefect_api

    _quiet_prefect()
    notify("starting Prefect... (a few seconds; without --prefect and PREFECT_API_URL a run starts at once)")
    with prefect_api(notify) as url:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flows import pipeline

        flow: Any = getattr(pipeline, name)
        previous = signal.signal(signal.SIGINT, _interrupt_prefect)
        pipeline.progress_hook = hook
        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                result: dict[str, Any] = flow(**params)
                return result
        finally:
            pipeline.progress_hook = None
            signal.signal(signal.SIGINT, previous)


def _interrupt_prefect(signum: int, frame: object) -> None:
    """Ctrl-C under Prefect: task threads cannot be cancelled, so the process ends now. Committed writes
    are whole; the run's row names this process, so `kwh status` shows it interrupted; the server child
    dies with this process."""
    console.print("[yellow]interrupted: committed writes are kept; run the same command to fetch the rest")
    os._exit(EXIT_INTERRUPTED)


def _print_summary(result: dict[str, Any]) -> None:
    rows = result.get("rows", {})
    table = pl.DataFrame(
        {"dataset": [*rows, "(total)"], "rows written": [*rows.values(), sum(rows.values())]},
        schema={"dataset": pl.String, "rows written": pl.Int64},
    )
    console.print(frame_table(table, title=f"run {result['run_id']}: {result['status']}"))
    console.print(
        f"requests {result['requests']}, pages {result['pages']}, rejections {result['rejections']}, "
        f"retries {result['retries']}, errors {result['errors']}, {result['seconds']:.1f} s"
    )
    failed = result.get("failed", [])
    for line in failed[:20]:
        console.print(f"[red]failed:[/red] {line}", soft_wrap=True)
    if len(failed) > 20:
        console.print(f"[red]... and {len(failed) - 20} more failed jobs[/red] (kwh status shows the run)")
    if result.get("error"):
        console.print(f"[red]error:[/red] {result['error']}", soft_wrap=True)
    if result["status"] == "interrupted":
        console.print(
            "interrupted: the rows above are committed and kept; run the same command again to fetch the rest"
        )


def _finish(result: dict[str, Any]) -> None:
    _print_summary(result)
    if result["status"] == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)
    if result["status"] != "ok":
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    @app.command("backfill")
    def backfill_cmd(
        dataset: Annotated[
            list[str], typer.Option("--dataset", "-d", help="dataset or family (repeat or comma-separate)")
        ],
        symbols: Annotated[str, typer.Option(help="codes (005930,000660), kospi, kosdaq or all")] = "all",
        start: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD (default a year back)")] = None,
        end: Annotated[str | None, typer.Option(help="last day, YYYY-MM-DD (default today)")] = None,
        option: Annotated[
            list[str] | None, typer.Option("--option", "-o", help="request option FIELD=VALUE")
        ] = None,
        base_url: BaseUrlOpt = None,
        host: HostOpt = None,
        warehouse: WarehouseOpt = None,
        dry_run: DryRunOpt = False,
        prefect: PrefectOpt = False,
        wait: WaitOpt = False,
    ) -> None:
        """Fetch what the warehouse is missing for datasets x symbols x a window, and write it."""
        from flows.dataset_cmds import check_dataset_names
        from flows.estimate import planning_warehouse
        from flows.plans import build_jobs, expand_datasets

        today = datetime.now(cal.KST).date()
        first = _parse_date(start, "--start") or today - timedelta(days=365)
        last = _parse_date(end, "--end") or today
        if last > today:
            console.print(f"note: --end {last} is in the future; fetching up to today, {today}")
            last = today
        if first > last:
            raise fail(f"--start {first} is after --end {last}", 2)
        opts = _options(option)
        try:
            check_dataset_names(dataset)
            names = expand_datasets(dataset)
            _check_symbols(names, symbols)
            if not dry_run:
                _settings(base_url, host)
            if dry_run or prefect:  # bad symbols/options fail before Prefect starts
                with planning_warehouse(warehouse) as wh:
                    jobs = build_jobs(wh, names, symbols, first, last, opts)
                if dry_run:
                    _dry_run(jobs, _plan_rate(base_url, host))
                    return
            params = dict(
                datasets=names,
                symbols=symbols,
                start=str(first),
                end=str(last),
                options=opts,
                base_url=base_url,
                host=host,
                warehouse=_lake(warehouse),
            )
            result = _run_flow("backfill", prefect=prefect, wait=wait, **params)
        except InputError as exc:  # bad input: one line, exit 2; any other error is a bug
            raise fail(str(exc), 2) from None
        except KiwoomError as exc:
            raise fail(str(exc)) from None
        _finish(result)

    @app.command("daily")
    def daily_cmd(
        dataset: Annotated[
            list[str] | None, typer.Option("--dataset", "-d", help="datasets (default: the daily set)")
        ] = None,
        symbols: Annotated[str, typer.Option(help="codes, kospi, kosdaq or all")] = "all",
        lookback_days: Annotated[int, typer.Option(help="days back for symbols with no coverage yet")] = 30,
        base_url: BaseUrlOpt = None,
        host: HostOpt = None,
        warehouse: WarehouseOpt = None,
        dry_run: DryRunOpt = False,
        prefect: PrefectOpt = False,
        wait: WaitOpt = False,
    ) -> None:
        """The incremental load after the close: every dataset from its coverage to the last final day."""
        from flows.dataset_cmds import check_dataset_names
        from flows.estimate import planning_warehouse
        from flows.plans import DEFAULT_DAILY, expand_datasets, plan_run

        try:
            check_dataset_names(dataset or list(DEFAULT_DAILY))
            names = expand_datasets(dataset or list(DEFAULT_DAILY))
            _check_symbols(names, symbols)
            if not dry_run:
                _settings(base_url, host)
            if dry_run or prefect:  # bad names/symbols fail before Prefect starts
                with planning_warehouse(warehouse) as wh:
                    # the daily run's own plan: each symbol from its coverage's end, new ones the lookback
                    params = {"datasets": names, "symbols": symbols, "lookback_days": lookback_days}
                    _, make_jobs = plan_run("daily", params, wh)
                    jobs = make_jobs(wh)
                if dry_run:
                    _dry_run(jobs, _plan_rate(base_url, host))
                    return
            result = _run_flow(
                "daily",
                prefect=prefect,
                wait=wait,
                datasets=names,
                symbols=symbols,
                lookback_days=lookback_days,
                base_url=base_url,
                host=host,
                warehouse=_lake(warehouse),
            )
        except InputError as exc:  # bad input: one line, exit 2; any other error is a bug
            raise fail(str(exc), 2) from None
        except KiwoomError as exc:
            raise fail(str(exc)) from None
        _finish(result)

    @app.command("universe")
    def universe_cmd(
        base_url: BaseUrlOpt = None,
        host: HostOpt = None,
        warehouse: WarehouseOpt = None,
        dry_run: DryRunOpt = False,
        prefect: PrefectOpt = False,
        wait: WaitOpt = False,
    ) -> None:
        """Refresh the stock list (ka10099) and sector codes (ka10101) used to choose symbols."""
        from flows.plans import UNIVERSE_MARKETS

        if dry_run:
            n = sum(len(m) for m in UNIVERSE_MARKETS.values())
            console.print(
                f"would fetch ka10099 and ka10101 for {n} markets: {n} requests, "
                f"{n / _plan_rate(base_url, host):.1f} s at the configured rate"
            )
            return
        _settings(base_url, host)
        try:
            result = _run_flow(
                "refresh_universe",
                prefect=prefect,
                wait=wait,
                base_url=base_url,
                host=host,
                warehouse=_lake(warehouse),
            )
        except KiwoomError as exc:
            raise fail(str(exc)) from None
        _finish(result)


def _lake(warehouse: Path | None) -> str | None:
    return str(warehouse) if warehouse is not None else None
