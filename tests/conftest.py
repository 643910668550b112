"""Shared test fixtures. Real benchmark data lives in ../shared/data (never copied into the repo)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SCRIT_SHARED_DATA", REPO.parent / "shared" / "data"))

# The machine has 2 cores and tests may run beside other work: keep torch to one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
try:  # torch is optional for pure-Python tests
    import torch

    torch.set_num_threads(1)
except Exception:  # pragma: no cover
    pass


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"real benchmark data not found at {SHARED_DATA} (set SCRIT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
