"""One batch run at a time per warehouse: the lease in ``meta.runs``, held while a run works.

A batch run (backfill, daily, refresh_universe) opens its ``running`` row with its
holder (``warehouse.lease.Holder``: host, process, expiry) and renews the expiry
from a background thread while it works. A second run that finds a live holder
refuses with a message naming it, or waits with ``wait=True``. Two runs that
start at the same moment both commit their row, then look again: a run goes on
only if it is the only live holder after its own commit, so at most one goes on
(at worst both refuse, and are run again).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from warehouse import Run, Warehouse
from warehouse.lease import BATCH_FLOWS, LEASE_SECONDS, Holder

__all__ = ["LeaseHeld", "StoppedWaiting", "hold", "live_holders"]

log = logging.getLogger(__name__)


class LeaseHeld(Exception):
    """Another batch run works on this warehouse."""


class StoppedWaiting(LeaseHeld):
    """Ctrl-C while waiting for another run (``wait=True``): nothing was recorded."""


@dataclass(frozen=True)
class Other:
    run_id: str
    flow: str
    holder: Holder

    def describe(self) -> str:
        return f"{self.flow} run {self.run_id} ({self.holder.describe()})"


def live_holders(wh: Warehouse, run: Run | None = None) -> list[Other]:
    """The batch runs other than ``run`` whose holder lives."""
    frame = wh.sql(
        "SELECT run_id, flow, summary FROM meta.runs WHERE status = 'running' AND flow IN (SELECT unnest(?))",
        [list(BATCH_FLOWS)],
    )
    out = []
    for run_id, flow, summary in frame.iter_rows():
        if run is not None and run_id == run.id:
            continue
        try:
            holder = Holder.from_summary(json.loads(summary or "{}"))
        except ValueError:
            holder = None
        if holder is not None and holder.alive():
            out.append(Other(run_id, flow, holder))
    return out


def _acquire(wh: Warehouse, run: Run, holder: Holder) -> list[Other]:
    """Open ``run`` with its holder unless another lives; the others seen ([] when acquired).

    When another appears only after our own row committed, our row is closed (``refused``).
    """
    others = live_holders(wh, run)
    if others:
        return others
    wh.record_run(run, "running", holder.as_dict())
    others = live_holders(wh, run)  # look again after our commit: one of two racing runs sees the other
    if others:
        wh.record_run(run, "refused", {"reason": f"{others[0].describe()} started at the same time"})
    return others


@contextmanager
def hold(
    wh: Warehouse,
    run: Run,
    *,
    wait: bool = False,
    notify: Callable[[str], None] | None = None,
    poll: float = 2.0,
    stopping: threading.Event | None = None,
) -> Iterator[Holder]:
    """Hold the batch lease of ``wh`` for ``run`` (its ``running`` row) until the block ends.

    Raises ``LeaseHeld`` when another batch run holds it, unless ``wait`` (then
    ``StoppedWaiting`` if ``stopping`` is set while it waits). The caller
    closes the run (``Warehouse.record_run``) after the block: the heartbeat has stopped then.
    """
    holder = Holder.me()
    told = False
    while others := _acquire(wh, run, holder):
        message = f"another {others[0].describe()} is working on {wh.config.root}; " + (
            "waiting for it to finish" if wait else "let it finish, or rerun with --wait to queue behind it"
        )
        if not wait:
            raise LeaseHeld(message)
        if not told and notify is not None:
            notify(message)
            told = True
        # jittered, so two waiters do not retry in step
        if (stopping or threading.Event()).wait(poll * random.uniform(0.75, 1.25)):
            raise StoppedWaiting(f"stopped while waiting for {others[0].describe()}")
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(wh, run, holder, stop), name="kwh-lease", daemon=True)
    beat.start()
    try:
        yield holder
    finally:
        stop.set()
        beat.join(timeout=30)


def _heartbeat(wh: Warehouse, run: Run, holder: Holder, stop: threading.Event) -> None:
    while not stop.wait(LEASE_SECONDS / 3):
        try:
            holder = holder.renewed()
            wh.record_run(run, "running", holder.as_dict())
        except Exception as exc:  # the catalog busy for a while: the next beat tries again
            log.warning("could not renew the run's lease: %s", exc)
