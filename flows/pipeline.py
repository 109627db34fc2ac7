"""Prefect flows: backfill, daily, refresh_universe (the deployments in prefect.yaml).

Thin over ``flows.runner``: a flow is ``runner.execute`` with its batches submitted
as Prefect tasks (one per TR and symbol batch, each with its own client; the rate
limiter is shared by the whole process), and a table artifact of the summary.
Tasks are not retried by Prefect: the client retries transient errors, once, and
a job's permanent error is its own failure (named in the summary), not its batch's.
The command line runs the same functions in-process unless asked for Prefect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.futures import as_completed

from flows import runner
from flows.ingest import Job
from flows.plans import DEFAULT_DAILY, build_jobs, expand_datasets
from flows.runner import Progress, Summary, Target
from warehouse import Run

__all__ = [
    "DEFAULT_DAILY",
    "Target",
    "backfill",
    "build_jobs",
    "daily",
    "expand_datasets",
    "refresh_universe",
]

# Set by the command line to draw progress; called as (done, total, label).
progress_hook: Progress | None = None


@task(task_run_name="fetch {label}")
def fetch_batch(
    target: Target, jobs: list[Job], run: Run, label: str, now: datetime | None = None
) -> Summary:
    """Fetch and write a batch of jobs (one TR, a few symbols); each job's failure is in the summary."""
    return runner.fetch_batch(target, jobs, run, now)


def _submit(
    target: Target,
    batches: list[list[Job]],
    run: Run,
    now: datetime | None,
    summary: Summary,
    progress: Progress | None,
) -> None:
    futures = {}
    for batch in batches:
        first, last = batch[0], batch[-1]
        label = f"{first.dataset} {first.symbol or ''}..{last.symbol or ''} ({len(batch)} windows)"
        futures[fetch_batch.submit(target, batch, run, label, now)] = label
    total = sum(len(b) for b in batches)
    if progress is not None:
        progress(0, total, "starting")
    for future in as_completed(list(futures)):
        summary.merge(future.result())  # RunAborted (the host, the keys) ends the run here
        if progress is not None:
            progress(summary.jobs, total, futures[future])


def _run(name: str, title: str, params: dict[str, Any]) -> dict[str, Any]:
    result = runner.execute(
        name, params, _submit, progress=progress_hook, notify=lambda m: get_run_logger().warning(m)
    )
    if result.get("error"):
        get_run_logger().error("%s", result["error"])
    rows = [{"dataset": n, "rows": r} for n, r in sorted(result["rows"].items())]
    rows.append({"dataset": "(total)", "rows": sum(result["rows"].values())})
    counts = {k: result[k] for k in ("requests", "pages", "rejections", "retries", "errors")}
    try:
        create_table_artifact(
            key=f"{name.replace('_', '-')}-summary",
            table=[{**row, **counts, "seconds": round(result["seconds"], 1)} for row in rows],
            description=f"{title}: run {result['run_id']}, {result['status']}",
        )
    except Exception as exc:
        get_run_logger().warning("could not create the summary artifact: %s", exc)
    return result


@flow(name="backfill", log_prints=True)
def backfill(
    datasets: list[str] | str = "stock_bars_daily",
    symbols: list[str] | str = "all",
    start: str | None = None,
    end: str | None = None,
    options: dict[str, str] | None = None,
    base_url: str | None = None,
    host: str | None = None,
    warehouse: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Fetch what coverage says is missing for datasets x symbols x [start, end], and write it."""
    params = dict(locals())
    return _run("backfill", f"backfill {', '.join(expand_datasets(datasets))}", params)


@flow(name="daily", log_prints=True)
def daily(
    datasets: list[str] | str = list(DEFAULT_DAILY),  # noqa: B006 - Prefect parameters are values
    symbols: list[str] | str = "all",
    lookback_days: int = 30,
    base_url: str | None = None,
    host: str | None = None,
    warehouse: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The incremental load after the close: each dataset from its coverage up to the last final day.

    Symbols with no coverage yet start ``lookback_days`` back. Running it twice does no extra work.
    Then today's unhealed stream gaps are healed from the tick chart (when ``stock_trades`` exists).
    """
    return _run("daily", "daily", dict(locals()))


@flow(name="refresh_universe", log_prints=True)
def refresh_universe(
    base_url: str | None = None,
    host: str | None = None,
    warehouse: str | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The stock list (ka10099: KOSPI, KOSDAQ, gold) and sector codes (ka10101) into reference datasets.

    A market already refreshed today is skipped unless ``force``.
    """
    return _run("refresh_universe", "universe", dict(locals()))
