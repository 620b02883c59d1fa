"""Tiny model settings shared by the model tests: CPU-sized backbone, small inputs, no weights."""

import pytest
import torch

from vireid.models import ModelConfig


def _tiny_config(**overrides) -> ModelConfig:
    base = dict(backbone="mobilenet_v3_small", pretrained="none", z_dim=8, bottleneck_hidden=[16])
    base.update(overrides)
    return ModelConfig(**base)


@pytest.fixture
def tiny_config():
    """Factory of small, random-init model configs (MobileNetV3-small, small bottleneck)."""
    return _tiny_config


def _calibrated(model, images, modality):
    """Set every BatchNorm's running statistics to this batch's (one no-grad training pass), then eval
    mode: a random-init network's eval outputs are otherwise vanishingly small."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one pass sets the batch statistics
    model.train()
    with torch.no_grad():
        model(images, modality)
    return model.eval()


@pytest.fixture
def calibrated():
    """``calibrated(model, images, modality)``: the model in eval mode with meaningful BN statistics."""
    return _calibrated


@pytest.fixture
def batch():
    """Sampler order: 2 identities x (2 visible + 2 infrared), 32x16 images."""
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    modality = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    images = torch.randn(8, 3, 32, 16, generator=torch.Generator().manual_seed(3))
    return images, labels, modality


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models gain nothing from threads, and on a shared CPU extra threads make them crawl."""
    yield
