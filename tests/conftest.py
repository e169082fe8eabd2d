"""Shared test set-up: two threads (the size of the CI machine) and paths to the fixtures."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and on a loaded 2-core machine two spin-waiting
    OpenMP threads can be many times slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
