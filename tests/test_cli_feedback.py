"""What ``kwh`` says back: one-line errors with exit 2 for bad input, notes, and reports.

The simulator runs in a thread (``SimServer``); ``kwh`` runs in-process through Typer's
runner, as a user's shell would run it (arguments, exit code, output).
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from flows.cli import app
from schemas import calendar as cal
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def sim():
    with SimServer(Simulator(SimConfig(n_stocks=40, rate_limit=None))) as server:
        yield server


@pytest.fixture(scope="module")
def lake(tmp_path_factory, sim):
    root = tmp_path_factory.mktemp("feedback") / "lake"
    result = runner.invoke(app, ["universe", "--base-url", sim.base_url, "--warehouse", str(root)], env=WIDE)
    assert result.exit_code == 0, result.output
    return root


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("upd_stkpc_tp=7", "upd_stkpc_tp='7' is not one of 0, 1"),
        ("upd_stkpc_tp=x", "upd_stkpc_tp='x' is not one of 0, 1"),
        ("tic_scope=7", "tic_scope='7' is not one of"),
    ],
)
def test_an_option_value_the_tr_does_not_take_is_one_line(lake, option, message):
    dataset = "stock_bars_minute" if option.startswith("tic") else "stock_bars_daily"
    args = [
        "backfill",
        "-d",
        dataset,
        "--symbols",
        "005930",
        "-o",
        option,
        "--warehouse",
        str(lake),
        "--dry-run",
    ]
    assert message in one_line_error(runner.invoke(app, args, env=WIDE))


def test_readable_options_still_work(lake):
    args = ["backfill", "-d", "stock_investor_institution", "--symbols", "005930", "-o",
            "measure=quantity", "--start", "2025-01-02", "--end", "2025-01-31", "--warehouse", str(lake),
            "--dry-run"]  # fmt: skip
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert "stock_investor_institution" in result.output
    bad = runner.invoke(app, [*args[:6], "measure=shares", *args[7:]], env=WIDE)
    assert "measure='shares' is not one of amount, quantity" in one_line_error(bad)


def test_a_misspelled_dataset_gets_did_you_mean(lake):
    result = runner.invoke(app, ["backfill", "-d", "stock_bars_daly", "--warehouse", str(lake)], env=WIDE)
    assert "did you mean stock_bars_daily" in one_line_error(result)
    result = runner.invoke(app, ["daily", "-d", "investr", "--warehouse", str(lake), "--dry-run"], env=WIDE)
    assert "did you mean investor" in one_line_error(result)


def test_kwh_datasets_lists_datasets_families_and_trs():
    result = runner.invoke(app, ["datasets"], env=WIDE)
    assert result.exit_code == 0, result.output
    for text in ("stock_bars_daily", "ka10081", "program_trading_trend_intraday", "ka90005", "families"):
        assert text in result.output
    only = runner.invoke(app, ["datasets", "short"], env=WIDE)
    assert "short_selling" in only.output and "stock_bars_daily" not in only.output


def test_stock_symbols_apply_only_to_the_datasets_they_fit(lake):
    """The default daily set has sector and gold bars: a stock code is not sent to them."""
    result = runner.invoke(
        app, ["daily", "--symbols", "005930", "--warehouse", str(lake), "--dry-run"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "stock_bars_daily" in result.output and "sector_bars_daily" not in result.output
    mixed = runner.invoke(
        app, ["daily", "--symbols", "005930,001", "--warehouse", str(lake), "--dry-run"], env=WIDE
    )
    assert mixed.exit_code == 0 and "sector_bars_daily" in mixed.output, mixed.output
    wrong = runner.invoke(
        app,
        ["backfill", "-d", "sector_bars_daily", "--symbols", "005930", "--warehouse", str(lake)],
        env=WIDE,
    )
    assert "no dataset asked for takes such codes" in one_line_error(wrong)


def test_an_end_in_the_future_is_clamped_to_today_with_a_note(lake):
    today = datetime.now(cal.KST).date()
    start, end = today - timedelta(days=20), today + timedelta(days=30)
    args = ["backfill", "-d", "stock_bars_daily", "--symbols", "005930", "--start", str(start),
            "--end", str(end), "--warehouse", str(lake), "--dry-run"]  # fmt: skip
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert f"fetching up to today, {today}" in " ".join(result.output.split())


def test_negative_counts_are_one_line_errors(lake):
    result = runner.invoke(app, ["status", "--runs", "-1", "--warehouse", str(lake)], env=WIDE)
    assert "--runs -1" in one_line_error(result)


def test_sim_on_a_used_port_fails_before_its_banner():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["sim", "--port", str(port)], env=WIDE)
    line = one_line_error(result)
    assert f"127.0.0.1:{port}" in line and "Kiwoom simulator on" not in result.output


def test_compact_reports_the_files_before_and_after(sim, lake):
    for month in ("2025-01", "2025-02", "2025-03"):
        args = ["backfill", "-d", "stock_bars_daily", "--symbols", "005930", "--start", f"{month}-01",
                "--end", f"{month}-28", "--base-url", sim.base_url, "--warehouse", str(lake)]  # fmt: skip
        assert runner.invoke(app, args, env=WIDE).exit_code == 0
    plan = runner.invoke(app, ["compact", "--dry-run", "--warehouse", str(lake)], env=WIDE)
    assert plan.exit_code == 0, plan.output
    assert "data files" in plan.output and "would expire" in plan.output
    done = runner.invoke(app, ["compact", "--older-than", "0s", "--warehouse", str(lake)], env=WIDE)
    assert done.exit_code == 0, done.output
    line = next(x for x in done.output.splitlines() if x.startswith("data files"))
    before, after = (int(n) for n in line.split(";")[0].removeprefix("data files ").split(" -> "))
    assert after < before, line


def test_retry_warnings_print_above_the_progress_line(tmp_path):
    from simulator.app import Faults

    faulty = Simulator(SimConfig(n_stocks=40, rate_limit=None, faults=Faults(error_rate=0.3, seed=3)))
    with SimServer(faulty) as server:
        lake = str(tmp_path / "lake")
        args = ["backfill", "-d", "stock_bars_daily", "--symbols", "005930,000660", "--start", "2015-01-02",
                "--end", "2025-12-30", "--base-url", server.base_url, "--warehouse", lake]  # fmt: skip
        result = runner.invoke(app, args, env=WIDE)
    warnings = [line for line in result.output.splitlines() if "retrying in" in line]
    assert warnings, result.output
    # each warning is a line of its own (the log record), not text run into the progress bar
    assert all(line.lstrip().startswith(("WARNING", "ka10081")) for line in warnings), result.output
    assert "jobs" in result.output and "eta" in result.output


def test_coverage_is_what_was_fetched_and_a_snapshot_is_fetched_once_a_day(sim, tmp_path):
    """ka10009 answers only the current day: a month asked for covers that day alone. Snapshots,
    with date options (ka10058) or without (ka90003), are fetched once a day: one fetched_at copy."""
    from warehouse import Warehouse
    from warehouse.tr_datasets import current_day

    lake = str(tmp_path / "lake")
    names = "stock_institution,investor_daily_trading_stocks,program_net_buying_top50"
    start = str(datetime.now(cal.KST).date() - timedelta(days=30))
    args = ["backfill", "-d", names, "--symbols", "005930", "--start", start, "--base-url", sim.base_url,
            "--warehouse", lake]  # fmt: skip
    for _ in range(2):
        result = runner.invoke(app, args, env=WIDE)
        assert result.exit_code == 0, result.output
    with Warehouse(warehouse=lake) as wh:
        cov = wh.coverage("stock_institution")
        day = current_day(datetime.now(cal.KST))
        assert cov["start_date"].to_list() in ([day], []) and cov["end_date"].to_list() in ([day], [])
        for name in ("investor_daily_trading_stocks", "program_net_buying_top50"):
            assert wh.sql(f"SELECT count(DISTINCT fetched_at) AS n FROM {name}")["n"][0] == 1


def test_bad_input_is_the_projects_own_error_and_a_plain_value_error_is_a_bug():
    from flows.cli import environment_error
    from schemas.errors import InputError, SchemaError, UnknownNameError

    assert environment_error(InputError("start 2025-03-01 is after end 2025-02-01")) == (
        "start 2025-03-01 is after end 2025-02-01",
        2,
    )
    assert environment_error(UnknownNameError("unknown dataset 'x'")) == ("unknown dataset 'x'", 2)
    for bug in (ValueError("a bug"), KeyError("a bug"), SchemaError("wire data the schema does not fit")):
        assert environment_error(bug) is None  # a traceback and exit 1
