"""Realtime subscriptions as state, and the REG/REMOVE requests that put it on the wire.

Kiwoom registers (item, type) pairs per group (``grp_no``). A REG with
``refresh`` "1" adds to the group, "0" replaces what the group held; REMOVE
drops pairs. At most ``MAX_ITEMS`` items go in one request. The session keeps
the wanted set here and, on a fresh connection, replays it with
``restore_requests`` so the server ends up holding exactly that set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import SubscriptionRefused

__all__ = ["MAX_ITEMS", "Subscriptions", "chunked_requests", "restore_requests"]

MAX_ITEMS = 100
_TYPE = re.compile(r"^[0-9A-Za-z]{2}$")


def _clean(items: Iterable[str], types: Iterable[str]) -> tuple[list[str], list[str]]:
    its = list(dict.fromkeys(str(i).strip() for i in ([items] if isinstance(items, str) else items)))
    tps = list(dict.fromkeys(str(t).strip() for t in ([types] if isinstance(types, str) else types)))
    if not its or any(not i for i in its):
        raise SubscriptionRefused("subscriptions need at least one non-empty item code")
    bad = [t for t in tps if not _TYPE.match(t)]
    if not tps or bad:
        raise SubscriptionRefused(f"realtime types are two characters such as 0B or 0D, got {bad or tps}")
    return its, tps


def chunked_requests(
    trnm: str, grp_no: str, items: list[str], types: list[str], refresh: str | None
) -> list[dict[str, Any]]:
    """REG/REMOVE bodies of at most ``MAX_ITEMS`` items each (refresh is omitted for REMOVE)."""
    out = []
    for i in range(0, len(items), MAX_ITEMS):
        body: dict[str, Any] = {"trnm": trnm, "grp_no": grp_no}
        if refresh is not None:
            body["refresh"] = refresh if i == 0 else "1"  # a replace holds only for the first chunk
        body["data"] = [{"item": items[i : i + MAX_ITEMS], "type": list(types)}]
        out.append(body)
    return out


@dataclass
class Subscriptions:
    """What the session wants registered: group -> item -> types."""

    groups: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def add(
        self, grp_no: str, items: Iterable[str], types: Iterable[str], *, replace: bool = False
    ) -> list[dict]:
        """Record the pairs; return the REG requests that register them on a live connection."""
        its, tps = _clean(items, types)
        group = self.groups.setdefault(grp_no, {})
        if replace:
            group.clear()
        for item in its:
            group.setdefault(item, set()).update(tps)
        return chunked_requests("REG", grp_no, its, tps, "0" if replace else "1")

    def remove(self, grp_no: str, items: Iterable[str], types: Iterable[str]) -> list[dict]:
        """Forget the pairs; return the REMOVE requests for a live connection."""
        its, tps = _clean(items, types)
        group = self.groups.get(grp_no, {})
        for item in its:
            left = group.get(item, set()) - set(tps)
            if left:
                group[item] = left
            else:
                group.pop(item, None)
        if not group:
            self.groups.pop(grp_no, None)
        return chunked_requests("REMOVE", grp_no, its, tps, None)

    def pairs(self) -> set[tuple[str, str, str]]:
        """Every wanted (group, item, type)."""
        return {(g, i, t) for g, items in self.groups.items() for i, ts in items.items() for t in ts}

    def count(self) -> int:
        return len({i for items in self.groups.values() for i in items})

    def snapshot(self) -> Subscriptions:
        return Subscriptions({g: {i: set(ts) for i, ts in items.items()} for g, items in self.groups.items()})


def restore_requests(subs: Subscriptions) -> list[dict[str, Any]]:
    """The REGs that make a fresh connection hold exactly ``subs``.

    Per group, items that want the same types go together; the group's first
    request says ``refresh`` "0" (whatever the server kept is replaced), the
    others "1".
    """
    out: list[dict[str, Any]] = []
    for grp_no in sorted(subs.groups):
        buckets: dict[tuple[str, ...], list[str]] = {}
        for item, types in subs.groups[grp_no].items():
            buckets.setdefault(tuple(sorted(types)), []).append(item)
        first = True
        for types_key, items in sorted(buckets.items()):
            for body in chunked_requests("REG", grp_no, items, list(types_key), "0" if first else "1"):
                out.append(body)
            first = False
    return out
