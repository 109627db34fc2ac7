from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The slowest files (``pytest --durations``, seconds on the 2-core machine), run first: the workers take
# whole files (``--dist loadfile``) and a slow one started last is a tail only one worker works on.
SLOW_FIRST = (
    "test_prefect_deploy.py",  # 240 (with the stream deployment's tests: one server)
    "test_warehouse.py",  # 160
    "test_lake_safety.py",  # 150
    "test_flows_resume.py",  # 135
    "test_stream_kill.py",  # 115
    "test_run_control.py",  # 100
    "test_stream_heal.py",  # 90
    "test_warehouse_processes.py",  # 75
    "test_write_cost.py",  # 65
    "test_plan.py",  # 50
    "test_notebook.py",  # 45
    "test_stream_worker.py",  # 45
    "test_every_dataset.py",  # 35
    "test_per_tr.py",  # 32
)
REFERENCE = ROOT.parent / "shared" / "kiwoom-api" / "kiwoom_rest_api.txt"


@pytest.fixture(scope="session")
def reference_path() -> Path:
    if not REFERENCE.exists():
        pytest.skip(f"the vendor reference is not beside the project ({REFERENCE}): ../shared is absent")
    return REFERENCE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of ``SLOW_FIRST`` first, in its order; the rest as collected (the sort is stable)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
