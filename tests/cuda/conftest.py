"""CUDA tests: skipped without CUDA (except the reduced gpu_check, which runs on the CPU)."""

from __future__ import annotations

import os

import pytest

# deterministic cuBLAS for the exact resume test; read when CUDA creates its handles, i.e. after collection
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

TINY = [
    "data.height=32", "data.width=16", "data.ids_per_batch=2", "data.instances=2", "data.num_workers=0",
    "data.val_split=none", "data.cache=false", "model.backbone=resnet10", "model.pretrained=none",
    "model.z_dim=16", "model.bottleneck_hidden=[32]", "schedule.warmup_epochs=1", "schedule.milestones=[2]",
    "train.epochs=2", "train.select=last", "train.eval_every=0", "train.progress=false", "train.tensorboard=false",
    "train.device=cuda",
]


@pytest.fixture(scope="session")
def cuda_tree(tmp_path_factory):
    from vireid.data.synthvi import generate

    return generate(tmp_path_factory.mktemp("cuda") / "sysu", layout="sysu", num_ids=12, seed=0, height=32, width=16,
                    min_images=2, max_images=3)


@pytest.fixture(scope="session")
def cuda_tiny():
    """A tiny sysu_vd config on CUDA: ``cuda_tiny("train.amp=false")``."""
    from vireid.config import load_config

    return lambda *extra: load_config("sysu_vd", [*TINY, *extra])
