"""Determinism that holds on the first run: the run that builds the decoded-image cache trains exactly
like the runs that read it (issue 14: it used to draw one number from torch's global generator)."""

from __future__ import annotations

import pytest
import torch
from faultlib import TINY, assert_same_weights, model_state

from vireid.config import load_config
from vireid.data.cache import build_cache, check_images
from vireid.data.training_sets import load_training_set
from vireid.training.trainer import train

pytestmark = pytest.mark.slow


def test_building_the_cache_leaves_the_global_generators_alone(synth_sysu, tmp_path):
    records = load_training_set("sysu", synth_sysu).records
    for workers in (0, 1):
        before = torch.get_rng_state()
        build_cache(records, synth_sysu, 32, 16, tmp_path / f"cache{workers}", num_workers=workers, progress=False)
        check_images(records, synth_sysu, skip_corrupt=False, num_workers=workers, progress=False)
        assert torch.equal(torch.get_rng_state(), before), f"num_workers={workers}"


def test_the_run_that_builds_the_cache_trains_like_the_runs_that_read_it(synth_sysu, tmp_path):
    cache = tmp_path / "cache"
    runs = []
    for i in range(2):
        cfg = load_config("sysu_vd", [*TINY, f"data.cache_dir={cache}"])
        runs.append(train(cfg, tmp_path / f"run{i}", data_root=synth_sysu))
        if i == 0:
            assert any(cache.glob("*.npy")), "the first run built the cache"
    first, second = runs
    assert_same_weights(model_state(first.last_checkpoint), model_state(second.last_checkpoint))
    assert [h["loss"] for h in first.history] == [h["loss"] for h in second.history]
