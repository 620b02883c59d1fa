"""Shared test settings: keep torch to the machine's cores and tests deterministic."""

import os

import pytest
import torch
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))

# Property tests draw the same examples on every run (a failure reproduces, CI cannot flake) and write no
# example database into the tree. HYPOTHESIS_PROFILE=explore draws fresh examples, for hunting bugs by hand.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    """Nothing a test builds lands in the user's real decoded-image cache."""
    monkeypatch.setenv("VIREID_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "vireid-cache"))
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: tiny models run several times faster on it when the 2 cores are shared.
    Test areas of tiny models request it from an autouse fixture in their conftest."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
