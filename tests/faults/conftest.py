"""Fault-injection fixtures: a tiny SynthVI tree, one torch thread, processes killed at the end."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultlib import TINY


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    """The tiny recipe as command-line overrides (the cache folder is set per test by ``VIREID_CACHE_DIR``)."""
    return list(TINY)


@pytest.fixture(scope="session")
def synth_sysu(tmp_path_factory) -> Path:
    from vireid.data.synthvi import generate

    return generate(tmp_path_factory.mktemp("synth") / "sysu", layout="sysu", num_ids=12, seed=0,
                    height=32, width=16, min_images=2, max_images=3)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; any still alive at the end is killed (by its own id)."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=60)
