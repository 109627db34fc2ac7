"""Per-TR limits bind, the total budget is still filled: ``kwh backfill`` of five datasets on five TRs
against ``kwh sim --per-tr-rate 1 --rate 5`` (real processes, tests/_flow_procs.py; nothing mocked).

One TR alone gets about 1 request a second; five TRs at once get up to the 5 a second in
total. The rate is measured on the simulator's side: its request counter polled while the
command fetches, from the first request to the last. The issue's target, 0.9 x 5/s, is met
on a quiet machine (4.67/s at load average 3) but not under the suite's load (3.2-3.9/s at
load average 8-20: the client and the simulator each get a fraction of a core), so the test
asserts what only different TRs in flight at once can give, more than two TRs' worth
(the scheduling before, all batches in flight on one or two TRs, got at most 2/s), and
bench/backfill.py measures the target.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from connectors import ConfigError, Settings
from connectors.ratelimit import RateLimiter, RateLimits
from simulator.universe import Universe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flow_procs import KWH, Proc, clean_env, get_json, start_sim, wait_http

SEED, STOCKS = 7, 40
TOTAL, PER_TR = 5.0, 1.0
AT_LEAST = 2.5  # requests/s answered: more than two TRs at 1/s each can give
# five datasets on five TRs, one page each per symbol over a short window
DATASETS = "stock_bars_daily,stock_bars_weekly,stock_bars_monthly,stock_program_trading_daily,short_selling"
SYMBOLS = ",".join(s.code for s in Universe.default(STOCKS, SEED).stocks[:22])  # 5 x 22 = 110 requests
WINDOW = ["--start", "2025-12-01", "--end", "2025-12-05"]
STARTUP = 60.0


class FakeClock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_request_waiting_for_its_tr_never_holds_back_the_other_trs():
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(total=5.0, per_tr=1.0, margin=0.0), clock=clock)
    # three requests of one TR: a second apart (its own limit)
    assert [limiter.reserve("ka10081") for _ in range(3)] == pytest.approx([0.0, 1.0, 2.0])
    # other TRs take the total's free slots in between, not after the booked ka10081 ones
    assert [limiter.reserve(tr) for tr in ("ka10082", "ka10083", "ka90013", "ka10014")] == pytest.approx(
        [0.2, 0.4, 0.6, 0.8]
    )
    assert limiter.reserve("ka10082") == pytest.approx(1.2)  # its own second, the total's next free
    # five TRs at once fill the total: 5 a second
    clock.t = 10.0
    booked = sorted(limiter.reserve(tr) for _ in range(4) for tr in ("a", "b", "c", "d", "e"))
    assert booked == pytest.approx([10.0 + 0.2 * i for i in range(20)])
    # refusals with a known per-TR rate slow the total (from the second in a row), never the TR's rate
    limiter.rejected("ka10081", "api")
    limiter.rejected("ka10081", "api")
    assert limiter.rates()["ka10081"] == pytest.approx(1.0) and limiter.rates()["total"] < 5.0


def test_the_per_tr_rate_comes_from_the_environment():
    env = {"KIWOOM_PER_TR_RATE": "1"}
    assert Settings.load(base_url="http://x", env=env, env_file=None).limits.per_tr == 1.0
    assert Settings.load(base_url="http://x", env={}, env_file=None).limits.per_tr is None  # learned
    with pytest.raises(ConfigError, match="KIWOOM_PER_TR_RATE"):
        Settings.load(base_url="http://x", env={"KIWOOM_PER_TR_RATE": "fast"}, env_file=None)
    with pytest.raises(ConfigError, match="KIWOOM_PER_TR_RATE"):
        Settings.load(base_url="http://x", env={"KIWOOM_PER_TR_RATE": "-1"}, env_file=None)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("per-tr-sim")
    proc, url = start_sim(tmp, clean_env(tmp), STOCKS, SEED, "--per-tr-rate", str(PER_TR), rate=TOTAL)
    try:
        assert wait_http(f"{url}/_sim/stats", proc, STARTUP), proc.output()
        yield url
    finally:
        proc.kill()


class Counter:
    """The simulator's TR request count, polled every 0.1 s: (time, count) whenever it moves."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.moves: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self) -> None:
        last = -1
        while not self.stop.is_set():
            stats = get_json(f"{self.url}/_sim/stats")
            n = int(stats.get("requests", 0))
            if n != last:
                self.moves.append((time.monotonic(), n))
                last = n
            time.sleep(0.1)

    def rate(self, refused: int = 0) -> float:
        """Requests per second, less ``refused`` ones, from the first request seen to the last."""
        (t0, n0), (t1, n1) = self.moves[1], self.moves[-1]
        return (n1 - n0 - refused) / (t1 - t0)


def test_five_trs_at_one_per_second_each_fill_five_per_second_in_total(sim, tmp_path):
    stats = get_json(f"{sim}/_sim/stats")
    before = int(stats.get("requests", 0)), int(stats.get("rejections", 0))
    counter = Counter(sim)
    counter.thread.start()
    env = {**clean_env(tmp_path), "KIWOOM_RATE": str(TOTAL), "KIWOOM_PER_TR_RATE": str(PER_TR)}
    argv = [*KWH, "backfill", "-d", DATASETS, "--symbols", SYMBOLS, *WINDOW,
            "--base-url", sim, "--warehouse", str(tmp_path / "lake")]  # fmt: skip
    proc = Proc(tmp_path, "backfill", argv, env)
    try:
        assert proc.wait(STARTUP + 60) == 0, proc.output()
    finally:
        counter.stop.set()
        counter.thread.join()
        proc.kill()
    stats = get_json(f"{sim}/_sim/stats")
    served = int(stats["requests"]) - before[0]
    rejected = int(stats.get("rejections", 0)) - before[1]
    out = proc.output()
    assert "errors 0" in out and ": ok" in out, out  # every job succeeded
    # a refusal (1700) is retried, not a failure: on a loaded machine the arrival jitter can put a
    # sixth request into the server's one-second window; the rate counts the answered requests only
    assert served - rejected >= 5 * 22, out
    rate = counter.rate(rejected)  # of the requests the server answered
    print(f"{served} requests ({rejected} refused), {rate:.2f}/s answered")
    assert rate >= AT_LEAST, (rate, out)
