from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "kiwoom-api" / "kiwoom_rest_api.txt"


@pytest.fixture(scope="session")
def reference_path() -> Path:
    if not REFERENCE.exists():
        pytest.skip(f"the vendor reference is not beside the project ({REFERENCE}): ../shared is absent")
    return REFERENCE
