"""Stop predicates for paging through time: chart and trend TRs page newest first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from connectors.client import Page
from schemas.catalog import catalog
from schemas.kinds import Kind

__all__ = ["oldest_row", "rows_before"]

_TIME_KINDS = (Kind.TIMESTAMP, Kind.DATE)


def _time_field(api_id: str) -> tuple[str, str]:
    tr = catalog().tr(api_id)
    main = tr.main
    if main is None:
        raise ValueError(f"{api_id} has no list of rows to page through")
    for kind in _TIME_KINDS:
        for f in main.items:
            if f.kind == kind:
                return main.key, f.name
    raise ValueError(f"{api_id}: no date or timestamp field in {main.key!r}")


def oldest_row(api_id: str) -> Callable[[Page], str | None]:
    """A function giving the oldest date/timestamp string (``YYYYMMDD...``) on a page."""
    key, name = _time_field(api_id)

    def oldest(page: Page) -> str | None:
        values = [str(row.get(name) or "") for row in page.body.get(key) or () if isinstance(row, dict)]
        values = [v for v in values if v]
        return min(values) if values else None

    return oldest


def rows_before(api_id: str, start: date | datetime) -> Callable[[Page], bool]:
    """``stop`` for ``KiwoomClient.pages``: true once a page reaches rows older than ``start``.

    An empty page also stops: there is nothing older to ask for.
    """
    oldest = oldest_row(api_id)
    bound = start.strftime("%Y%m%d%H%M%S") if isinstance(start, datetime) else start.strftime("%Y%m%d")

    def stop(page: Page) -> bool:
        value = oldest(page)
        return value is None or value[: len(bound)] < bound

    return stop
