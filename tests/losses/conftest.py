"""Loss tests run on one thread (tiny tensors; a shared CPU makes extra threads slow)."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield
