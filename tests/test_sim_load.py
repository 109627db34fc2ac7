"""The simulator's load mode streams the day over and over as if it went on: no trade key twice."""

from __future__ import annotations

import itertools
from datetime import date

import orjson

from simulator.market import Market
from simulator.universe import Universe
from simulator.ws_feed import Feed, TickCache

DAY = date(2025, 12, 29)


def test_each_pass_over_the_day_raises_the_cumulative_volume():
    universe = Universe.default(20, 7)
    cache = TickCache(Market(universe, 7), 7)
    code = universe.stocks[0].code
    feed = Feed(cache, code, DAY, None)
    feed.types = {"0B", "0D"}
    table = cache.get(code, DAY)
    volumes, books, others = [], [], []
    while feed.loops < 3:
        entries, counts = feed.due(None, 100)
        assert counts == {"0B": len(entries), "0D": len(entries)}
        for text in entries:  # a trade and its book, as the server writes them into a frame
            trade, book = orjson.loads(f"[{text}]")
            volumes.append(int(trade["values"]["13"]))
            books.append(int(book["values"]["13"]))
            others.append({k: v for k, v in trade["values"].items() if k != "13"})
    day_volume = int(table["cum_volume"][-1])
    n = table.height
    assert len(volumes) > 2 * n
    assert all(b > a for a, b in itertools.pairwise(volumes)), "a cumulative volume repeated"
    assert books == volumes  # the book carries the same cumulative volume as its trade
    # a later pass is the first one with the day's volume added per pass, everything else unchanged
    assert volumes[n : 2 * n] == [v + day_volume for v in volumes[:n]]
    assert volumes[2 * n : 3 * n] == [v + 2 * day_volume for v in volumes[:n]][: len(volumes) - 2 * n]
    assert others[n : 2 * n] == others[:n]
