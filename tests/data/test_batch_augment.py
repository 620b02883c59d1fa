"""The batched training augmentation equals the per-sample reference, image for image, for the same seeds."""

from __future__ import annotations

import pytest
import torch

from vireid.data.batch_augment import BatchTrainTransform
from vireid.data.config import AugmentConfig, DataConfig
from vireid.data.records import INFRARED, VISIBLE
from vireid.data.transforms import build_train_transform

H, W = 24, 12


def reference(cfg: DataConfig, images: torch.Tensor, modality: list[int], seeds: list[int]) -> torch.Tensor:
    """The per-sample path as the training dataset runs it: the global generator seeded per image."""
    out = []
    state = torch.random.get_rng_state()
    try:
        for img, m, s in zip(images, modality, seeds, strict=True):
            torch.manual_seed(s)
            out.append(build_train_transform(cfg, m)(img))
    finally:
        torch.random.set_rng_state(state)
    return torch.stack(out)


AUGMENTS = [
    AugmentConfig(flip=0.0),
    AugmentConfig(flip=0.5),
    AugmentConfig(flip=0.5, pad=3),
    AugmentConfig(flip=0.5, pad=2, erasing=0.5),
    AugmentConfig(flip=0.5, channel=0.5),
    AugmentConfig(flip=0.5, pad=1, erasing=0.7, channel=0.6, grey=0.3),
    AugmentConfig(flip=1.0, pad=4, erasing=1.0, channel=1.0, grey=1.0),
]


@pytest.mark.parametrize("augment", AUGMENTS, ids=range(len(AUGMENTS)))
def test_batch_equals_per_sample(augment):
    cfg = DataConfig(height=H, width=W, augment=augment)
    g = torch.Generator().manual_seed(7)
    n = 48
    images = torch.randint(0, 256, (n, 3, H, W), dtype=torch.uint8, generator=g)
    modality = [VISIBLE if i % 3 else INFRARED for i in range(n)]
    seeds = torch.randint(2**63 - 1, (n,), generator=g).tolist()
    before = images.clone()
    got = BatchTrainTransform(cfg)(images, modality, seeds)
    assert torch.equal(images, before)  # the input batch is left alone
    assert got.dtype == torch.float32 and got.shape == (n, 3, H, W)
    assert torch.equal(got, reference(cfg, images, modality, seeds))


def test_every_kind_of_choice_is_drawn():
    cfg = DataConfig(height=H, width=W, augment=AugmentConfig(flip=0.5, pad=2, erasing=0.5, channel=0.8, grey=0.3))
    t = BatchTrainTransform(cfg)
    params = [t.draw(s, VISIBLE) for s in range(200)]
    assert {p.flip for p in params} == {True, False}
    assert {p.channel for p in params} == {-1, 0, 1, 2, 3}
    assert {p.grey for p in params} == {True, False}
    assert any(p.erase is None for p in params) and any(p.erase is not None for p in params)
    assert {p.top for p in params} == set(range(5)) and {p.left for p in params} == set(range(5))
    ir = [t.draw(s, INFRARED) for s in range(50)]
    assert all(p.channel == -1 and not p.grey for p in ir)  # visible images only


@pytest.mark.parametrize("cache", [True, False])
def test_training_loader_batches_equal_the_per_sample_path(sysu_root, data_cfg, cache):
    from dataclasses import replace

    from vireid.data.loaders import build_training_data

    aug = AugmentConfig(flip=0.5, pad=1, erasing=0.5, channel=0.5, grey=0.3)
    td = build_training_data(replace(data_cfg, augment=aug, cache=cache), sysu_root, seed=4, progress=False)
    td.sampler.set_epoch(1)
    dataset = td.loader.dataset
    for draws, batch in zip(td.sampler.plan(1), td.loader, strict=True):
        samples = [dataset[d] for d in draws]  # the per-sample reference path
        assert torch.equal(batch["images"], torch.stack([s["images"] for s in samples]))
        for key in ("labels", "modality", "pids", "cameras", "index"):
            assert batch[key].tolist() == [s[key] for s in samples]
