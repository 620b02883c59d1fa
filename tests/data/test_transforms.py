"""Transforms: shapes, normalisation, determinism, each augmentation doing what it says."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torchvision.transforms.v2 import Normalize, ToDtype
from torchvision.transforms.v2 import functional as F

from vireid.data.config import AugmentConfig, DataConfig
from vireid.data.records import INFRARED, VISIBLE
from vireid.data.transforms import (
    ChannelAugment,
    ScaleNormalize,
    build_test_transform,
    build_train_transform,
    resize_image,
)
from vireid.errors import ConfigError

H, W = 16, 8


def cfg(**aug) -> DataConfig:
    return DataConfig(height=H, width=W, augment=AugmentConfig(**{"flip": 0.0, **aug}))


def image(seed=0, h=H, w=W) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_test_transform_resizes_and_normalises():
    c = cfg()
    out = build_test_transform(c)(torch.full((3, 40, 20), 128, dtype=torch.uint8))
    assert out.shape == (3, H, W) and out.dtype == torch.float32
    expect = (128 / 255 - torch.tensor(c.mean)) / torch.tensor(c.std)
    torch.testing.assert_close(out[:, 3, 2], expect)


def test_resize_image_keeps_uint8_and_skips_same_size():
    img = image(h=50, w=30)
    assert resize_image(img, H, W).shape == (3, H, W) and resize_image(img, H, W).dtype == torch.uint8
    same = image()
    assert resize_image(same, H, W) is same


def test_train_transform_plain_is_normalisation_only():
    img = image()
    torch.testing.assert_close(build_train_transform(cfg())(img), build_test_transform(cfg())(img))


def test_flip():
    img = image()
    out = build_train_transform(cfg(flip=1.0))(img)
    torch.testing.assert_close(out, build_test_transform(cfg())(F.horizontal_flip(img)))


def test_pad_and_crop_keeps_size_and_shifts():
    img = image()
    t = build_train_transform(cfg(pad=3))
    outs = [t(img) for _ in range(8)]
    assert all(o.shape == (3, H, W) for o in outs)
    assert any(not torch.equal(o, outs[0]) for o in outs)


def test_random_erasing_changes_a_region_to_zero():
    img = image()
    out = build_train_transform(cfg(erasing=1.0))(img)
    plain = build_test_transform(cfg())(img)
    changed = (out != plain).any(0)
    assert changed.any() and (out[:, changed] == 0).all()


def test_channel_augment_gives_one_channel_or_grey():
    img = image()
    grey = F.rgb_to_grayscale(img, num_output_channels=3)
    kinds = set()
    aug = ChannelAugment(1.0)
    for _ in range(40):
        out = aug(img)
        assert out.shape == img.shape and torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
        match = [c for c in range(3) if torch.equal(out[0], img[c])] or (["grey"] if torch.equal(out, grey) else [])
        assert match
        kinds.add(match[0])
    assert kinds == {0, 1, 2, "grey"}
    assert torch.equal(ChannelAugment(0.0)(img), img)


def test_channel_augment_is_for_visible_only():
    c = cfg(channel=1.0)
    assert any(isinstance(s, ChannelAugment) for s in build_train_transform(c, VISIBLE).transforms)
    assert not any(isinstance(s, ChannelAugment) for s in build_train_transform(c, INFRARED).transforms)


def test_deterministic_under_a_seed():
    t = build_train_transform(cfg(flip=0.5, pad=2, erasing=0.5, channel=0.5))
    img = image()

    def run(seed):
        torch.manual_seed(seed)
        return [t(img) for _ in range(5)]

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=False))


@pytest.mark.parametrize(
    "change, name",
    [({"height": 0}, "height"), ({"val_split": "x"}, "val_split"), ({"dataset": "market"}, "dataset"),
     ({"augment": AugmentConfig(flip=2.0)}, "augment.flip"), ({"std": (1.0, 0.0, 1.0)}, "std"),
     ({"dataset": "regdb", "val_split": "official"}, "official"), ({"dataset": "regdb", "trial": 11}, "trial")],
)
def test_config_validation(change, name):
    with pytest.raises(ConfigError, match=name):
        replace(DataConfig(), **change).validate()
    DataConfig().validate()


def test_default_cache_dir_is_not_in_the_dataset(monkeypatch, tmp_path):
    monkeypatch.delenv("VIREID_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    c = DataConfig(root=str(tmp_path / "data"))
    assert c.resolved_cache_dir() == tmp_path / "xdg" / "vireid" / "images"
    assert DataConfig(cache_dir="/x").resolved_cache_dir().as_posix() == "/x"


def test_fused_normalisation_equals_torchvision():
    c = DataConfig()
    img = image()
    ref = Normalize(mean=list(c.mean), std=list(c.std))(ToDtype(torch.float32, scale=True)(img))
    torch.testing.assert_close(ScaleNormalize(c.mean, c.std)(img), ref)
