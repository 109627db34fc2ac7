"""Streamed trades append without a delete unless a stored key may be theirs: each trade stored once.

``warehouse.stream_keys.TradeKeys`` splits a batch of trades into those above the highest stored
cumulative volume of their symbol-day (appended) and the rest (replaced by key). These tests
commit real batches into a lake and count what is stored, including when another writer (the
heal, in another process) commits keys in between.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from warehouse import Run, StreamPosition, Warehouse
from warehouse.commit import Commit, Rows
from warehouse.datasets import RUN_ID, dataset
from warehouse.stream_keys import TRADES, TradeKeys

DAY = date(2025, 12, 29)


def trades(symbol: str, volumes: list[int], source: str = "stream") -> pl.DataFrame:
    """Trades of ``symbol`` on ``DAY`` with these cumulative volumes, typed as the dataset stores them."""
    n = len(volumes)
    cols = {
        "symbol": [symbol] * n,
        "venue": ["KRX"] * n,
        "date": [DAY] * n,
        "ts": [datetime(2025, 12, 29, 9, 0, i % 60) for i in range(n)],
        "price": [70_000] * n,
        "price_dir": [1] * n,
        "change": [500] * n,
        "change_rate": [0.72] * n,
        "size": [10] * n,
        "side": [1] * n,
        "cum_volume": volumes,
        "cum_turnover": [v * 70_000 for v in volumes],
        "source": [source] * n,
        "log_seq": list(range(n)) if source == "stream" else [None] * n,
    }
    schema = {c: t for c, t in dataset(TRADES).schema.items() if c != RUN_ID}
    frame = pl.DataFrame(cols).with_columns(pl.col("ts").dt.replace_time_zone("Asia/Seoul"))
    return frame.with_columns(pl.lit(None).alias(c) for c in schema if c not in frame.columns).select(
        pl.col(c).cast(t) for c, t in schema.items()
    )


def commit_split(
    wh: Warehouse, keys: TradeKeys, run: Run, frame: pl.DataFrame, between=None
) -> tuple[int, int]:
    """What the stream committer does with a batch of trades; (appended, replaced by key)."""
    keys.check()
    fresh, stale = keys.split(frame)
    if between is not None:
        between()
    parts = [Rows(TRADES, p, replace=p is stale) for p in (fresh, stale) if p.height]
    wh.commit(Commit(run, rows=parts))
    keys.committed(run, fresh)
    return fresh.height, stale.height


def stored(wh: Warehouse) -> pl.DataFrame:
    return wh.sql("SELECT symbol, cum_volume, source FROM stock_trades ORDER BY symbol, cum_volume")


@pytest.fixture
def lake(tmp_path):
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        wh.ensure(dataset(TRADES))
        yield wh


def test_new_trades_append_and_a_resent_one_replaces_its_key(lake):
    keys, run = TradeKeys(lake), Run.new("stream")
    assert commit_split(lake, keys, run, trades("005930", [10, 20, 30])) == (3, 0)
    assert commit_split(lake, keys, run, trades("005930", [40, 50])) == (2, 0)
    # the server sends the trade at 50 again, and a new one
    assert commit_split(lake, keys, run, trades("005930", [50, 60])) == (1, 1)
    got = stored(lake)
    assert got["cum_volume"].to_list() == [10, 20, 30, 40, 50, 60]
    assert keys.reloads == 1 and keys.recommits == 0  # read once, then trusted


def test_a_restarted_worker_reads_the_stored_keys(lake):
    run = Run.new("stream")
    commit_split(lake, TradeKeys(lake), run, trades("000660", [5, 6, 7]))
    # a new worker (after a crash) must not append keys an earlier one stored
    assert commit_split(lake, TradeKeys(lake), run, trades("000660", [7, 8])) == (1, 1)
    assert stored(lake)["cum_volume"].to_list() == [5, 6, 7, 8]


def test_another_writer_before_the_split_makes_the_keys_read_again(lake, tmp_path):
    keys, run = TradeKeys(lake), Run.new("stream")
    commit_split(lake, keys, run, trades("005930", [10, 20]))
    with Warehouse(warehouse=tmp_path / "lake") as other:  # the heal, in another process
        other.commit(
            Commit(Run.new("daily"), rows=[Rows(TRADES, trades("005930", [30], "heal"), replace=False)])
        )
    # the stream then receives the trade at 30 itself: it replaces the healed row
    assert commit_split(lake, keys, run, trades("005930", [30, 40])) == (1, 1)
    got = stored(lake)
    assert got["cum_volume"].to_list() == [10, 20, 30, 40]
    assert got.filter(pl.col("cum_volume") == 30)["source"].to_list() == ["stream"]
    assert keys.reloads == 2


def test_another_writer_between_the_split_and_the_commit_is_repaired(lake, tmp_path):
    keys, run = TradeKeys(lake), Run.new("stream")
    commit_split(lake, keys, run, trades("005930", [10, 20]))

    def heal_meanwhile() -> None:
        with Warehouse(warehouse=tmp_path / "lake") as other:
            rows = [Rows(TRADES, trades("005930", [30], "heal"), replace=False)]
            other.commit(Commit(Run.new("daily"), rows=rows))

    # split said 30 and 40 are new; the heal stored 30 before the commit: committed again by key
    assert commit_split(lake, keys, run, trades("005930", [30, 40]), between=heal_meanwhile) == (2, 0)
    assert keys.recommits == 1
    got = stored(lake)
    assert got["cum_volume"].to_list() == [10, 20, 30, 40], "a trade stored twice"
    # and the next batch reads the keys again before trusting them
    assert commit_split(lake, keys, run, trades("005930", [40, 50])) == (1, 1)
    assert stored(lake)["cum_volume"].to_list() == [10, 20, 30, 40, 50]


def test_check_says_whether_anyone_else_committed(lake, tmp_path):
    keys, run = TradeKeys(lake), Run.new("stream")
    assert not keys.check()  # nothing known yet
    keys.committed(run, None)  # as if this committer had committed nothing, but a snapshot of its own
    assert not keys.check()  # the snapshot did not move: no commit of ours was the last one
    lake.commit(Commit(run, rows=[Rows(TRADES, trades("005930", [1]), replace=False)]))
    keys.committed(run, trades("005930", [1]))
    assert keys.check()  # ours was the last commit
    with Warehouse(warehouse=tmp_path / "lake") as other:
        other.commit(
            Commit(Run.new("daily"), rows=[Rows(TRADES, trades("005930", [2], "heal"), replace=False)])
        )
    assert not keys.check()


def test_symbols_and_days_are_kept_apart(lake):
    keys, run = TradeKeys(lake), Run.new("stream")
    commit_split(lake, keys, run, trades("005930", [100, 200]))
    # another symbol's low cumulative volumes are new, not stale
    assert commit_split(lake, keys, run, trades("000660", [1, 2])) == (2, 0)
    assert stored(lake).height == 4


def commit_with_position(wh: Warehouse, keys: TradeKeys, run: Run, frame: pl.DataFrame, at: int) -> None:
    """What the stream committer commits: the trades (appended or replaced) and its log position."""
    keys.check()
    fresh, stale = keys.split(frame)
    parts = [Rows(TRADES, p, replace=p is stale) for p in (fresh, stale) if p.height]
    wh.commit(Commit(run, rows=parts, positions=[StreamPosition("rt", 1, at)]))
    keys.committed(run, fresh)


def test_the_workers_own_merges_and_expiries_keep_the_keys_trusted(lake, tmp_path):
    """A merge of small files and the pruning of old positions change no row: the committer goes on
    trusting what it knows (reading the day's keys again after every merge cost a scan of the day)."""
    keys, run = TradeKeys(lake), Run.new("stream")
    first = lake.snapshot()
    for i in range(4):
        commit_with_position(lake, keys, run, trades("005930", [10 * i + 1, 10 * i + 2]), i)
    assert keys.reloads == 1  # the first check only
    before = lake.snapshot()
    assert lake.merge_small_files([TRADES]) == 3
    assert lake.snapshot() > before  # the merge committed snapshots of its own
    assert keys.check() and keys.reloads == 1 and keys.upkeep == 1
    assert lake.expire_session(first, lake.snapshot()) > 0  # commits no snapshot of its own
    assert keys.check() and keys.reloads == 1 and keys.upkeep == 1
    # trusted, the split still knows every stored key: a trade sent again replaces its key
    commit_with_position(lake, keys, run, trades("005930", [32, 40]), 4)
    assert stored(lake)["cum_volume"].to_list() == [1, 2, 11, 12, 21, 22, 31, 32, 40]
    assert lake.stream_position("rt") == StreamPosition("rt", 1, 4)


@pytest.mark.parametrize("other", ["commit", "sort"])
def test_a_merge_does_not_hide_another_writers_change(lake, tmp_path, other):
    keys, run = TradeKeys(lake), Run.new("stream")
    for i in range(3):
        commit_with_position(lake, keys, run, trades("005930", [10 * i + 1]), i)
    if other == "commit":  # the heal, in another process
        with Warehouse(warehouse=tmp_path / "lake") as heal:
            rows = [Rows(TRADES, trades("005930", [25], "heal"), replace=False)]
            heal.commit(Commit(Run.new("daily"), rows=rows))
    else:  # the day rewritten sorted (a delete and an insert): rows, not only files
        lake.sort_day(TRADES, DAY)
    lake.commit(Commit(run, rows=[Rows(TRADES, trades("005930", [26]), replace=False)]))
    lake.merge_small_files([TRADES])  # the newest snapshot is a merge: what came before counts
    assert not keys.check()
    assert keys.reloads == 2 and keys.upkeep == 0
