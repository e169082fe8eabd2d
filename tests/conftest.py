"""Shared test set-up: two threads (the size of the CI machine) and paths to the fixtures."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
