"""Fixtures of the run tests."""

from pathlib import Path

import pytest
from fault_cases import train


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "run"
    assert train(out, "--steps", "2") == 0
    return out
