"""Tiny checkpoints (random weights, BatchNorm calibrated on real SynthVI images: no training needed) and a
tiny SynthVI tree, shared by the inference tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from vireid.config import load_config

TINY = [
    "data.height=32", "data.width=16", "data.num_workers=0", "data.cache=false",
    "model.backbone=mobilenet_v3_small", "model.pretrained=none", "model.share_deep_stages=3", "model.z_dim=16",
    "model.bottleneck_hidden=[32]", "test.batch_size=16",
]
NUM_CLASSES = 7


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """SynthVI, SYSU-MM01 layout, 12 identities (3 test ids), 32x16 images."""
    from vireid.data.synthvi import generate

    return generate(tmp_path_factory.mktemp("synth") / "sysu", layout="sysu", num_ids=12, seed=0, height=32,
                    width=16, min_images=2, max_images=3, progress=False)


@pytest.fixture(scope="session")
def test_ids(synth_root) -> list[int]:
    from vireid.data.sysu import read_split_ids

    return sorted(read_split_ids(synth_root, "test"))


@pytest.fixture(scope="session")
def gallery_dir(synth_root, test_ids, tmp_path_factory) -> Path:
    """A folder of the test ids' visible images (cams 1, 2, 4, 5), SYSU-MM01 layout kept."""
    out = tmp_path_factory.mktemp("gallery") / "visible"
    for cam in (1, 2, 4, 5):
        for pid in test_ids:
            src = synth_root / f"cam{cam}" / f"{pid:04d}"
            if src.is_dir():
                shutil.copytree(src, out / f"cam{cam}" / f"{pid:04d}")
    return out


@pytest.fixture(scope="session")
def query_paths(synth_root, test_ids) -> list[Path]:
    """The test ids' infrared images (cams 3 and 6)."""
    return sorted(p for cam in (3, 6) for pid in test_ids for p in (synth_root / f"cam{cam}" / f"{pid:04d}").glob("*.jpg"))


def make_checkpoint(path: Path, root: Path, *overrides: str) -> Path:
    """A vireid checkpoint of a random-init tiny model whose BatchNorm statistics are those of the
    training images (a random network's eval outputs are otherwise vanishingly small)."""
    from vireid.data.cache import decode_image
    from vireid.data.sysu import CAMERA_MODALITY, read_split_ids
    from vireid.data.transforms import build_test_transform
    from vireid.models.build import build_model
    from vireid.training.checkpoint import save_checkpoint

    cfg = load_config("sysu_vd", [*TINY, *overrides])
    torch.manual_seed(0)
    model = build_model(cfg.model, NUM_CLASSES)
    transform = build_test_transform(cfg.data)
    ids = read_split_ids(root, "train")[:4]
    images, modality = [], []
    for cam in range(1, 7):
        for pid in ids:
            for f in sorted((root / f"cam{cam}" / f"{pid:04d}").glob("*.jpg"))[:2]:
                images.append(transform(decode_image(f)))
                modality.append(CAMERA_MODALITY[cam])
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.stack(images), torch.tensor(modality))
    model.eval()
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg.to_dict(), "num_classes": NUM_CLASSES})
    return path


@pytest.fixture(scope="session")
def ckpt(synth_root, tmp_path_factory) -> Path:
    """vd, z_shared (modality-independent), 32x16 input: the images' own size."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "vd.pt", synth_root)


@pytest.fixture(scope="session")
def ckpt_concat(synth_root, tmp_path_factory) -> Path:
    """vd, z_concat under paper routing (modality-dependent), flip averaging, 24x12 input (images resized)."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "vd_concat.pt", synth_root,
                           "model.test_feature=z_concat", "test.flip=true", "data.height=24", "data.width=12")


@pytest.fixture(scope="session")
def extracted(synth_root):
    """``extracted(ckpt)``: `vireid extract`'s features of the SYSU test set (computed once per checkpoint)."""
    from vireid.features.extract import extract_protocol

    cache = {}

    def get(ckpt: Path):
        if ckpt not in cache:
            cache[ckpt] = extract_protocol(ckpt, "sysu", synth_root, device="cpu")
        return cache[ckpt]

    return get
