"""Who holds a run: the process behind a ``running`` row of ``meta.runs``, and whether it still lives.

A batch run writes its holder into its ``running`` row's summary: the host, the
process id (with the process's start time, so a reused id is not taken for the
run) and an expiry that the run pushes forward while it works (a heartbeat). A
row whose holder is gone (its process ended on this host, or its expiry passed)
reads as ``interrupted``: a SIGKILLed run does not stay ``running`` forever.

The same rows are the lease of the batch pipeline on one warehouse: a run that
finds another batch run whose holder lives refuses to start (``flows.lease``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["BATCH_FLOWS", "LEASE_SECONDS", "Holder", "holder_alive"]

BATCH_FLOWS = ("backfill", "daily", "refresh_universe")  # one at a time per warehouse
LEASE_SECONDS = 90.0  # a holder not heard of for this long is gone (renewed every third of it)


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown."""
    try:
        stat = open(f"/proc/{pid}/stat", "rb").read()  # noqa: SIM115 - one read
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count from the last ')'
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


@dataclass(frozen=True)
class Holder:
    """The process holding a run: host, process id and start, and until when it is vouched for."""

    host: str
    pid: int
    started: int | None
    expires: datetime

    @classmethod
    def me(cls, seconds: float = LEASE_SECONDS) -> Holder:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _start_ticks(pid), _utcnow() + timedelta(seconds=seconds))

    def renewed(self, seconds: float = LEASE_SECONDS) -> Holder:
        return Holder(self.host, self.pid, self.started, _utcnow() + timedelta(seconds=seconds))

    def as_dict(self) -> dict[str, Any]:
        return {
            "holder": {
                "host": self.host,
                "pid": self.pid,
                "started": self.started,
                "expires": self.expires.isoformat(),
            }
        }

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any] | None) -> Holder | None:
        """The holder recorded in a run's summary, or None (a run from before holders were recorded)."""
        info = (summary or {}).get("holder")
        if not isinstance(info, Mapping):
            return None
        try:
            return cls(
                str(info["host"]),
                int(info["pid"]),
                int(info["started"]) if info.get("started") is not None else None,
                datetime.fromisoformat(str(info["expires"])),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def alive(self, now: datetime | None = None) -> bool:
        """False once the expiry passed, or when the process is gone from this host."""
        if (now or _utcnow()) > self.expires:
            return False
        if self.host != socket.gethostname():
            return True  # another machine's process: its expiry is all we know
        if not _pid_alive(self.pid):
            return False
        return self.started is None or _start_ticks(self.pid) in (None, self.started)

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"


def holder_alive(summary: Mapping[str, Any] | None, now: datetime | None = None) -> bool | None:
    """Whether a running row's holder lives; None when the row names no holder."""
    holder = Holder.from_summary(summary)
    return None if holder is None else holder.alive(now)


def _utcnow() -> datetime:
    return datetime.now(UTC)
