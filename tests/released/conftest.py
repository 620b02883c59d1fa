"""Released-model tests run on one thread (a shared CPU makes extra threads slow)."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield
