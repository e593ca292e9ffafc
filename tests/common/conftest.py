"""Fixtures shared by the tests of hyperplex.common."""

from __future__ import annotations

import pytest


@pytest.fixture
def single_thread():
    """One torch thread: tiny models gain nothing from threads, and the shared CI machine is easily oversubscribed."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
