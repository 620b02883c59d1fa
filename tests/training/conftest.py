"""Tiny SynthVI trees and tiny training runs shared by the training tests (kept small: 2 CPU cores)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from vireid.config import Config, load_config

# 12 identities at 32x16: 7 train, 2 validation, 3 test ids; P=2 ids x (2 V + 2 I) -> 3 steps per epoch.
TINY = [
    "data.height=32", "data.width=16", "data.ids_per_batch=2", "data.instances=2", "data.num_workers=0",
    "data.val_split=official", "data.cache=false",
    "model.backbone=mobilenet_v3_small", "model.pretrained=none", "model.share_deep_stages=3", "model.z_dim=16",
    "model.bottleneck_hidden=[32]",
    "schedule.warmup_epochs=1", "schedule.milestones=[2]",
    "train.epochs=2", "train.select=val", "train.eval_every=1", "train.log_every=1", "train.progress=false",
    "train.tensorboard=false", "test.batch_size=64",
]


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny models train several times faster on one intra-op thread when the 2 cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


def tiny_config(*extra: str, recipe: str = "sysu_vd") -> Config:
    return load_config(recipe, [*TINY, *extra])


@pytest.fixture(scope="session")
def tiny():
    """The tiny config builder: ``tiny("train.epochs=1")``."""
    return tiny_config


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    """The tiny recipe as command-line overrides."""
    return list(TINY)


@pytest.fixture(scope="session")
def synth_sysu(tmp_path_factory) -> Path:
    from vireid.data.synthvi import generate

    return generate(tmp_path_factory.mktemp("synth") / "sysu", layout="sysu", num_ids=12, seed=0,
                    height=32, width=16, min_images=2, max_images=3)


@pytest.fixture(scope="session")
def synth_regdb(tmp_path_factory) -> Path:
    from vireid.data.synthvi import generate

    return generate(tmp_path_factory.mktemp("synth") / "regdb", layout="regdb", num_ids=8, seed=0,
                    height=32, width=16, regdb_images=3, regdb_trials=2)


@pytest.fixture(scope="session")
def trained_run(synth_sysu, tmp_path_factory):
    """A finished 2-epoch run (uninterrupted): the reference for resume tests and the round trip."""
    from vireid.training.trainer import train

    run_dir = tmp_path_factory.mktemp("runs") / "uninterrupted"
    with one_thread():
        return train(tiny_config(), run_dir, data_root=synth_sysu)
