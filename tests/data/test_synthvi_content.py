"""SynthVI's cues are where they should be: colour identifies within visible, infrared has no colour,
thermal attributes are independent of colours, and the config refuses bad knobs."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PIL import Image

from vireid.data import sysu
from vireid.data.synthvi import SynthConfig, generate, sample_identity
from vireid.data.synthvi.cameras import SYSU_CAMERAS, make_camera
from vireid.errors import ConfigError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("synth") / "c", num_ids=20, seed=11, min_images=3, max_images=3,
                    height=64, width=32)
    index = sysu.index_images(root, list(range(1, 21)), (1, 2, 3, 4, 5, 6))
    return {k: [np.asarray(Image.open(root / p), dtype=np.float64) for p in v] for k, v in index.items()}


def _hue_hist(img: np.ndarray) -> np.ndarray:
    """Hue x saturation histogram of the central part, dark and grey pixels in their own bins."""
    h, w = img.shape[:2]
    hsv = np.asarray(Image.fromarray(img[h // 8: -h // 8, w // 4: -w // 4].astype(np.uint8)).convert("HSV"),
                     dtype=np.int64).reshape(-1, 3)
    bins = np.where(hsv[:, 2] < 40, 0, np.where(hsv[:, 1] < 60, 1 + hsv[:, 2] * 3 // 256,
                                                4 + (hsv[:, 0] * 12 // 256) * 2 + (hsv[:, 1] >= 140)))
    hist = np.bincount(bins, minlength=28).astype(np.float64)
    return np.sqrt(hist / hist.sum())


def test_colour_identifies_within_visible_across_cameras(dataset):
    feats, pids, cams = [], [], []
    for (cam, pid), imgs in dataset.items():
        if cam in sysu.VISIBLE_CAMERAS:
            feats += [_hue_hist(i) for i in imgs]
            pids += [pid] * len(imgs)
            cams += [cam] * len(imgs)
    f, p, c = np.asarray(feats), np.asarray(pids), np.asarray(cams)
    d = ((f[:, None] - f[None]) ** 2).sum(-1)
    same, other_cam = p[:, None] == p[None], c[:, None] != c[None]
    assert d[same & other_cam].mean() < 0.6 * d[~same].mean()
    d[~other_cam] = np.inf  # nearest neighbour in another camera
    rank1 = (p[d.argmin(1)] == p).mean()
    assert rank1 > 0.4, rank1  # chance is 1/20


def test_infrared_carries_no_colour(dataset):
    for (cam, _), imgs in dataset.items():
        for img in imgs:
            spread = np.ptp(img, axis=2).max()
            assert (spread == 0) == (cam in sysu.INFRARED_CAMERAS)


def test_infrared_has_lower_contrast_and_more_blur_than_visible(dataset):
    def contrast(cams):  # spread of 4x4 block means: structure, not pixel noise
        return np.mean([i.mean(2).reshape(16, 4, 8, 4).mean((1, 3)).std()
                        for (c, _), imgs in dataset.items() if c in cams for i in imgs])

    assert contrast(sysu.INFRARED_CAMERAS) < 0.8 * contrast(sysu.VISIBLE_CAMERAS)
    cams = {c: make_camera(11, spec, 64, 32, 1.0) for c, spec in SYSU_CAMERAS.items()}
    assert min(cams[c].blur for c in (3, 6)) > max(cams[c].blur for c in (1, 2, 4, 5))


def test_thermal_attributes_are_independent_of_colours():
    ids = [sample_identity(0, pid) for pid in range(1, 401)]
    lum = np.array([colorsys.rgb_to_hsv(*i.colours.upper)[2] for i in ids])
    therm = np.array([i.thermal.upper for i in ids])
    lower_lum = np.array([np.mean(i.colours.lower) for i in ids])
    lower_therm = np.array([i.thermal.lower for i in ids])
    assert abs(np.corrcoef(lum, therm)[0, 1]) < 0.15
    assert abs(np.corrcoef(lower_lum, lower_therm)[0, 1]) < 0.15
    assert np.std(therm) > 0.05 and np.std(lum) > 0.1
    skin = np.array([i.thermal.skin for i in ids])
    assert (skin > therm).all()  # skin is the brightest part in infrared


def test_shared_attributes_vary():
    shapes = [sample_identity(1, pid).shape for pid in range(1, 201)]
    for field, least in (("pattern", 5), ("bag", 3), ("lower", 3), ("hair_length", 3), ("hat", 2)):
        assert len({getattr(s, field) for s in shapes}) >= least, field
    assert all(2 <= s.pattern_freq <= 5 for s in shapes)  # no stripes finer than ~3 pixels at 64x32


@pytest.mark.parametrize("knobs", [
    {"layout": "market"}, {"num_ids": 2}, {"seed": -1}, {"height": 8}, {"nuisance": 3.0},
    {"min_images": 5, "max_images": 4}, {"train_fraction": 0.9, "val_fraction": 0.2},
])
def test_config_rejects_bad_knobs(knobs):
    with pytest.raises(ConfigError) as err:
        SynthConfig(**knobs)
    assert "\n" not in str(err.value) and next(iter(knobs)).split("_")[0] in str(err.value)
