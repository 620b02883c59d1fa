"""The CUDA training path (skipped without CUDA): mixed-precision steps, channels_last, resume with a GradScaler."""

from __future__ import annotations

import math

import pytest
import torch

from vireid.training import checkpoint as ckpt
from vireid.training.hooks import StopAfterEpoch, default_hooks
from vireid.training.trainer import Trainer, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _trainer(config, root, run_dir):
    t = Trainer(config, run_dir, data_root=root, hooks=[])
    t.setup()
    t.model.train()
    return t


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_an_amp_step_is_finite(cuda_tree, cuda_tiny, tmp_path, dtype):
    if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    t = _trainer(cuda_tiny("train.amp=true", f"train.amp_dtype={dtype}"), cuda_tree, tmp_path / dtype)
    assert t.use_amp and t.amp_dtype == getattr(torch, dtype)
    assert (t.scaler is not None and t.scaler.is_enabled()) == (dtype == "float16")
    for batch, _ in zip(t.data.loader, range(3), strict=False):
        terms = t.run_step(batch)
        assert all(math.isfinite(v) for v in terms.values())
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_fp32_channels_last_equals_contiguous(cuda_tree, cuda_tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    a = _trainer(cuda_tiny("train.amp=false", "train.channels_last=true"), cuda_tree, tmp_path / "cl")
    b = _trainer(cuda_tiny("train.amp=false", "train.channels_last=false"), cuda_tree, tmp_path / "plain")
    batch = next(iter(a.data.loader))
    torch.manual_seed(0)
    ta = a.run_step(batch)
    torch.manual_seed(0)
    tb = b.run_step(batch)
    for key in ta:
        assert ta[key] == pytest.approx(tb[key], rel=1e-4, abs=1e-5), key
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-3, atol=1e-5)


def test_resume_with_a_grad_scaler_is_exact(cuda_tree, cuda_tiny, tmp_path):
    cfg = cuda_tiny("train.amp=true", "train.amp_dtype=float16", "train.deterministic=true")
    try:
        whole = train(cfg, tmp_path / "whole", data_root=cuda_tree)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "part", data_root=cuda_tree, hooks=[*default_hooks(), StopAfterEpoch(1)])
        resumed = train(cfg, tmp_path / "part", resume=True)
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = ckpt.load_checkpoint(whole.last_checkpoint), ckpt.load_checkpoint(resumed.last_checkpoint)
    assert a["scaler"] is not None and a["scaler"] == b["scaler"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
