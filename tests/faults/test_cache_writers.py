"""Two processes building the same decoded-image cache: one builds, the other waits for it and reuses it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from faultlib import cli_env

from vireid.data.cache import load_resized
from vireid.data.training_sets import load_training_set

pytestmark = pytest.mark.slow

BUILDER = Path(__file__).with_name("cache_builder.py")


def _waiting_on_a_lock(pid: int) -> bool | None:
    """Whether ``pid`` waits for a file lock (/proc/locks lists blocked requests as ``->``); None if unknown."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    return any("->" in line and f" {pid} " in line for line in text.splitlines())


def test_two_processes_build_the_same_cache_once(synth_sysu, tmp_path):
    cache_dir, go = tmp_path / "cache", tmp_path / "go"
    env = cli_env()
    first = subprocess.Popen([sys.executable, str(BUILDER), str(synth_sysu), str(cache_dir), str(go)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = None
    try:
        deadline = time.monotonic() + 300  # guards against a hang, not timing assertions
        while not list(cache_dir.glob(".*.tmp")) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the first holds the lock and is writing its temporary array
        assert first.poll() is None
        second = subprocess.Popen([sys.executable, str(BUILDER), str(synth_sysu), str(cache_dir)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        waited = _waiting_on_a_lock(second.pid)
        while not waited and waited is not None and second.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            waited = _waiting_on_a_lock(second.pid)
        go.touch()
        out1, out2 = first.communicate(timeout=300)[0], second.communicate(timeout=300)[0]
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, (out1, out2)
    assert "building decoded-image cache" in out1 and "building decoded-image cache" not in out2
    if waited:
        assert "built by another process" in out2
    array = Path(out1.splitlines()[-1])
    assert out2.splitlines()[-1] == str(array)
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted([array.name, array.stem + ".json",
                                                                  array.stem + ".lock"])
    records = load_training_set("sysu", synth_sysu).records
    arr = np.load(array)
    for i in (0, 3, len(records) - 1):
        assert np.array_equal(arr[i], load_resized(synth_sysu / records[i].path, 32, 16).permute(1, 2, 0).numpy())

