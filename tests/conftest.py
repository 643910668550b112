"""Shared test fixtures.

Real benchmark data is read from the project's data folder (:mod:`scrit_utils.core.data_dir`: ``SCRIT_DATA_DIR``
or ``SCRIT_SHARED_DATA``, else ../shared/data, else data/real; never copied into the repo). Where it is
absent, the tests that need it (the ``shared_data`` fixture) are skipped and the run ends with one line saying
how to fetch it; with the ``CI`` environment variable set they fail instead, so CI cannot pass without them.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from scrit_utils.core import data_dir, data_sources

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = data_dir.data_dir()

# The machine has 2 cores and tests may run beside other work: keep torch to one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
try:  # torch is optional for pure-Python tests
    import torch

    torch.set_num_threads(1)
except Exception:  # pragma: no cover
    pass


def _data_message() -> str | None:
    missing = data_dir.missing(SHARED_DATA)
    if not missing:
        return None
    return (f"real benchmark data not found at {SHARED_DATA} ({len(missing)} of {len(data_sources.FILES)} files "
            f"missing); fetch it: {data_dir.fetch_command(SHARED_DATA)}  (or set {data_dir.ENV})")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The data folder; every test using it is skipped (failed when ``CI`` is set) where it lacks any file
    of the data table (pytest re-raises a session fixture's skip for each test that asks for it)."""
    msg = _data_message()
    if msg:
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED_DATA


def pytest_terminal_summary(terminalreporter):
    """One line at the end of a run that skipped real-data tests: how many, and the command that fetches the data."""
    msg = _data_message()
    n = sum(1 for r in terminalreporter.stats.get("skipped", []) if msg and msg in str(r.longrepr))
    if n:
        terminalreporter.write_line(f"{n} real-data tests skipped: {msg}")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
